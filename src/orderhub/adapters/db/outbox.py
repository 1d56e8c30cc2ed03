"""Outbox and webhook subscriptions.

Every message that leaves the process is first an outbox row written in the same
transaction as the state change it reports; the relay delivers it after commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from orderhub.adapters.db import queue
from orderhub.adapters.db.tables import outbox, webhook_endpoints
from orderhub.domain import ids


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """A tenant's HTTP endpoint subscribed to some event topics (``*`` for all)."""

    id: str
    tenant_id: str
    url: str
    secret: str
    events: tuple[str, ...]
    active: bool
    created_at: datetime

    def wants(self, topic: str) -> bool:
        """True when this endpoint subscribed to ``topic`` (exactly, by prefix ``order.*``, or ``*``)."""
        for pattern in self.events:
            if pattern in ("*", topic):
                return True
            if pattern.endswith(".*") and topic.startswith(pattern[:-1]):
                return True
        return False


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One message to deliver: to ``target`` of ``kind`` (e.g. a webhook endpoint)."""

    tenant_id: str
    kind: str
    target: str
    topic: str
    payload: dict[str, Any]
    message_id: str = ""


class SqlOutboxRepository:
    """Writes outbox rows and manages webhook subscriptions on one connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._endpoints: dict[str, list[WebhookEndpoint]] = {}

    def endpoints(self, tenant_id: str, *, active_only: bool = True) -> list[WebhookEndpoint]:
        """The tenant's webhook endpoints (cached for the life of the transaction)."""
        if active_only and tenant_id in self._endpoints:
            return self._endpoints[tenant_id]
        query = select(webhook_endpoints).where(webhook_endpoints.c.tenant_id == tenant_id)
        if active_only:
            query = query.where(webhook_endpoints.c.active.is_(True))
        rows = self._conn.execute(query.order_by(webhook_endpoints.c.created_at)).all()
        found = [WebhookEndpoint(r.id, r.tenant_id, r.url, r.secret, tuple(r.events), r.active, r.created_at)
                 for r in rows]
        if active_only:
            self._endpoints[tenant_id] = found
        return found

    def add_endpoint(self, tenant_id: str, url: str, secret: str, events: Sequence[str], *,
                     now: datetime) -> WebhookEndpoint:
        """Subscribe ``url`` to ``events``."""
        endpoint = WebhookEndpoint(ids.new_id("whe"), tenant_id, url, secret, tuple(events), True, now)
        self._conn.execute(insert(webhook_endpoints).values(
            tenant_id=tenant_id, id=endpoint.id, url=url, secret=secret, events=list(events), active=True,
            created_at=now))
        self._endpoints.pop(tenant_id, None)
        return endpoint

    def add(self, messages: Sequence[OutboxMessage], *, now: datetime) -> None:
        """Queue ``messages`` for delivery (due immediately)."""
        if not messages:
            return
        self._conn.execute(insert(outbox), [
            {"tenant_id": m.tenant_id, "message_id": m.message_id or ids.new_id("msg"), "kind": m.kind,
             "target": m.target, "topic": m.topic, "payload": m.payload, "status": queue.PENDING,
             "attempts": 0, "next_attempt_at": now, "created_at": now} for m in messages])

    def counts(self, tenant_id: str | None = None) -> dict[str, int]:
        """Number of outbox rows per status (for metrics and the CLI)."""
        query = select(outbox.c.status, func.count()).group_by(outbox.c.status)
        if tenant_id is not None:
            query = query.where(outbox.c.tenant_id == tenant_id)
        return {status: n for status, n in self._conn.execute(query).tuples()}

    def list(self, tenant_id: str, *, status: str | None = None, limit: int = 100) -> list[Any]:
        """Outbox rows of a tenant, newest first."""
        query = select(outbox).where(outbox.c.tenant_id == tenant_id)
        if status is not None:
            query = query.where(outbox.c.status == status)
        return list(self._conn.execute(query.order_by(outbox.c.id.desc()).limit(limit)).all())

    def requeue_dead(self, tenant_id: str, *, now: datetime) -> int:
        """Send dead-lettered messages of a tenant again from the first attempt."""
        result = self._conn.execute(update(outbox).where(outbox.c.tenant_id == tenant_id,
                                                         outbox.c.status == queue.DEAD)
                                    .values(status=queue.PENDING, attempts=0, next_attempt_at=now,
                                            last_error=None))
        return result.rowcount

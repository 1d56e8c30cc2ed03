"""Outbox and webhook subscriptions.

Every message that leaves the process is first an outbox row written in the same
transaction as the state change it reports; the relay delivers it after commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

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
        return wants(self.events, topic)


def wants(events: Sequence[str], topic: str) -> bool:
    """True when a subscription to ``events`` covers ``topic`` (exactly, by prefix ``order.*``, or ``*``)."""
    for pattern in events:
        if pattern in ("*", topic):
            return True
        if pattern.endswith(".*") and topic.startswith(pattern[:-1]):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a commit needs of an active webhook endpoint to route outbox rows to it."""

    endpoint_id: str
    events: tuple[str, ...]

    def wants(self, topic: str) -> bool:
        """True when the endpoint subscribed to ``topic`` (see ``WebhookEndpoint.wants``)."""
        return wants(self.events, topic)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One message to deliver: to ``target`` of ``kind`` (e.g. a webhook endpoint)."""

    tenant_id: str
    kind: str
    target: str
    topic: str
    payload: dict[str, Any]
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """An outbox row a relay holds under a lease until ``locked_until`` (see ``queue.claim``)."""

    id: int
    tenant_id: str
    message_id: str
    kind: str
    target: str
    topic: str
    payload: dict[str, Any]
    attempts: int
    locked_until: datetime
    last_error: str | None = None


def _endpoint(row: Row[Any]) -> WebhookEndpoint:
    return WebhookEndpoint(row.id, row.tenant_id, row.url, row.secret, tuple(row.events), row.active,
                           row.created_at)


def outbox_row(message: OutboxMessage, *, now: datetime) -> dict[str, Any]:
    """The ``outbox`` row queuing ``message`` for delivery (due immediately)."""
    return {"tenant_id": message.tenant_id, "message_id": message.message_id or ids.new_id("msg"),
            "kind": message.kind, "target": message.target, "topic": message.topic, "payload": message.payload,
            "status": queue.PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now}


class SqlOutboxRepository:
    """Writes outbox rows and manages webhook subscriptions on one connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._endpoints: dict[str, list[WebhookEndpoint]] = {}
        # Tenants whose subscriptions this transaction changed: endpoints read earlier are stale.
        self.endpoints_changed: set[str] = set()

    def endpoints(self, tenant_id: str, *, active_only: bool = True) -> list[WebhookEndpoint]:
        """The tenant's webhook endpoints (cached for the life of the transaction)."""
        if active_only and tenant_id in self._endpoints:
            return self._endpoints[tenant_id]
        query = select(webhook_endpoints).where(webhook_endpoints.c.tenant_id == tenant_id)
        if active_only:
            query = query.where(webhook_endpoints.c.active.is_(True))
        rows = self._conn.execute(query.order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)).all()
        found = [_endpoint(r) for r in rows]
        if active_only:
            self._endpoints[tenant_id] = found
        return found

    def endpoint(self, tenant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        """One endpoint by id, active or not (the relay needs to tell "deactivated" from "gone")."""
        row = self._conn.execute(select(webhook_endpoints).where(
            webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id)).first()
        return None if row is None else _endpoint(row)

    def add_endpoint(self, tenant_id: str, url: str, secret: str, events: Sequence[str], *,
                     now: datetime) -> WebhookEndpoint:
        """Subscribe ``url`` to ``events``."""
        endpoint = WebhookEndpoint(ids.new_id("whe"), tenant_id, url, secret, tuple(events), True, now)
        self._conn.execute(insert(webhook_endpoints).values(
            tenant_id=tenant_id, id=endpoint.id, url=url, secret=secret, events=list(events), active=True,
            created_at=now))
        self._endpoints.pop(tenant_id, None)
        self.endpoints_changed.add(tenant_id)
        return endpoint

    def add(self, messages: Sequence[OutboxMessage], *, now: datetime) -> None:
        """Queue ``messages`` for delivery (due immediately)."""
        if not messages:
            return
        self._conn.execute(insert(outbox), [outbox_row(m, now=now) for m in messages])

    def counts(self, tenant_id: str | None = None) -> dict[str, int]:
        """Number of outbox rows per status (for metrics and the CLI)."""
        query = select(outbox.c.status, func.count()).group_by(outbox.c.status)
        if tenant_id is not None:
            query = query.where(outbox.c.tenant_id == tenant_id)
        return {row[0]: row[1] for row in self._conn.execute(query).all()}

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

    # ------------------------------------------------------------------ relay side
    def claim(self, *, kinds: Sequence[str], worker_id: str, now: datetime, lease: timedelta,
              limit: int) -> tuple[ClaimedMessage, ...]:
        """Take up to ``limit`` due messages of ``kinds`` for ``worker_id`` until ``now + lease``.

        Run in a short write transaction of its own and commit before delivering, so no
        transaction stays open across the network call.
        """
        rows = queue.claim(self._conn, outbox, worker_id=worker_id, now=now, lease=lease, limit=limit,
                           where=outbox.c.kind.in_(list(kinds)))
        return tuple(ClaimedMessage(id=r.id, tenant_id=r.tenant_id, message_id=r.message_id, kind=r.kind,
                                    target=r.target, topic=r.topic, payload=r.payload, attempts=r.attempts,
                                    locked_until=r.locked_until, last_error=r.last_error) for r in rows)

    def mark_delivered(self, message: ClaimedMessage, *, worker_id: str, now: datetime) -> bool:
        """Record a successful delivery; False (nothing written) if the lease was lost meanwhile."""
        return queue.finish(self._conn, outbox, message.id, worker_id=worker_id,
                            values={"status": queue.DONE, "delivered_at": now})

    def mark_retry(self, message: ClaimedMessage, *, worker_id: str, attempts: int, error: str,
                   next_attempt_at: datetime) -> bool:
        """Record a failed attempt to be tried again at ``next_attempt_at``; False if the lease was lost."""
        return queue.finish(self._conn, outbox, message.id, worker_id=worker_id, values={
            "status": queue.PENDING, "attempts": attempts, "last_error": error,
            "next_attempt_at": next_attempt_at})

    def mark_dead(self, message: ClaimedMessage, *, worker_id: str, attempts: int, error: str) -> bool:
        """Dead-letter a message (no more attempts until requeued); False if the lease was lost."""
        return queue.finish(self._conn, outbox, message.id, worker_id=worker_id, values={
            "status": queue.DEAD, "attempts": attempts, "last_error": error})

    def release(self, message: ClaimedMessage, *, worker_id: str) -> bool:
        """Hand a claimed but untried message back (due as before, no attempt used)."""
        return queue.finish(self._conn, outbox, message.id, worker_id=worker_id,
                            values={"status": queue.PENDING})

    def queue_coalesced(self, message: OutboxMessage, *, now: datetime) -> bool:
        """Queue ``message``, or fold it into a still-pending outbox row of the same tenant,
        kind and target (its payload is replaced: only the latest figure matters). True when
        it was folded. A row the relay already claimed is left alone (a new row follows it)."""
        c = outbox.c
        pending = self._conn.execute(select(c.id).where(
            c.tenant_id == message.tenant_id, c.kind == message.kind, c.target == message.target,
            c.status == queue.PENDING).order_by(c.id.desc()).limit(1)).first()
        if pending is not None and self._conn.execute(update(outbox).where(
                c.id == pending.id, c.status == queue.PENDING).values(payload=message.payload,
                                                                      topic=message.topic)).rowcount == 1:
            return True
        self._conn.execute(insert(outbox).values(outbox_row(message, now=now)))
        return False

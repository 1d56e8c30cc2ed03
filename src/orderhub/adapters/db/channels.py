"""Repositories of the channel gateway: shops, the inbox, channel breakers, conflicts and alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from orderhub.adapters.db import queue
from orderhub.adapters.db.engine import insert_unless_duplicate
from orderhub.adapters.db.errors import DuplicateKeyError
from orderhub.adapters.db.tables import alerts, channel_breakers, channel_conflicts, inbox, shops
from orderhub.domain.channels.breaker import BreakerState
from orderhub.domain.channels.inbox import InboxStatus
from orderhub.domain.channels.shop import Shop


def _shop(row: Any) -> Shop:
    return Shop(id=row.id, tenant_id=row.tenant_id, code=row.code, channel=row.channel, name=row.name,
                secret=row.secret, timezone=row.timezone, settings=dict(row.settings or {}), active=row.active,
                created_at=row.created_at)


class SqlShopRepository:
    """Shops of every tenant; a webhook finds its shop by (channel, code) alone."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, shop: Shop, *, now: datetime) -> None:
        """Insert ``shop``; raise DuplicateKeyError when its (channel, code) is taken."""
        stmt = insert_unless_duplicate(shops, self._conn.dialect.name)
        result = self._conn.execute(stmt, {
            "tenant_id": shop.tenant_id, "id": shop.id, "code": shop.code, "channel": shop.channel,
            "name": shop.name, "secret": shop.secret, "timezone": shop.timezone, "settings": shop.settings,
            "active": shop.active, "signature_failures": 0, "created_at": now})
        if result.rowcount != 1:
            raise DuplicateKeyError(f"a {shop.channel} shop with code {shop.code!r} is already registered; "
                                    "shop codes are unique per channel (they appear in the webhook URL)",
                                    entity="shop", key=f"{shop.channel}/{shop.code}")

    def by_code(self, channel: str, code: str) -> Shop | None:
        """The shop a push to ``/webhooks/{channel}/{code}`` is for, whatever its tenant."""
        row = self._conn.execute(select(shops).where(shops.c.channel == channel, shops.c.code == code)).first()
        return _shop(row) if row else None

    def for_tenant(self, tenant_id: str, code: str, channel: str | None = None) -> Shop | None:
        """The tenant's shop with ``code`` (on ``channel`` when given)."""
        query = select(shops).where(shops.c.tenant_id == tenant_id, shops.c.code == code)
        if channel is not None:
            query = query.where(shops.c.channel == channel)
        rows = self._conn.execute(query).all()
        return _shop(rows[0]) if len(rows) == 1 else None

    def list(self, tenant_id: str) -> list[Shop]:
        """The tenant's shops, by channel and code."""
        rows = self._conn.execute(select(shops).where(shops.c.tenant_id == tenant_id)
                                  .order_by(shops.c.channel, shops.c.code)).all()
        return [_shop(r) for r in rows]

    def count_signature_failure(self, shop: Shop) -> None:
        """Add one to the shop's count of pushes refused for a bad signature."""
        self._conn.execute(update(shops).where(shops.c.tenant_id == shop.tenant_id, shops.c.id == shop.id)
                           .values(signature_failures=shops.c.signature_failures + 1))


@dataclass(frozen=True, slots=True)
class InboxRow:
    """A message as it is written to the inbox."""

    tenant_id: str
    message_id: str
    channel: str
    shop: str
    source: str
    external_id: str
    event_version: str
    kind: str
    status: str
    headers: dict[str, str]
    body: bytes
    content_hash: str
    received_at: datetime
    error_code: str | None = None
    error_field: str | None = None
    last_error: str | None = None


class SqlInboxRepository:
    """The inbox: raw channel messages, deduplicated by (tenant, channel, shop, external id,
    event version) with a UNIQUE constraint, and claimed by normalizer workers."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, row: InboxRow) -> bool:
        """Insert ``row``; False (and nothing written) when its dedup key is already stored."""
        stmt = insert_unless_duplicate(inbox, self._conn.dialect.name)
        result = self._conn.execute(stmt, {
            "tenant_id": row.tenant_id, "message_id": row.message_id, "channel": row.channel, "shop": row.shop,
            "source": row.source, "external_id": row.external_id, "event_version": row.event_version,
            "kind": row.kind, "status": row.status, "attempts": 0, "next_attempt_at": row.received_at,
            "headers": row.headers, "body": row.body, "content_hash": row.content_hash,
            "error_code": row.error_code, "error_field": row.error_field, "last_error": row.last_error,
            "received_at": row.received_at})
        return result.rowcount == 1

    def existing_message_id(self, row: InboxRow) -> str | None:
        """The message id already stored under ``row``'s dedup key."""
        c = inbox.c
        return self._conn.execute(select(c.message_id).where(
            c.tenant_id == row.tenant_id, c.channel == row.channel, c.shop == row.shop,
            c.external_id == row.external_id, c.event_version == row.event_version)).scalar()

    def has_key(self, tenant_id: str, channel: str, shop: str, external_id: str, event_version: str) -> bool:
        """True when a message with this dedup key is stored."""
        c = inbox.c
        return self._conn.execute(select(c.id).where(
            c.tenant_id == tenant_id, c.channel == channel, c.shop == shop, c.external_id == external_id,
            c.event_version == event_version)).first() is not None

    def outcomes(self, tenant_id: str, message_ids: list[str]) -> list[Any]:
        """State, outcome and error of the given messages (message_id, status, outcome,
        error_field, last_error, order_id)."""
        c = inbox.c
        return list(self._conn.execute(select(c.message_id, c.status, c.outcome, c.error_field, c.last_error,
                                              c.order_id).where(c.tenant_id == tenant_id,
                                                                c.message_id.in_(message_ids))).all())

    def claim(self, *, worker_id: str, now: datetime, lease: timedelta, limit: int) -> list[Any]:
        """Take up to ``limit`` due pending messages (see adapters/db/queue.py)."""
        return queue.claim(self._conn, inbox, worker_id=worker_id, now=now, lease=lease, limit=limit)

    def finish(self, row_id: int, *, worker_id: str, values: dict[str, Any]) -> bool:
        """Record a claimed message's outcome if ``worker_id`` still holds it."""
        return queue.finish(self._conn, inbox, row_id, worker_id=worker_id, values=values)

    def finish_many(self, outcomes: list[tuple[int, dict[str, Any]]], *, worker_id: str) -> int:
        """Record many claimed messages' outcomes; returns how many were still held."""
        return queue.finish_many(self._conn, inbox, outcomes, worker_id=worker_id)

    def requeue(self, tenant_id: str, states: tuple[str, ...], *, channel: str | None, now: datetime) -> int:
        """Send messages in ``states`` back to pending with fresh attempts; returns how many."""
        cond = and_(inbox.c.tenant_id == tenant_id, inbox.c.status.in_(states))
        if channel is not None:
            cond = and_(cond, inbox.c.channel == channel)
        result = self._conn.execute(update(inbox).where(cond).values(
            status=InboxStatus.PENDING.value, attempts=0, next_attempt_at=now, locked_by=None,
            locked_until=None))
        return int(result.rowcount)

    def pending_count(self) -> int:
        """Messages waiting for a normalizer (all tenants)."""
        return int(self._conn.execute(select(func.count()).select_from(inbox).where(
            inbox.c.status.in_((InboxStatus.PENDING.value, InboxStatus.IN_PROGRESS.value)))).scalar_one())


class SqlChannelStateRepository:
    """Per-tenant channel state: breakers, daily conflict counts, alerts."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def open_channels(self, tenant_id: str) -> set[str]:
        """Channels whose breaker is open for the tenant."""
        rows = self._conn.execute(select(channel_breakers.c.channel).where(
            channel_breakers.c.tenant_id == tenant_id, channel_breakers.c.state == BreakerState.OPEN.value))
        return {r.channel for r in rows}

    def breaker_state(self, tenant_id: str, channel: str) -> BreakerState:
        """The breaker's state (closed when never tripped)."""
        state = self._conn.execute(select(channel_breakers.c.state).where(
            channel_breakers.c.tenant_id == tenant_id, channel_breakers.c.channel == channel)).scalar()
        return BreakerState(state) if state else BreakerState.CLOSED

    def set_breaker(self, tenant_id: str, channel: str, state: BreakerState, *, reason: str | None,
                    now: datetime, by: str | None = None) -> None:
        """Store the breaker's new state."""
        values: dict[str, Any] = {"state": state.value}
        if state is BreakerState.OPEN:
            values |= {"reason": reason, "opened_at": now}
        else:
            values |= {"resumed_at": now, "resumed_by": by}
        result = self._conn.execute(update(channel_breakers).where(
            channel_breakers.c.tenant_id == tenant_id, channel_breakers.c.channel == channel).values(**values))
        if result.rowcount == 0:
            self._conn.execute(insert(channel_breakers).values(tenant_id=tenant_id, channel=channel, **values))

    def add_conflict(self, tenant_id: str, channel: str, day: str) -> int:
        """Count one status conflict on ``channel`` for the UTC ``day``; returns the day's total."""
        key = and_(channel_conflicts.c.tenant_id == tenant_id, channel_conflicts.c.channel == channel,
                   channel_conflicts.c.day == day)
        result = self._conn.execute(update(channel_conflicts).where(key).values(count=channel_conflicts.c.count + 1))
        if result.rowcount == 0:
            try:
                with self._conn.begin_nested():
                    self._conn.execute(insert(channel_conflicts).values(
                        tenant_id=tenant_id, channel=channel, day=day, count=1))
            except IntegrityError:
                self._conn.execute(update(channel_conflicts).where(key).values(
                    count=channel_conflicts.c.count + 1))
        return int(self._conn.execute(select(channel_conflicts.c.count).where(key)).scalar_one())

    def reset_conflicts(self, tenant_id: str, channel: str, day: str) -> None:
        """Start the day's conflict count afresh (when an operator resumes the channel)."""
        self._conn.execute(delete(channel_conflicts).where(
            channel_conflicts.c.tenant_id == tenant_id, channel_conflicts.c.channel == channel,
            channel_conflicts.c.day == day))

    def add_alert(self, *, tenant_id: str, alert_id: str, kind: str, severity: str, subject: str, message: str,
                  details: dict[str, Any], now: datetime) -> None:
        """Write an alert row (shown in the API and dashboard)."""
        self._conn.execute(insert(alerts).values(
            tenant_id=tenant_id, id=alert_id, kind=kind, severity=severity, subject=subject, message=message,
            details=details, created_at=now))

    def has_open_alert(self, tenant_id: str, subject: str, kind: str) -> bool:
        """True when an unresolved alert of ``kind`` about ``subject`` exists (one is enough)."""
        return self._conn.execute(select(alerts.c.id).where(
            alerts.c.tenant_id == tenant_id, alerts.c.subject == subject, alerts.c.kind == kind,
            alerts.c.resolved_at.is_(None)).limit(1)).first() is not None

    def resolve_alerts(self, tenant_id: str, subject: str, kind: str, now: datetime) -> None:
        """Mark the open alerts of ``kind`` about ``subject`` resolved."""
        self._conn.execute(update(alerts).where(
            alerts.c.tenant_id == tenant_id, alerts.c.subject == subject, alerts.c.kind == kind,
            alerts.c.resolved_at.is_(None)).values(resolved_at=now))

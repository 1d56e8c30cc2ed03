"""Read-side queries of the channel gateway: shops, inbox messages, channel health, alerts.

Mixed into :class:`orderhub.service_layer.queries.Queries`; like every query they never
change state and are scoped to one tenant per call.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from orderhub.adapters.db.channels import SqlShopRepository
from orderhub.adapters.db.tables import alerts, channel_breakers, inbox, shops
from orderhub.domain.channels.inbox import InboxStatus
from orderhub.domain.channels.shop import Shop
from orderhub.domain.time import isoformat

# A channel whose mapping failures pass this share of its messages is flagged.
FAILURE_THRESHOLD = 0.008
TOP_FIELDS = 5
_MAPPED = (InboxStatus.APPLIED.value, InboxStatus.IGNORED.value)


def _message_summary(row: Any) -> dict[str, Any]:
    error = None
    if row.error_code or row.status in (InboxStatus.DEAD.value, InboxStatus.REJECTED.value):
        error = {"code": row.error_code, "field": row.error_field, "detail": row.last_error}
    return {"id": row.message_id, "channel": row.channel, "shop": row.shop, "source": row.source, "kind": row.kind,
            "status": row.status, "external_id": row.external_id, "event_version": row.event_version,
            "received_at": isoformat(row.received_at),
            "processed_at": isoformat(row.processed_at) if row.processed_at else None,
            "order_id": row.order_id, "outcome": row.outcome, "attempts": row.attempts, "error": error}


_SUMMARY_COLUMNS = [c for c in inbox.c if c.name not in ("body", "headers")]


class ChannelQueries:
    """The channel gateway's read models (and the read connection every query uses)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A connection for reads. Its transaction ends with COMMIT, not the pool's ROLLBACK
        (it wrote nothing, so both end it the same way): on psycopg 3 a ROLLBACK also
        deallocates every prepared statement of the connection, which the commands that use
        it next would then have to prepare again."""
        with self._engine.connect() as conn:
            yield conn
            if conn.in_transaction():
                conn.commit()


    def shops(self, tenant_id: str) -> list[Shop]:
        """The tenant's shops."""
        with self._connect() as conn:
            return SqlShopRepository(conn).list(tenant_id)

    def inbox_message(self, tenant_id: str, message_id: str) -> dict[str, Any] | None:
        """One inbox message with its raw body (as text and, when it is JSON, parsed)."""
        with self._connect() as conn:
            row = conn.execute(select(inbox).where(inbox.c.tenant_id == tenant_id,
                                                   inbox.c.message_id == message_id)).first()
        if row is None:
            return None
        view = _message_summary(row)
        body = bytes(row.body)
        text = body.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        view.update({"headers": dict(row.headers or {}), "body_text": text, "body_json": parsed,
                     "content_hash": row.content_hash})
        return view

    def order_messages(self, tenant_id: str, order_id: str) -> list[dict[str, Any]]:
        """The inbox messages that fed an order, oldest first (without bodies)."""
        with self._connect() as conn:
            rows = conn.execute(select(*_SUMMARY_COLUMNS).where(inbox.c.tenant_id == tenant_id,
                                                                inbox.c.order_id == order_id)
                                .order_by(inbox.c.id)).all()
        return [_message_summary(r) for r in rows]

    def inbox_messages(self, tenant_id: str, *, status: str | None = None, channel: str | None = None,
                       limit: int = 50) -> list[dict[str, Any]]:
        """The newest inbox messages, optionally by status and channel."""
        query = select(*_SUMMARY_COLUMNS).where(inbox.c.tenant_id == tenant_id)
        if status is not None:
            query = query.where(inbox.c.status == status)
        if channel is not None:
            query = query.where(inbox.c.channel == channel)
        with self._connect() as conn:
            rows = conn.execute(query.order_by(inbox.c.id.desc()).limit(min(limit, 500))).all()
        return [_message_summary(r) for r in rows]

    def channel_health(self, tenant_id: str) -> dict[str, Any]:
        """Per channel: received, mapped, failed, failure rate, top failing fields, breaker.

        ``failed`` counts dead-lettered messages (mapping failures) and ``rejected``
        unreadable ones; the failure rate is (failed + rejected) / received, and a channel
        over :data:`FAILURE_THRESHOLD` is ``flagged``.
        """
        with self._connect() as conn:
            counts = conn.execute(select(inbox.c.channel, inbox.c.status, func.count().label("n"))
                                  .where(inbox.c.tenant_id == tenant_id)
                                  .group_by(inbox.c.channel, inbox.c.status)).all()
            fields = conn.execute(select(inbox.c.channel, inbox.c.error_field, func.count().label("n"))
                                  .where(inbox.c.tenant_id == tenant_id, inbox.c.status == InboxStatus.DEAD.value)
                                  .group_by(inbox.c.channel, inbox.c.error_field)).all()
            breakers = conn.execute(select(channel_breakers).where(channel_breakers.c.tenant_id == tenant_id)).all()
            shop_rows = conn.execute(select(shops.c.channel, func.coalesce(func.sum(shops.c.signature_failures), 0)
                                            .label("n")).where(shops.c.tenant_id == tenant_id)
                                     .group_by(shops.c.channel)).all()
        by_channel: dict[str, dict[str, int]] = defaultdict(dict)
        for row in counts:
            by_channel[row.channel][row.status] = int(row.n)
        for row in shop_rows:
            by_channel.setdefault(row.channel, {})
        field_counts: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for row in fields:
            field_counts[row.channel].append((row.error_field or "?", int(row.n)))
        breaker_by = {b.channel: b for b in breakers}
        signature = {r.channel: int(r.n) for r in shop_rows}
        channels = []
        for channel in sorted(by_channel):
            c = by_channel[channel]
            received = sum(c.values())
            failed = c.get(InboxStatus.DEAD.value, 0)
            rejected = c.get(InboxStatus.REJECTED.value, 0)
            rate = (failed + rejected) / received if received else 0.0
            breaker = breaker_by.get(channel)
            top = sorted(field_counts[channel], key=lambda fc: (-fc[1], fc[0]))[:TOP_FIELDS]
            channels.append({
                "channel": channel, "received": received,
                "mapped": sum(c.get(s, 0) for s in _MAPPED), "failed": failed, "rejected": rejected,
                "parked": c.get(InboxStatus.PARKED.value, 0),
                "pending": c.get(InboxStatus.PENDING.value, 0) + c.get(InboxStatus.IN_PROGRESS.value, 0),
                "failure_rate": round(rate, 6), "flagged": rate > FAILURE_THRESHOLD,
                "top_failing_fields": [{"field": f, "count": n} for f, n in top],
                "breaker": {"state": breaker.state if breaker else "closed",
                            "reason": breaker.reason if breaker and breaker.state == "open" else None,
                            "opened_at": isoformat(breaker.opened_at) if breaker and breaker.opened_at
                            and breaker.state == "open" else None},
                "signature_failures": signature.get(channel, 0),
            })
        return {"threshold": FAILURE_THRESHOLD, "channels": channels}

    def alerts(self, tenant_id: str, *, open_only: bool = True, limit: int = 100) -> list[dict[str, Any]]:
        """The tenant's alerts, newest first."""
        query = select(alerts).where(alerts.c.tenant_id == tenant_id)
        if open_only:
            query = query.where(alerts.c.resolved_at.is_(None))
        with self._connect() as conn:
            rows = conn.execute(query.order_by(alerts.c.created_at.desc()).limit(limit)).all()
        return [{"id": r.id, "kind": r.kind, "severity": r.severity, "subject": r.subject, "message": r.message,
                 "details": r.details, "created_at": isoformat(r.created_at),
                 "resolved_at": isoformat(r.resolved_at) if r.resolved_at else None} for r in rows]


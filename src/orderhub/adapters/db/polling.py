"""Poll cursors: per shop, how far its channel has been pulled and when to pull next.

``updated_until`` means "every order updated before this instant has been pulled", give or
take the overlap window the next pass re-reads. It only moves forward, and only after the
orders of a whole window are in the inbox, so a crash mid-pass re-pulls (the inbox's dedup
key absorbs the repeats).

Claiming a shop for a pass is a compare-and-set on ``next_poll_at``: the claimer moves it
``lease`` into the future only if it was due, so of several workers (PostgreSQL runs one
per process) exactly one polls a shop; a worker that dies mid-pass leaves a lease that
expires on its own. A running pass renews the lease after every page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, or_, select, update

from orderhub.adapters.db.engine import insert_unless_duplicate
from orderhub.adapters.db.tables import poll_cursors, shops

ERROR_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class PollableShop:
    """What a poller needs of a shop: who owns it, its channel, and its API settings."""

    tenant_id: str
    shop_id: str
    code: str
    channel: str
    timezone: str | None
    settings: dict[str, Any]

    @property
    def poll_settings(self) -> dict[str, Any]:
        """The shop's ``settings.poll`` (empty when absent or malformed)."""
        poll = self.settings.get("poll")
        return dict(poll) if isinstance(poll, dict) else {}

    @property
    def poll_enabled(self) -> bool:
        """True when the merchant turned polling on for this shop."""
        return bool(self.poll_settings.get("enabled", False))


@dataclass(frozen=True, slots=True)
class PollCursor:
    """One shop's polling progress (a ``poll_cursors`` row)."""

    tenant_id: str
    shop_id: str
    updated_until: datetime | None
    next_poll_at: datetime
    last_polled_at: datetime | None
    last_error: str | None
    pages: int
    messages: int


def _shop(row: Any) -> PollableShop:
    settings = row.settings if isinstance(row.settings, dict) else {}
    return PollableShop(tenant_id=row.tenant_id, shop_id=row.id, code=row.code, channel=row.channel,
                        timezone=row.timezone, settings=settings)


def _cursor(row: Row[Any]) -> PollCursor:
    return PollCursor(tenant_id=row.tenant_id, shop_id=row.shop_id, updated_until=row.updated_until,
                      next_poll_at=row.next_poll_at, last_polled_at=row.last_polled_at, last_error=row.last_error,
                      pages=int(row.pages), messages=int(row.messages))


_SHOP_COLUMNS = (shops.c.tenant_id, shops.c.id, shops.c.code, shops.c.channel, shops.c.timezone, shops.c.settings)


def list_pollable_shops(conn: Connection, *, due_at: datetime | None = None) -> list[PollableShop]:
    """Active shops with ``settings.poll.enabled``; with ``due_at``, only those whose cursor
    is missing (never polled) or due at that time. Ordered for a stable round-robin."""
    query = select(*_SHOP_COLUMNS).where(shops.c.active.is_(True))
    if due_at is not None:
        query = query.select_from(shops.outerjoin(poll_cursors, and_(
            poll_cursors.c.tenant_id == shops.c.tenant_id, poll_cursors.c.shop_id == shops.c.id))).where(
            or_(poll_cursors.c.shop_id.is_(None), poll_cursors.c.next_poll_at <= due_at))
    rows = conn.execute(query.order_by(shops.c.tenant_id, shops.c.code)).all()
    # settings is JSON; filtering it in Python keeps one query for SQLite and PostgreSQL.
    return [shop for shop in map(_shop, rows) if shop.poll_enabled]


def get_shop(conn: Connection, code: str, *, tenant_id: str | None = None,
             channel: str | None = None) -> list[PollableShop]:
    """The shops with ``code`` (one per channel at most), narrowed by tenant and channel."""
    query = select(*_SHOP_COLUMNS).where(shops.c.code == code)
    if tenant_id is not None:
        query = query.where(shops.c.tenant_id == tenant_id)
    if channel is not None:
        query = query.where(shops.c.channel == channel)
    return [_shop(row) for row in conn.execute(query.order_by(shops.c.channel)).all()]


def get_cursor(conn: Connection, tenant_id: str, shop_id: str) -> PollCursor | None:
    """The shop's cursor, or None before its first pass."""
    row = conn.execute(select(poll_cursors).where(poll_cursors.c.tenant_id == tenant_id,
                                                  poll_cursors.c.shop_id == shop_id)).one_or_none()
    return None if row is None else _cursor(row)


def ensure_cursor(conn: Connection, tenant_id: str, shop_id: str, *, now: datetime) -> None:
    """Create the shop's cursor (due now, nothing pulled yet) unless it exists."""
    conn.execute(insert_unless_duplicate(poll_cursors, conn.dialect.name),
                 {"tenant_id": tenant_id, "shop_id": shop_id, "updated_until": None, "next_poll_at": now,
                  "last_polled_at": None, "last_error": None, "pages": 0, "messages": 0})


def claim_cursor(conn: Connection, tenant_id: str, shop_id: str, *, now: datetime, lease: timedelta,
                 force: bool = False) -> PollCursor | None:
    """Take the shop for one pass: push ``next_poll_at`` to ``now + lease`` if it was due
    (any time with ``force``, for an operator's "poll now"). None when another worker has it
    or it isn't due."""
    ensure_cursor(conn, tenant_id, shop_id, now=now)
    key = and_(poll_cursors.c.tenant_id == tenant_id, poll_cursors.c.shop_id == shop_id)
    condition = key if force else and_(key, poll_cursors.c.next_poll_at <= now)
    result = conn.execute(update(poll_cursors).where(condition).values(next_poll_at=now + lease))
    if result.rowcount != 1:
        return None
    return get_cursor(conn, tenant_id, shop_id)


def record_page(conn: Connection, tenant_id: str, shop_id: str, *, messages: int, now: datetime,
                lease: timedelta | None = None) -> None:
    """Count one page of ``messages`` pulled into the inbox; renew the pass's lease if given."""
    values: dict[str, Any] = {"pages": poll_cursors.c.pages + 1, "messages": poll_cursors.c.messages + messages,
                              "last_polled_at": now}
    if lease is not None:
        values["next_poll_at"] = now + lease
    conn.execute(update(poll_cursors).where(poll_cursors.c.tenant_id == tenant_id,
                                            poll_cursors.c.shop_id == shop_id).values(**values))


def advance_cursor(conn: Connection, tenant_id: str, shop_id: str, updated_until: datetime) -> bool:
    """Move ``updated_until`` forward to ``updated_until`` (never back); True if it moved."""
    col = poll_cursors.c.updated_until
    result = conn.execute(update(poll_cursors).where(
        poll_cursors.c.tenant_id == tenant_id, poll_cursors.c.shop_id == shop_id,
        or_(col.is_(None), col < updated_until)).values(updated_until=updated_until))
    return bool(result.rowcount == 1)


def finish_pass(conn: Connection, tenant_id: str, shop_id: str, *, now: datetime, next_poll_at: datetime,
                error: str | None) -> None:
    """End a pass: schedule the next one and record its error (None clears the last one)."""
    conn.execute(update(poll_cursors).where(poll_cursors.c.tenant_id == tenant_id,
                                            poll_cursors.c.shop_id == shop_id).values(
        next_poll_at=next_poll_at, last_polled_at=now,
        last_error=None if error is None else error[:ERROR_LIMIT]))

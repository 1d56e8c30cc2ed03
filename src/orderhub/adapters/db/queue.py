"""Claiming work from queue tables (outbox today; inbox and timers later).

A queue table has ``id``, ``status``, ``attempts``, ``last_error``, ``next_attempt_at``,
``locked_by`` and ``locked_until``. Claiming marks rows ``in_progress`` under a lease, in a short transaction
of its own, so the slow part (an HTTP call) runs outside any transaction; a worker that
dies mid-way leaves rows whose lease expires and which another claimer takes over.

On PostgreSQL rows are picked with ``FOR UPDATE SKIP LOCKED`` so any number of workers
share a table. On SQLite the write transaction (BEGIN IMMEDIATE) excludes other writers
and, in addition, only the holder of the table's worker lease claims (see ``leases``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from orderhub.adapters.db.tables import worker_leases

PENDING = "pending"
IN_PROGRESS = "in_progress"
DONE = "done"
DEAD = "dead"
LEASE_EXPIRED = "the lease expired while in progress: the worker stopped or crashed mid-way"


def claim(conn: Connection, table: Table, *, worker_id: str, now: datetime, lease: timedelta,
          limit: int, where: ColumnElement[bool] | None = None) -> list[Any]:
    """Mark up to ``limit`` due rows of ``table`` as taken by ``worker_id`` and return them.

    ``where`` narrows the rows this claimer handles (e.g. the outbox kinds a relay knows), so
    several specialised workers can share one table without taking each other's rows.
    """
    c = table.c
    due = or_(and_(c.status == PENDING, c.next_attempt_at <= now),
              and_(c.status == IN_PROGRESS, c.locked_until < now))
    if where is not None:
        due = and_(due, where)
    query = select(c.id, c.status).where(due).order_by(c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    picked = conn.execute(query).all()
    if not picked:
        return []
    ids = [row.id for row in picked]
    taken_over = [row.id for row in picked if row.status == IN_PROGRESS]
    if taken_over:
        # The previous holder died or hung mid-way: that counts as an attempt, so a message
        # that crashes its worker every time still reaches the dead-letter state.
        conn.execute(update(table).where(c.id.in_(taken_over)).values(
            attempts=c.attempts + 1, last_error=LEASE_EXPIRED))
    conn.execute(update(table).where(c.id.in_(ids)).values(
        status=IN_PROGRESS, locked_by=worker_id, locked_until=now + lease))
    return list(conn.execute(select(table).where(c.id.in_(ids)).order_by(c.id)).all())


def finish(conn: Connection, table: Table, row_id: Any, *, worker_id: str, values: dict[str, Any]) -> bool:
    """Record the outcome for a claimed row, only if ``worker_id`` still holds it.

    Returns False when the lease was lost (another worker took the row over), in which case
    nothing is written.
    """
    c = table.c
    result = conn.execute(update(table).where(c.id == row_id, c.locked_by == worker_id, c.status == IN_PROGRESS)
                          .values(locked_by=None, locked_until=None, **values))
    return result.rowcount == 1


def finish_many(conn: Connection, table: Table, outcomes: list[tuple[Any, dict[str, Any]]], *,
                worker_id: str) -> int:
    """:func:`finish` for many claimed rows in as few round trips as possible: rows whose
    outcomes set the same columns go out as one executemany. Returns how many rows were
    still held by ``worker_id`` (and so were written)."""
    c = table.c
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row_id, values in outcomes:
        columns = tuple(sorted(values))
        groups.setdefault(columns, []).append({"b_id": row_id, **{f"b_{k}": v for k, v in values.items()}})
    written = 0
    for columns, params in groups.items():
        stmt = (update(table)
                .where(c.id == bindparam("b_id"), c.locked_by == worker_id, c.status == IN_PROGRESS)
                .values(locked_by=None, locked_until=None, **{k: bindparam(f"b_{k}") for k in columns}))
        written += conn.execute(stmt, params).rowcount
    return written


def acquire_lease(conn: Connection, name: str, *, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the named lease; True when ``holder`` has it until ``now + ttl``."""
    expires = now + ttl
    result = conn.execute(update(worker_leases).where(
        worker_leases.c.name == name,
        or_(worker_leases.c.holder == holder, worker_leases.c.expires_at < now)).values(
        holder=holder, expires_at=expires))
    if result.rowcount == 1:
        return True
    try:
        with conn.begin_nested():
            conn.execute(insert(worker_leases).values(name=name, holder=holder, expires_at=expires))
        return True
    except IntegrityError:
        return False


def release_lease(conn: Connection, name: str, *, holder: str) -> None:
    """Give up the named lease if ``holder`` has it."""
    conn.execute(delete(worker_leases).where(worker_leases.c.name == name, worker_leases.c.holder == holder))

"""Audit log storage: appends to each tenant's hash chain and reads it back for
verification and timelines.

At commit the unit of work writes in two statements per tenant, whatever the number of
events: one locks the chain head and reads the tenant's active webhook endpoints
(``lock_head``; on PostgreSQL usually already done by the statement that wrote the order,
see ``combined``), one writes the audit entries, the outbox rows for those endpoints and
the new head (``append`` with ``head=`` and ``messages=``). On PostgreSQL that write is a
single statement (the inserts as data-modifying CTEs of the head UPDATE); on SQLite, where
a statement costs no round trip, it is three.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, Executable, Row, and_, bindparam, insert, select, update
from sqlalchemy.exc import NoResultFound

from orderhub.adapters.db.outbox import OutboxMessage, Subscription, outbox_row
from orderhub.adapters.db.tables import audit_events, outbox, tenants, webhook_endpoints
from orderhub.domain.audit import AuditEntry, AuditRecord, link

# Above this many entries or outbox rows in one append, PostgreSQL writes them with separate
# statements too (one combined statement per shape is built and kept: bound their number).
MAX_COMBINED = 8

# Statements built once: building one costs more CPU than SQLAlchemy's cached compile of it.
# The head is locked FOR NO KEY UPDATE, not FOR UPDATE: every insert of a row that references
# the tenant (order, idempotency key, outbox row…) holds FOR KEY SHARE on it, which FOR UPDATE
# conflicts with, so two writers of one tenant would deadlock.
_LOCK_HEAD = (select(tenants.c.audit_head_seq, tenants.c.audit_head_hash)
              .where(tenants.c.id == bindparam("tenant_id")).with_for_update(key_share=True))
# The same lock, with the tenant's active webhook subscriptions in subscription order: one
# row per endpoint, or a single row with NULL endpoint columns when there are none.
_LOCK_HEAD_WITH_ENDPOINTS = (
    select(tenants.c.audit_head_seq, tenants.c.audit_head_hash,
           webhook_endpoints.c.id.label("endpoint_id"), webhook_endpoints.c.events.label("endpoint_events"))
    .select_from(tenants.outerjoin(webhook_endpoints, and_(webhook_endpoints.c.tenant_id == tenants.c.id,
                                                           webhook_endpoints.c.active.is_(True))))
    .where(tenants.c.id == bindparam("tenant_id"))
    .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
    .with_for_update(key_share=True, of=tenants))
_INSERT = insert(audit_events)
_INSERT_OUTBOX = insert(outbox)
_MOVE_HEAD = (update(tenants).where(tenants.c.id == bindparam("tenant_id"))
              .values(audit_head_seq=bindparam("head_seq"), audit_head_hash=bindparam("head_hash")))


@cache
def _combined_write(n_entries: int, entry_columns: tuple[str, ...], n_messages: int,
                    message_columns: tuple[str, ...]) -> Executable:
    """PostgreSQL: ``WITH new_audit_event_0 AS (INSERT INTO audit_events …), …, new_outbox_0 AS (…), …
    UPDATE tenants SET audit_head_…`` with ``a{i}_{column}`` / ``o{j}_{column}`` parameters.

    One single-row INSERT per row: SQLAlchemy caches the compiled form of those, not of a
    multi-row VALUES insert.
    """
    statement = _MOVE_HEAD
    for i in range(n_entries):
        statement = statement.add_cte(insert(audit_events).values(
            {audit_events.c[name]: bindparam(f"a{i}_{name}", type_=audit_events.c[name].type)
             for name in entry_columns}).cte(f"new_audit_event_{i}"))
    for j in range(n_messages):
        statement = statement.add_cte(insert(outbox).values(
            {outbox.c[name]: bindparam(f"o{j}_{name}", type_=outbox.c[name].type)
             for name in message_columns}).cte(f"new_outbox_{j}"))
    return statement


@dataclass(frozen=True, slots=True)
class LockedHead:
    """A tenant's audit chain head, locked by this transaction, and the tenant's active
    webhook subscriptions (what a commit routes outbox rows to)."""

    seq: int
    hash: str
    subscriptions: list[Subscription]


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An audit entry with the payload that was stored beside it."""

    entry: AuditEntry
    payload: dict[str, Any]


def _record(row: Row[Any]) -> AuditRecord:
    return AuditRecord(
        id=row.id, tenant_id=row.tenant_id, subject_type=row.subject_type, subject_id=row.subject_id,
        action=row.action, actor=row.actor, source=row.source, trace_id=row.trace_id,
        from_status=row.from_status, to_status=row.to_status, reason=row.reason,
        payload_digest=row.payload_digest, occurred_at=row.occurred_at)


def _stored(row: Row[Any]) -> StoredEntry:
    return StoredEntry(AuditEntry(_record(row), row.seq, row.prev_hash, row.hash), row.payload)


def subscriptions(rows: Sequence[Any]) -> list[Subscription]:
    """The subscriptions in the ``endpoint_id`` / ``endpoint_events`` columns of ``rows``
    (NULL when the tenant has none)."""
    return [Subscription(r.endpoint_id, tuple(r.endpoint_events)) for r in rows if r.endpoint_id is not None]


def entry_row(entry: AuditEntry, payload: dict[str, Any]) -> dict[str, Any]:
    """The ``audit_events`` row for ``entry`` and the payload stored beside it."""
    return {**entry.record.body(entry.seq), "occurred_at": entry.record.occurred_at, "payload": payload,
            "prev_hash": entry.prev_hash, "hash": entry.hash}


class SqlAuditRepository:
    """Append and read audit entries on one connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        # Heads this transaction holds locked, by tenant: by ``lock_head``, or by a combined
        # statement that locked the head along with its writes (see ``combined``).
        self.locked_heads: dict[str, LockedHead] = {}

    def lock_head(self, tenant_id: str) -> LockedHead:
        """Lock the tenant's chain head until the transaction ends and return it, with the
        tenant's active webhook subscriptions, in one query.

        Concurrent transactions of one tenant queue here (on SQLite the write transaction
        already excludes other writers), so they extend the chain one after the other.
        Raises NoResultFound for an unknown tenant.
        """
        rows = self._conn.execute(_LOCK_HEAD_WITH_ENDPOINTS, {"tenant_id": tenant_id}).all()
        if not rows:
            raise NoResultFound(f"no tenant {tenant_id!r}: nothing to append audit entries to")
        head = self.locked_heads[tenant_id] = LockedHead(rows[0].audit_head_seq, rows[0].audit_head_hash,
                                                         subscriptions(rows))
        return head

    def append(self, tenant_id: str, records: Sequence[tuple[AuditRecord, dict[str, Any]]], *,
               head: tuple[int, str] | None = None, messages: Sequence[OutboxMessage] = (),
               now: datetime | None = None) -> list[AuditEntry]:
        """Link ``records`` (with their payloads) to the end of the tenant's chain.

        The tenant's head is locked first (see ``lock_head``) unless the caller passes the
        ``head`` it already locked in this transaction. ``messages`` are outbox rows (due at
        ``now``) written together with the entries.
        """
        if not records:
            if messages:
                raise ValueError("outbox messages are written with the audit entries they report")
            return []
        if head is None:
            row = self._conn.execute(_LOCK_HEAD, {"tenant_id": tenant_id}).one()
            head = (row.audit_head_seq, row.audit_head_hash)
        entries = link([r for r, _ in records], head_seq=head[0], head_hash=head[1])
        entry_rows = [entry_row(entry, payload) for entry, (_, payload) in zip(entries, records, strict=True)]
        if messages and now is None:
            raise ValueError("outbox messages need `now`, the time they fall due")
        message_rows = [outbox_row(m, now=now) for m in messages] if now is not None else []
        last = entries[-1]
        if tenant_id in self.locked_heads:  # keep the registry true to the head
            self.locked_heads[tenant_id] = LockedHead(last.seq, last.hash, self.locked_heads[tenant_id].subscriptions)
        params: dict[str, Any] = {"tenant_id": tenant_id, "head_seq": last.seq, "head_hash": last.hash}
        if (self._conn.dialect.name == "postgresql" and len(entry_rows) <= MAX_COMBINED
                and len(message_rows) <= MAX_COMBINED):
            for i, values in enumerate(entry_rows):
                params.update({f"a{i}_{name}": value for name, value in values.items()})
            for j, values in enumerate(message_rows):
                params.update({f"o{j}_{name}": value for name, value in values.items()})
            statement = _combined_write(len(entry_rows), tuple(entry_rows[0]), len(message_rows),
                                        tuple(message_rows[0]) if message_rows else ())
            self._conn.execute(statement, params)
            return entries
        self._conn.execute(_INSERT, entry_rows)
        if message_rows:
            self._conn.execute(_INSERT_OUTBOX, message_rows)
        self._conn.execute(_MOVE_HEAD, params)
        return entries

    def head(self, tenant_id: str) -> tuple[int, str]:
        """``(seq, hash)`` of the tenant's last entry as recorded on the tenant row."""
        row = self._conn.execute(select(tenants.c.audit_head_seq, tenants.c.audit_head_hash)
                                 .where(tenants.c.id == tenant_id)).one()
        return row.audit_head_seq, row.audit_head_hash

    def iter_chain(self, tenant_id: str, *, batch: int = 2000) -> Iterator[StoredEntry]:
        """Every entry of the tenant in ``seq`` order, read in batches."""
        after = 0
        while True:
            rows = self._conn.execute(
                select(audit_events).where(audit_events.c.tenant_id == tenant_id, audit_events.c.seq > after)
                .order_by(audit_events.c.seq).limit(batch)).all()
            if not rows:
                return
            for row in rows:
                yield _stored(row)
            after = rows[-1].seq

    def for_subject(self, tenant_id: str, subject_type: str, subject_id: str) -> list[StoredEntry]:
        """The entries about one subject (e.g. an order), oldest first."""
        rows = self._conn.execute(
            select(audit_events).where(audit_events.c.tenant_id == tenant_id,
                                       audit_events.c.subject_type == subject_type,
                                       audit_events.c.subject_id == subject_id)
            .order_by(audit_events.c.seq)).all()
        return [_stored(r) for r in rows]

    def hashes_at(self, tenant_id: str, seqs: Sequence[int]) -> dict[int, str]:
        """The stored hash at each of ``seqs`` (to check that a subject's entries link to
        their predecessors)."""
        if not seqs:
            return {}
        rows = self._conn.execute(select(audit_events.c.seq, audit_events.c.hash).where(
            audit_events.c.tenant_id == tenant_id, audit_events.c.seq.in_(list(seqs)))).all()
        return {r.seq: r.hash for r in rows}

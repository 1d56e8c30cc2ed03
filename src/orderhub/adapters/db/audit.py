"""Audit log storage: appends to each tenant's hash chain and reads it back for
verification and timelines."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from orderhub.adapters.db.tables import audit_events, tenants
from orderhub.domain.audit import AuditEntry, AuditRecord, link

# Built once: building a statement costs more CPU than SQLAlchemy's cached compile of it.
_LOCK_HEAD = (select(tenants.c.audit_head_seq, tenants.c.audit_head_hash)
              .where(tenants.c.id == bindparam("tenant_id")).with_for_update(key_share=True))
_INSERT = insert(audit_events)
_MOVE_HEAD = (update(tenants).where(tenants.c.id == bindparam("tenant_id"))
              .values(audit_head_seq=bindparam("head_seq"), audit_head_hash=bindparam("head_hash")))


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


def entry_row(entry: AuditEntry, payload: dict[str, Any]) -> dict[str, Any]:
    """The ``audit_events`` row for ``entry`` and the payload stored beside it."""
    return {**entry.record.body(entry.seq), "occurred_at": entry.record.occurred_at, "payload": payload,
            "prev_hash": entry.prev_hash, "hash": entry.hash}


class SqlAuditRepository:
    """Append and read audit entries on one connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def append(self, tenant_id: str, records: Sequence[tuple[AuditRecord, dict[str, Any]]]) -> list[AuditEntry]:
        """Link ``records`` (with their payloads) to the end of the tenant's chain.

        The tenant row is locked first (FOR NO KEY UPDATE; on SQLite the write transaction
        already excludes other writers), so concurrent transactions of one tenant extend the
        chain one after the other. NO KEY UPDATE, not UPDATE: every insert of a row that
        references the tenant (order, idempotency key, outbox row…) holds FOR KEY SHARE on
        it, which FOR UPDATE conflicts with, so two writers of one tenant would deadlock.
        """
        if not records:
            return []
        head = self._conn.execute(_LOCK_HEAD, {"tenant_id": tenant_id}).one()
        entries = link([r for r, _ in records], head_seq=head.audit_head_seq, head_hash=head.audit_head_hash)
        self._conn.execute(_INSERT, [entry_row(entry, payload)
                                     for entry, (_, payload) in zip(entries, records, strict=True)])
        last = entries[-1]
        self._conn.execute(_MOVE_HEAD, {"tenant_id": tenant_id, "head_seq": last.seq, "head_hash": last.hash})
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

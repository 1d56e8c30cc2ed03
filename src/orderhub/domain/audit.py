"""The tamper-evident timeline: append-only audit entries hash-chained per tenant.

Each entry's hash is SHA-256 over the previous entry's hash and the canonical JSON of the
entry's own fields, so editing any field, deleting an entry or reordering entries breaks
the chain at the first entry touched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orderhub.domain.time import isoformat

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 kept (not \\u-escaped)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    """SHA-256 hex of the canonical JSON of ``value``; used for payload digests."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What happened, by whom, before it is placed in the chain."""

    id: str
    tenant_id: str
    subject_type: str
    subject_id: str
    action: str
    actor: str
    source: str
    trace_id: str | None
    from_status: str | None
    to_status: str | None
    reason: str | None
    payload_digest: str
    occurred_at: datetime

    def body(self, seq: int) -> dict[str, Any]:
        """The hashed fields, in canonical form."""
        return {
            "id": self.id, "tenant_id": self.tenant_id, "seq": seq,
            "subject_type": self.subject_type, "subject_id": self.subject_id, "action": self.action,
            "actor": self.actor, "source": self.source, "trace_id": self.trace_id,
            "from_status": self.from_status, "to_status": self.to_status, "reason": self.reason,
            "payload_digest": self.payload_digest, "occurred_at": isoformat(self.occurred_at),
        }


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An audit record placed in its tenant's chain at position ``seq``."""

    record: AuditRecord
    seq: int
    prev_hash: str
    hash: str


def chain_hash(prev_hash: str, record: AuditRecord, seq: int) -> str:
    """SHA-256 hex over ``prev_hash`` followed by the canonical JSON of the record."""
    material = prev_hash + canonical_json(record.body(seq))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def link(records: Iterable[AuditRecord], *, head_seq: int, head_hash: str) -> list[AuditEntry]:
    """Place ``records`` after the chain head ``(head_seq, head_hash)``, in order."""
    entries = []
    seq, prev = head_seq, head_hash
    for record in records:
        seq += 1
        h = chain_hash(prev, record, seq)
        entries.append(AuditEntry(record=record, seq=seq, prev_hash=prev, hash=h))
        prev = h
    return entries


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first place a tenant's chain does not verify, and why."""

    tenant_id: str
    seq: int
    entry_id: str | None
    reason: str


def verify(entries: Iterable[AuditEntry], *, tenant_id: str, head_seq: int | None = None,
           head_hash: str | None = None) -> ChainBreak | None:
    """Check one tenant's entries (in ``seq`` order) against each other and the stored head.

    Returns the first break, or None when the chain is intact. Detects an edited entry (its
    hash no longer matches its content), a deleted or inserted entry (a gap in ``seq`` or a
    ``prev_hash`` that doesn't match), and a truncated tail (the head points past the end).
    """
    expected_seq, prev = 0, GENESIS_HASH
    for entry in _in_order(entries):
        expected_seq += 1
        if entry.seq != expected_seq:
            return ChainBreak(tenant_id, expected_seq, None,
                              f"entry #{expected_seq} is missing (next present is #{entry.seq}): deleted")
        if entry.prev_hash != prev:
            return ChainBreak(tenant_id, entry.seq, entry.record.id,
                              "prev_hash does not match the previous entry's hash: an entry was deleted or reordered")
        if chain_hash(prev, entry.record, entry.seq) != entry.hash:
            return ChainBreak(tenant_id, entry.seq, entry.record.id,
                              "content does not match its hash: the entry was edited")
        prev = entry.hash
    if head_seq is not None and head_seq != expected_seq:
        return ChainBreak(tenant_id, expected_seq + 1, None,
                          f"the chain head says {head_seq} entries but {expected_seq} exist: entries were deleted")
    if head_hash is not None and head_seq == expected_seq and head_hash != prev:
        return ChainBreak(tenant_id, expected_seq, None, "the last entry's hash does not match the chain head")
    return None


def _in_order(entries: Iterable[AuditEntry]) -> Iterator[AuditEntry]:
    yield from entries

"""The audit hash chain: linking, verification, and canonical JSON."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from orderhub.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    canonical_json,
    chain_hash,
    digest,
    link,
    verify,
)

TENANT = "ten_a"
T0 = datetime(2026, 11, 21, 2, 0, 0, 123456, tzinfo=UTC)


def record(n: int, **overrides: object) -> AuditRecord:
    fields: dict[str, object] = {
        "id": f"aud_{n}", "tenant_id": TENANT, "subject_type": "order", "subject_id": f"ord_{n % 2}",
        "action": "order.created" if n == 1 else "order.mark_paid", "actor": "key:kid_1", "source": "api",
        "trace_id": f"t-{n}", "from_status": None if n == 1 else "pending_payment", "to_status": "paid",
        "reason": "买家付款" if n % 2 else None, "payload_digest": digest({"n": n}),
        "occurred_at": T0 + timedelta(seconds=n),
    }
    fields.update(overrides)
    return AuditRecord(**fields)  # type: ignore[arg-type]


def chain(count: int = 5) -> list[AuditEntry]:
    return link([record(n) for n in range(1, count + 1)], head_seq=0, head_hash=GENESIS_HASH)


# --------------------------------------------------------------------------- linking
def test_link_numbers_and_chains_entries() -> None:
    entries = chain(4)
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == GENESIS_HASH
    for prev, entry in itertools.pairwise(entries):
        assert entry.prev_hash == prev.hash
    for entry in entries:
        expected = hashlib.sha256((entry.prev_hash + canonical_json(entry.record.body(entry.seq))).encode()).hexdigest()
        assert entry.hash == expected == chain_hash(entry.prev_hash, entry.record, entry.seq)
    assert len({e.hash for e in entries}) == 4


def test_link_continues_after_an_existing_head() -> None:
    whole = chain(5)
    first = link([e.record for e in whole[:2]], head_seq=0, head_hash=GENESIS_HASH)
    rest = link([e.record for e in whole[2:]], head_seq=first[-1].seq, head_hash=first[-1].hash)
    assert first + rest == whole
    assert link([], head_seq=7, head_hash="x" * 64) == []


def test_hash_covers_the_position_in_the_chain() -> None:
    r = record(1)
    assert chain_hash(GENESIS_HASH, r, 1) != chain_hash(GENESIS_HASH, r, 2)
    assert chain_hash(GENESIS_HASH, r, 1) != chain_hash("1" * 64, r, 1)


def test_occurred_at_is_hashed_in_utc_whatever_the_zone() -> None:
    shanghai = record(1).occurred_at.astimezone(timezone(timedelta(hours=8)))
    assert chain_hash(GENESIS_HASH, record(1), 1) == chain_hash(GENESIS_HASH, record(1, occurred_at=shanghai), 1)
    assert record(1).body(1)["occurred_at"] == "2026-11-21T02:00:01.123456Z"


# --------------------------------------------------------------------------- verification
def test_intact_chain_verifies() -> None:
    entries = chain()
    assert verify(entries, tenant_id=TENANT) is None
    assert verify(entries, tenant_id=TENANT, head_seq=5, head_hash=entries[-1].hash) is None
    assert verify([], tenant_id=TENANT, head_seq=0, head_hash=GENESIS_HASH) is None
    assert verify(iter(entries), tenant_id=TENANT, head_seq=5) is None  # any iterable, read once


EDITS: dict[str, Any] = {
    "id": "aud_forged", "tenant_id": "ten_b", "subject_type": "shipment", "subject_id": "ord_9",
    "action": "order.cancel", "actor": "key:kid_evil", "source": "cli", "trace_id": None,
    "from_status": "shipped", "to_status": "cancelled", "reason": "改过的理由",
    "payload_digest": digest({"n": 999}), "occurred_at": T0 - timedelta(days=1),
}


def test_every_record_field_is_covered_by_an_edit() -> None:
    assert set(EDITS) == {f.name for f in dataclasses.fields(AuditRecord)}


@pytest.mark.parametrize("position", [0, 2, 4])
@pytest.mark.parametrize("field", sorted(EDITS))
def test_edited_field_breaks_the_chain_at_that_entry(field: str, position: int) -> None:
    entries = chain()
    victim = entries[position]
    edited = dataclasses.replace(victim, record=dataclasses.replace(victim.record, **{field: EDITS[field]}))
    entries[position] = edited
    found = verify(entries, tenant_id=TENANT, head_seq=5, head_hash=entries[-1].hash)
    assert found is not None
    assert (found.tenant_id, found.seq, found.entry_id) == (TENANT, victim.seq, edited.record.id)
    assert "edited" in found.reason


def test_edited_hash_is_detected() -> None:
    entries = chain()
    entries[1] = dataclasses.replace(entries[1], hash="f" * 64)
    found = verify(entries, tenant_id=TENANT)
    assert found is not None and (found.seq, found.entry_id) == (2, "aud_2") and "edited" in found.reason


def test_rehashed_edit_is_caught_by_the_next_entry() -> None:
    """An attacker who edits entry 3 and recomputes its hash still breaks entry 4's link."""
    entries = chain()
    forged = dataclasses.replace(entries[2].record, reason="nothing to see")
    entries[2] = AuditEntry(forged, 3, entries[2].prev_hash, chain_hash(entries[2].prev_hash, forged, 3))
    found = verify(entries, tenant_id=TENANT)
    assert found is not None
    assert (found.seq, found.entry_id) == (4, "aud_4")
    assert "prev_hash" in found.reason


def test_deleted_middle_entry_breaks_at_the_gap() -> None:
    entries = chain()
    del entries[2]
    found = verify(entries, tenant_id=TENANT, head_seq=5, head_hash=chain()[-1].hash)
    assert found is not None
    assert (found.seq, found.entry_id) == (3, None)
    assert "#3 is missing" in found.reason and "deleted" in found.reason


def test_deleted_first_entry_is_detected() -> None:
    found = verify(chain()[1:], tenant_id=TENANT)
    assert found is not None and found.seq == 1 and "missing" in found.reason


def test_deleted_and_renumbered_entry_is_detected() -> None:
    """Closing the gap by renumbering the later entries doesn't help: their links break."""
    entries = chain()
    del entries[2]
    entries = [dataclasses.replace(e, seq=n) for n, e in enumerate(entries, start=1)]
    found = verify(entries, tenant_id=TENANT)
    assert found is not None and found.seq == 3


def test_deleted_last_entry_is_detected_through_the_head() -> None:
    entries = chain()
    head_seq, head_hash = entries[-1].seq, entries[-1].hash
    assert verify(entries[:-1], tenant_id=TENANT) is None  # without the head, a truncated chain looks fine
    found = verify(entries[:-1], tenant_id=TENANT, head_seq=head_seq, head_hash=head_hash)
    assert found is not None
    assert (found.seq, found.entry_id) == (5, None)
    assert "head says 5 entries but 4 exist" in found.reason


def test_last_entry_not_matching_the_head_hash_is_detected() -> None:
    entries = chain()
    found = verify(entries, tenant_id=TENANT, head_seq=5, head_hash="0" * 63 + "1")
    assert found is not None and found.seq == 5 and "chain head" in found.reason


@pytest.mark.parametrize(("i", "j"), [(0, 1), (1, 3), (3, 4)])
def test_reordered_entries_are_detected(i: int, j: int) -> None:
    entries = chain()
    entries[i], entries[j] = entries[j], entries[i]
    found = verify(entries, tenant_id=TENANT, head_seq=5)
    assert found is not None and found.seq == i + 1


@pytest.mark.parametrize(("i", "j"), [(0, 1), (1, 3), (3, 4)])
def test_swapped_records_with_seq_kept_are_detected(i: int, j: int) -> None:
    """Swapping the content of two rows while keeping their seq numbers breaks the chain."""
    entries = chain()
    a, b = entries[i], entries[j]
    entries[i] = AuditEntry(b.record, a.seq, b.prev_hash, b.hash)
    entries[j] = AuditEntry(a.record, b.seq, a.prev_hash, a.hash)
    found = verify(entries, tenant_id=TENANT, head_seq=5, head_hash=entries[-1].hash)
    assert found is not None and found.seq == i + 1


def test_entry_of_another_chain_is_detected() -> None:
    other = link([record(n, tenant_id="ten_b") for n in range(1, 4)], head_seq=0, head_hash=GENESIS_HASH)
    entries = chain(3)
    entries[1] = other[1]
    found = verify(entries, tenant_id=TENANT)
    assert found is not None and found.seq == 2


# --------------------------------------------------------------------------- canonical JSON
def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": 1, "a": {"d": [3, 2], "c": None}}) == '{"a":{"c":null,"d":[3,2]},"b":1}'
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})


def test_canonical_json_keeps_unicode() -> None:
    text = canonical_json({"city": "杭州市", "emoji": "📦", "quote": '"'})
    assert text == '{"city":"杭州市","emoji":"📦","quote":"\\""}'
    assert "\\u" not in text


def test_digest_is_sha256_of_canonical_utf8() -> None:
    value = {"z": "龙井", "a": [1, 2.5, True]}
    assert digest(value) == hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
    assert digest({"a": [1, 2.5, True], "z": "龙井"}) == digest(value)
    assert digest(value) != digest({"z": "龙井", "a": [2, 1, True]})

"""One contract for the SQL repositories, run on SQLite and on PostgreSQL (``engine`` fixture).

Connections are opened the way the unit of work opens them: a write connection
(``execution_options(**WRITE)``, which is ``BEGIN IMMEDIATE`` on SQLite) with an explicit
transaction. Only one write transaction is open at a time, as SQLite requires.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Connection, DateTime, Engine, MetaData, String, func, inspect, select

from orderhub.adapters.db import migrate
from orderhub.adapters.db.audit import SqlAuditRepository
from orderhub.adapters.db.engine import WRITE
from orderhub.adapters.db.errors import DuplicateKeyError, StaleVersionError
from orderhub.adapters.db.idempotency import IdempotencyRecord, SqlIdempotencyRepository
from orderhub.adapters.db.orders import SqlOrderRepository
from orderhub.adapters.db.tables import api_keys, audit_events, metadata, order_event_keys, orders
from orderhub.adapters.db.tenancy import SqlTenantRepository, hash_key
from orderhub.domain.access import Role
from orderhub.domain.audit import GENESIS_HASH, AuditRecord, digest, verify
from orderhub.domain.money import Money
from orderhub.domain.orders.model import Address, Buyer, Order, OrderEvent
from orderhub.domain.orders.states import OrderEventType, OrderStatus
from tests.unit.factories import T0, line
from tests.unit.factories import order as new_order

SHANGHAI = timezone(timedelta(hours=8))
# Microseconds and a non-UTC zone on the way in: both must survive, as the same instant in UTC.
PLACED = datetime(2026, 11, 21, 10, 0, 5, 123456, tzinfo=SHANGHAI)
NOW = datetime(2026, 11, 21, 2, 1, 0, 654321, tzinfo=UTC)


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A write transaction like the unit of work's; committed when the block ends cleanly."""
    conn = engine.connect().execution_options(**WRITE)
    try:
        conn.begin()
        yield conn
        conn.commit()
    finally:
        conn.close()


def make_tenant(engine: Engine, name: str = "acme") -> str:
    with write(engine) as conn:
        return SqlTenantRepository(conn).add(name, now=NOW).id


@pytest.fixture
def tenant_id(engine: Engine) -> str:
    return make_tenant(engine)


def rich_order(tenant_id: str, external_id: str = "WEB-10001") -> Order:
    """An order using every stored field: several lines, money, buyer, address, tags, times, text."""
    o = new_order(
        OrderStatus.PAID, tenant_id=tenant_id, external_id=external_id,
        lines=[line(1, sku="TEA-001", title="龙井 250g", quantity=2, unit_price="59.90", discount="10.00",
                    tax="0.50"),
               line(2, sku="CUP-9", title=None, quantity=1, unit_price="0.01")],
        shipping_fee="8.00", discount="1.50", tags=("express", "gift"), placed_at=PLACED,
        paid_at=PLACED + timedelta(seconds=5), now=NOW, channel_status="WAIT_SELLER_SEND_GOODS",
        raw_ref="inbox:42",
        buyer=Buyer(name="王小明", phone="138****5678", email="w***@example.com"),
        shipping_address=Address(country="CN", province="浙江省", city="杭州市", district="西湖区",
                                 detail="文三路 90 号 3 单元 502 室", postcode="310000", name="王小明",
                                 phone="138****5678"),
    )
    o.events.clear()
    return o


STORED_FIELDS = [f.name for f in dataclasses.fields(Order) if f.name not in ("events", "new_event_keys")]


def stored(o: Order) -> dict[str, Any]:
    return {name: getattr(o, name) for name in STORED_FIELDS}


def assert_utc(value: datetime | None) -> None:
    assert value is None or (value.tzinfo is not None and value.utcoffset() == timedelta(0)), value


# --------------------------------------------------------------------------- orders
def test_order_round_trip_preserves_every_field(engine: Engine, tenant_id: str) -> None:
    o = rich_order(tenant_id)
    with write(engine) as conn:
        SqlOrderRepository(conn).add(o)
    with write(engine) as conn:
        loaded = SqlOrderRepository(conn).get(tenant_id, o.id)
    assert loaded is not None
    assert stored(loaded) == stored(o)
    # Spot-check the details equality could hide behind.
    assert loaded.placed_at == PLACED and loaded.placed_at.microsecond == 123456
    for name in STORED_FIELDS:
        if isinstance(getattr(loaded, name), datetime):
            assert_utc(getattr(loaded, name))
    assert loaded.lines[0].unit_price == Money(5990, "CNY") and loaded.lines[0].title == "龙井 250g"
    assert loaded.lines[1].title is None
    assert loaded.total == o.total == Money(11980 - 1000 + 50 + 1 + 800 - 150, "CNY")
    assert loaded.buyer == o.buyer and loaded.shipping_address == o.shipping_address
    assert loaded.tags == ("express", "gift")
    assert loaded.events == [] and loaded.new_event_keys == []


def test_order_without_address_and_with_minimal_fields(engine: Engine, tenant_id: str) -> None:
    o = new_order(OrderStatus.PENDING_PAYMENT, tenant_id=tenant_id, currency="JPY",
                  lines=[line(currency="JPY", unit_price="1500")], shipping_address=None, buyer=Buyer(), tags=())
    with write(engine) as conn:
        SqlOrderRepository(conn).add(o)
    with write(engine) as conn:
        loaded = SqlOrderRepository(conn).get(tenant_id, o.id)
    assert loaded is not None and stored(loaded) == stored(o)
    assert loaded.shipping_address is None and loaded.paid_at is None and loaded.tags == ()
    assert loaded.total == Money(3000, "JPY")


def test_stored_totals_and_search_text(engine: Engine, tenant_id: str) -> None:
    o = rich_order(tenant_id)
    with write(engine) as conn:
        SqlOrderRepository(conn).add(o)
        row = conn.execute(select(orders).where(orders.c.id == o.id)).one()
    assert (row.subtotal_minor, row.total_minor) == (o.subtotal.amount, o.total.amount)
    assert "王小明" in row.search_text and "web-10001" in row.search_text and "cup-9" in row.search_text


def test_duplicate_add_raises_order_already_exists_and_keeps_the_first(engine: Engine, tenant_id: str) -> None:
    first = rich_order(tenant_id)
    with write(engine) as conn:
        SqlOrderRepository(conn).add(first)
    second = new_order(OrderStatus.PENDING_PAYMENT, tenant_id=tenant_id, external_id=first.external_id)
    assert second.id == first.id
    with write(engine) as conn:
        repo = SqlOrderRepository(conn)
        with pytest.raises(DuplicateKeyError) as info:
            repo.add(second)
        assert (info.value.entity, info.value.key) == ("order", first.id)
        # The failed insert was rolled back to a savepoint: the transaction is still usable.
        other = new_order(tenant_id=tenant_id, external_id="WEB-2")
        repo.add(other)
    with write(engine) as conn:
        repo = SqlOrderRepository(conn)
        kept = repo.get(tenant_id, first.id)
        assert kept is not None and kept.status is OrderStatus.PAID and len(kept.lines) == 2
        assert repo.get(tenant_id, other.id) is not None


def test_save_writes_changes_and_event_keys(engine: Engine, tenant_id: str) -> None:
    o = new_order(OrderStatus.PENDING_PAYMENT, tenant_id=tenant_id)
    with write(engine) as conn:
        SqlOrderRepository(conn).add(o)
    with write(engine) as conn:
        repo = SqlOrderRepository(conn)
        loaded = repo.get(tenant_id, o.id)
        assert loaded is not None
        loaded.apply(OrderEvent(OrderEventType.MARK_PAID, NOW, key="pay-1"), now=NOW)
        loaded.apply(OrderEvent(OrderEventType.HOLD, NOW, key="hold-1", reason="地址异常"), now=NOW)
        repo.save(loaded, loaded_version=1)
        assert loaded.new_event_keys == []
    with write(engine) as conn:
        again = SqlOrderRepository(conn).get(tenant_id, o.id)
        keys = conn.execute(select(order_event_keys.c.event_key).where(
            order_event_keys.c.order_id == o.id).order_by(order_event_keys.c.event_key)).scalars().all()
    assert again is not None
    assert (again.status, again.version, again.held_from, again.hold_reason) == (
        OrderStatus.ON_HOLD, 3, OrderStatus.PAID, "地址异常")
    assert again.paid_at == NOW
    assert again.used_event_keys() == {"pay-1", "hold-1"}
    assert keys == ["hold-1\x1fhold", "pay-1\x1fmark_paid"]  # each key with the event type it was used for
    # A persisted key is a duplicate for the next reader too.
    assert again.apply(OrderEvent(OrderEventType.MARK_PAID, NOW, key="pay-1"), now=NOW).value == "duplicate"


def stored_with_copies(engine: Engine, tenant_id: str, copies: int) -> tuple[Order, list[Order]]:
    """A paid order stored, and ``copies`` independently loaded copies of it (as concurrent
    writers would each hold)."""
    o = new_order(OrderStatus.PAID, tenant_id=tenant_id)
    with write(engine) as conn:
        SqlOrderRepository(conn).add(o)
    loaded = []
    for _ in range(copies):
        with write(engine) as conn:
            copy = SqlOrderRepository(conn).get(tenant_id, o.id)
        assert copy is not None
        loaded.append(copy)
    return o, loaded


def test_save_with_a_stale_loaded_version_raises_concurrency_conflict(engine: Engine, tenant_id: str) -> None:
    o, (stale,) = stored_with_copies(engine, tenant_id, 1)
    with write(engine) as conn:  # someone else moves the order on first
        repo = SqlOrderRepository(conn)
        fresh = repo.get(tenant_id, o.id)
        assert fresh is not None
        fresh.apply(OrderEvent(OrderEventType.SHIP, NOW), now=NOW)
        repo.save(fresh, loaded_version=1)
    stale.apply(OrderEvent(OrderEventType.CANCEL, NOW, key="cancel-1"), now=NOW)
    with write(engine) as conn:
        repo = SqlOrderRepository(conn)
        with pytest.raises(StaleVersionError, match="changed by someone else") as info:
            repo.save(stale, loaded_version=1)
        assert (info.value.entity, info.value.key) == ("order", o.id)
        current = repo.get(tenant_id, o.id)  # the transaction is still usable
    assert current is not None
    assert (current.status, current.version, current.used_event_keys()) == (OrderStatus.SHIPPED, 2, set())


def test_event_keys_are_unique_per_order(engine: Engine, tenant_id: str) -> None:
    """Two writers that both applied the same key: the second one's save is a conflict."""
    _, (a, b) = stored_with_copies(engine, tenant_id, 2)
    # 'mark_paid' on a paid order changes nothing but the key: no version bump to catch the race.
    assert a.apply(OrderEvent(OrderEventType.MARK_PAID, NOW, key="pay-1"), now=NOW).value == "unchanged"
    assert b.apply(OrderEvent(OrderEventType.MARK_PAID, NOW, key="pay-1"), now=NOW).value == "unchanged"
    with write(engine) as conn:
        SqlOrderRepository(conn).save(a, loaded_version=1)
    with write(engine) as conn:
        repo = SqlOrderRepository(conn)
        with pytest.raises(DuplicateKeyError, match="event key already applied"):
            repo.save(b, loaded_version=1)
        assert conn.execute(select(func.count()).select_from(order_event_keys)).scalar_one() == 1
    # The same key on another order is a different key.
    other = new_order(OrderStatus.PAID, tenant_id=tenant_id, external_id="WEB-2")
    with write(engine) as conn:
        repo = SqlOrderRepository(conn)
        repo.add(other)
        other.apply(OrderEvent(OrderEventType.MARK_PAID, NOW, key="pay-1"), now=NOW)
        repo.save(other, loaded_version=1)
        assert conn.execute(select(func.count()).select_from(order_event_keys)).scalar_one() == 2


def test_orders_are_isolated_by_tenant(engine: Engine) -> None:
    acme, other = make_tenant(engine, "acme"), make_tenant(engine, "other")
    o = rich_order(acme)
    twin = rich_order(other)  # same channel/shop/external id in another tenant: a different order
    assert twin.id != o.id
    with write(engine) as conn:
        repo = SqlOrderRepository(conn)
        repo.add(o)
        repo.add(twin)
    with write(engine) as conn:
        repo = SqlOrderRepository(conn)
        assert repo.get(other, o.id) is None
        assert repo.get(acme, twin.id) is None
        assert repo.get("ten_unknown", o.id) is None
        mine = repo.get(acme, o.id)
        assert mine is not None and mine.tenant_id == acme


def test_get_many_loads_like_get_and_stays_in_the_tenant(engine: Engine) -> None:
    acme, other = make_tenant(engine, "acme"), make_tenant(engine, "other")
    first, second, theirs = rich_order(acme, "WEB-1"), rich_order(acme, "WEB-2"), rich_order(other, "WEB-3")
    with write(engine) as conn:
        repo = SqlOrderRepository(conn)
        for o in (first, second, theirs):
            repo.add(o)
    with write(engine) as conn:
        repo = SqlOrderRepository(conn)
        cached = repo.get(acme, first.id)
        many = repo.get_many(acme, [first.id, second.id, theirs.id, "ord_missing"])
        assert set(many) == {first.id, second.id}
        assert many[first.id] is cached  # the identity map is kept
        assert stored(many[second.id]) == stored(second)
        assert repo.get_many(acme, []) == {}


def test_rolled_back_transaction_leaves_nothing(engine: Engine, tenant_id: str) -> None:
    o = rich_order(tenant_id)
    conn = engine.connect().execution_options(**WRITE)
    try:
        conn.begin()
        SqlOrderRepository(conn).add(o)
        conn.rollback()
    finally:
        conn.close()
    with write(engine) as conn:
        assert SqlOrderRepository(conn).get(tenant_id, o.id) is None


# --------------------------------------------------------------------------- tenants and keys
def test_tenant_add_get_and_by_name(engine: Engine) -> None:
    with write(engine) as conn:
        repo = SqlTenantRepository(conn)
        acme = repo.add("acme", now=NOW)
        shop = repo.add("杭州茶叶店", now=NOW + timedelta(seconds=1))
    with write(engine) as conn:
        repo = SqlTenantRepository(conn)
        assert repo.by_name("acme") == acme
        assert repo.by_name("杭州茶叶店") == shop
        assert repo.by_name("ACME") is None and repo.by_name("nobody") is None
        assert repo.get(acme.id) == acme and repo.get("ten_unknown") is None
        assert [t.name for t in repo.list()] == ["acme", "杭州茶叶店"]
        assert_utc(acme.created_at)
        assert acme.created_at == NOW
        assert SqlAuditRepository(conn).head(acme.id) == (0, GENESIS_HASH)


def test_api_keys_are_stored_only_as_hashes(engine: Engine, tenant_id: str) -> None:
    with write(engine) as conn:
        repo = SqlTenantRepository(conn)
        key_id, plain = repo.issue_key(tenant_id, Role.OPERATOR, now=NOW, label="收银台")
        viewer_id, viewer_plain = repo.issue_key(tenant_id, Role.VIEWER, now=NOW)
    assert plain != viewer_plain and plain.startswith("ohk_")
    with write(engine) as conn:
        rows = conn.execute(select(api_keys)).mappings().all()
        repo = SqlTenantRepository(conn)
        found = repo.find_key(plain)
        assert repo.find_key(viewer_plain) is not None
        assert repo.find_key(plain + "x") is None
        assert repo.find_key("") is None
        assert repo.find_key(hash_key(plain)) is None  # the stored hash is not itself a key
    assert found is not None
    assert (found.id, found.tenant_id, found.role, found.revoked) == (key_id, tenant_id, Role.OPERATOR, False)
    assert plain.split("_")[1] == found.prefix
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) == {key_id, viewer_id}
    assert by_id[key_id]["key_hash"] == hash_key(plain) and by_id[key_id]["label"] == "收银台"
    # ohk_<prefix>_<secret>: the secret is URL-safe base64 and may itself contain "_".
    secret = plain.split("_", 2)[2]
    for row in rows:
        for column, value in row.items():
            assert plain not in str(value), f"api_keys.{column} holds the plain key"
            assert secret not in str(value), f"api_keys.{column} holds the key's secret part"


# --------------------------------------------------------------------------- idempotency
def test_idempotency_get_add_and_duplicate(engine: Engine, tenant_id: str) -> None:
    other = make_tenant(engine, "other")
    with write(engine) as conn:
        repo = SqlIdempotencyRepository(conn)
        assert repo.get(tenant_id, "orders.create", "key-1") is None
        repo.add(tenant_id, "orders.create", "key-1", "h" * 64, "ord_1", now=NOW)
        with pytest.raises(DuplicateKeyError, match="key-1"):
            repo.add(tenant_id, "orders.create", "key-1", "x" * 64, "ord_2", now=NOW)
        # Same key, another scope or another tenant: independent.
        repo.add(tenant_id, "orders.events", "key-1", "e" * 64, "ord_3", now=NOW)
        repo.add(other, "orders.create", "key-1", "o" * 64, "ord_4", now=NOW)
    with write(engine) as conn:
        repo = SqlIdempotencyRepository(conn)
        assert repo.get(tenant_id, "orders.create", "key-1") == IdempotencyRecord("h" * 64, "ord_1")
        assert repo.get(tenant_id, "orders.events", "key-1") == IdempotencyRecord("e" * 64, "ord_3")
        assert repo.get(other, "orders.create", "key-1") == IdempotencyRecord("o" * 64, "ord_4")
        assert repo.get(tenant_id, "orders.create", "KEY-1") is None
        assert repo.get("ten_unknown", "orders.create", "key-1") is None


def test_idempotency_duplicate_from_a_later_transaction(engine: Engine, tenant_id: str) -> None:
    with write(engine) as conn:
        SqlIdempotencyRepository(conn).add(tenant_id, "orders.create", "k", "h" * 64, "ord_1", now=NOW)
    with write(engine) as conn:
        repo = SqlIdempotencyRepository(conn)
        with pytest.raises(DuplicateKeyError):
            repo.add(tenant_id, "orders.create", "k", "h" * 64, "ord_1", now=NOW)
        assert repo.get(tenant_id, "orders.create", "k") == IdempotencyRecord("h" * 64, "ord_1")


# --------------------------------------------------------------------------- audit
def audit_record(tenant_id: str, n: int, subject_id: str = "ord_1") -> AuditRecord:
    return AuditRecord(
        id=f"aud_{tenant_id}_{n}", tenant_id=tenant_id, subject_type="order", subject_id=subject_id,
        action="order.created" if n == 1 else "order.mark_paid", actor="key:kid_1", source="api",
        trace_id=None if n % 2 else f"t-{n}", from_status=None if n == 1 else "pending_payment",
        to_status="paid", reason="买家付款" if n % 2 else None, payload_digest=digest({"n": n}),
        occurred_at=PLACED + timedelta(microseconds=n))


def test_audit_append_links_to_the_head_across_calls(engine: Engine, tenant_id: str) -> None:
    payloads = [{"order": {"city": "杭州市", "n": n}} for n in range(1, 6)]
    with write(engine) as conn:
        first = SqlAuditRepository(conn).append(tenant_id, [
            (audit_record(tenant_id, 1), payloads[0]), (audit_record(tenant_id, 2, "ord_2"), payloads[1])])
    with write(engine) as conn:
        repo = SqlAuditRepository(conn)
        assert repo.append(tenant_id, []) == []
        second = repo.append(tenant_id, [(audit_record(tenant_id, n, f"ord_{n % 2 + 1}"), payloads[n - 1])
                                         for n in (3, 4, 5)])
    assert [e.seq for e in first + second] == [1, 2, 3, 4, 5]
    assert first[0].prev_hash == GENESIS_HASH
    assert second[0].prev_hash == first[-1].hash
    with write(engine) as conn:
        repo = SqlAuditRepository(conn)
        assert repo.head(tenant_id) == (5, second[-1].hash)
        chain = list(repo.iter_chain(tenant_id, batch=2))  # several batches
        assert [s.entry for s in chain] == first + second
        assert [s.payload for s in chain] == payloads
        assert verify([s.entry for s in chain], tenant_id=tenant_id, head_seq=5,
                      head_hash=second[-1].hash) is None
        for s in chain:
            assert_utc(s.entry.record.occurred_at)
        subject = repo.for_subject(tenant_id, "order", "ord_2")
        assert [s.entry.seq for s in subject] == [2, 3, 5]
        assert all(s.entry.record.subject_id == "ord_2" for s in subject)
        assert repo.for_subject(tenant_id, "order", "ord_9") == []
        assert repo.hashes_at(tenant_id, [1, 4]) == {1: first[0].hash, 4: second[1].hash}
        assert repo.hashes_at(tenant_id, []) == {}


def test_audit_chains_are_per_tenant(engine: Engine) -> None:
    acme, other = make_tenant(engine, "acme"), make_tenant(engine, "other")
    with write(engine) as conn:
        repo = SqlAuditRepository(conn)
        a = repo.append(acme, [(audit_record(acme, 1), {}), (audit_record(acme, 2), {})])
        b = repo.append(other, [(audit_record(other, 1), {"x": 1})])
    assert [e.seq for e in a] == [1, 2] and [e.seq for e in b] == [1]
    assert b[0].prev_hash == GENESIS_HASH
    with write(engine) as conn:
        repo = SqlAuditRepository(conn)
        assert [s.entry for s in repo.iter_chain(other)] == b
        assert repo.for_subject(other, "order", "ord_1")[0].entry == b[0]
        assert [s.entry for s in repo.for_subject(acme, "order", "ord_1")] == a
        assert list(repo.iter_chain("ten_unknown")) == []
        assert repo.head(acme) == (2, a[-1].hash) and repo.head(other) == (1, b[0].hash)


def test_audit_tampering_in_the_database_is_detected(engine: Engine, tenant_id: str) -> None:
    with write(engine) as conn:
        SqlAuditRepository(conn).append(tenant_id, [(audit_record(tenant_id, n), {}) for n in (1, 2, 3)])
    with write(engine) as conn:
        conn.execute(audit_events.update().where(audit_events.c.seq == 2).values(reason="改过"))
    with write(engine) as conn:
        repo = SqlAuditRepository(conn)
        seq, head_hash = repo.head(tenant_id)
        found = verify([s.entry for s in repo.iter_chain(tenant_id)], tenant_id=tenant_id, head_seq=seq,
                       head_hash=head_hash)
    assert found is not None and found.seq == 2 and "edited" in found.reason


# --------------------------------------------------------------------------- schema
# Strictest comparison: column types and server defaults too. UTCDateTime needs no special
# case: Alembic compares a TypeDecorator through its impl, DateTime(timezone=True), which is
# what the migrations create (timestamptz on PostgreSQL; SQLite has a single DATETIME).
COMPARE = {"compare_type": True, "compare_server_default": True}


def schema_differences(conn: Connection, target: MetaData) -> list[Any]:
    context = MigrationContext.configure(conn, opts={**COMPARE, "target_metadata": target})
    return list(compare_metadata(context, target))


def test_migrations_and_metadata_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == migrate.head_revision(engine)
        differences = schema_differences(conn, metadata)
        tables = set(inspect(conn).get_table_names())
    assert differences == [], "migrations and tables.py disagree:\n" + "\n".join(map(repr, differences))
    assert {t.name for t in metadata.sorted_tables} <= tables
    assert migrate.is_up_to_date(engine)


def test_schema_comparison_notices_differences(engine: Engine) -> None:
    """The comparison above is not vacuous: a missing column and a changed type are reported."""
    changed = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["orders"].append_column(Column("note", String(10)))
    changed.tables["orders"].c.external_id.type = String(300)
    if engine.dialect.name == "postgresql":  # SQLite stores every datetime the same way
        changed.tables["orders"].c.placed_at.type = DateTime(timezone=False)
    with engine.connect() as conn:
        differences = schema_differences(conn, changed)
    flat = [d[0] if isinstance(d, list) else d for d in differences]
    found = {(d[0], d[2], d[3] if d[0] != "add_column" else d[3].name) for d in flat}
    expected = {("add_column", "orders", "note"), ("modify_type", "orders", "external_id")}
    if engine.dialect.name == "postgresql":
        expected.add(("modify_type", "orders", "placed_at"))
    assert found == expected


def test_dates_come_back_aware_utc_on_every_engine(engine: Engine, tenant_id: str) -> None:
    o = new_order(tenant_id=tenant_id, placed_at=PLACED, now=T0)
    with write(engine) as conn:
        SqlOrderRepository(conn).add(o)
        row = conn.execute(select(orders.c.placed_at, orders.c.created_at).where(orders.c.id == o.id)).one()
    assert row.placed_at == PLACED and row.placed_at.tzinfo is UTC
    assert row.created_at == T0 and row.created_at.tzinfo is UTC

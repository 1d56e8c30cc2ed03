"""Warehouses and stock over HTTP (DESIGN.md §3, §6, §8; issue 4 scope 1 and 3, "Bad input"):
create and list warehouses, set / adjust / list stock and per-SKU availability, optimistic
versions, refusals that change nothing, every change in the audit chain and every row equal
to the sum of its movements — on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from orderhub.adapters.db.tables import audit_events, outbox
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.service_layer.errors import StockVersionMismatch
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.service_layer.inventory_queries import InventoryQueries
from tests.http_helpers import auth

WAREHOUSES = "/api/v1/warehouses"
INVENTORY = "/api/v1/inventory"

ORDER: dict[str, Any] = {
    "external_id": "WEB-1", "channel": "own_site", "shop": "main", "currency": "CNY", "status": "paid",
    "placed_at": "2026-11-21T10:00:00+08:00", "paid_at": "2026-11-21T10:00:05+08:00",
    "buyer": {"name": "王小明", "phone": "138****5678", "email": None},
    "shipping_address": {"country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
                         "detail": "文三路 90 号", "postcode": "310000", "name": "王小明", "phone": "138****5678"},
    "lines": [{"sku": "TEA-001", "title": "龙井 250g", "quantity": 3, "unit_price": "59.90"}],
}


def assert_problem(response: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    if field is not None:
        assert body["field"] == field, body
    return body


def add_warehouse(client: TestClient, code: str, **extra: Any) -> dict[str, Any]:
    r = client.post(WAREHOUSES, json={"code": code, "name": f"{code} 仓", **extra})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def put_stock(client: TestClient, warehouse: str, sku: str, **body: Any) -> dict[str, Any]:
    r = client.put(f"{INVENTORY}/{warehouse}/{sku}", json=body)
    assert r.status_code == 200, r.text
    row: dict[str, Any] = r.json()
    return row


def adjust(client: TestClient, warehouse: str, sku: str, kind: str, quantity: int,
           reason: str = "test") -> Any:
    return client.post(f"{INVENTORY}/{warehouse}/{sku}/adjustments",
                       json={"kind": kind, "quantity": quantity, "reason": reason})


def rows(client: TestClient, **params: str) -> list[dict[str, Any]]:
    r = client.get(INVENTORY, params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def audit_count(hub: OrderHub, tenant_id: str, subject_type: str | None = None) -> int:
    query = select(func.count()).select_from(audit_events).where(audit_events.c.tenant_id == tenant_id)
    if subject_type is not None:
        query = query.where(audit_events.c.subject_type == subject_type)
    with hub.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def actions(hub: OrderHub, tenant_id: str, subject_type: str) -> list[tuple[str, str]]:
    """(subject id, action) of the tenant's audit entries about ``subject_type``, in chain order."""
    with hub.engine.connect() as conn:
        found = conn.execute(select(audit_events.c.subject_id, audit_events.c.action).where(
            audit_events.c.tenant_id == tenant_id, audit_events.c.subject_type == subject_type)
            .order_by(audit_events.c.seq)).all()
    return [(r[0], r[1]) for r in found]


def assert_ledger(client: TestClient, hub: OrderHub, tenant_id: str) -> None:
    """Every stock row equals the sum of its movements, and the audit chain is intact."""
    for row in rows(client):
        r = client.get(f"{INVENTORY}/{row['warehouse']}/{row['sku']}/movements")
        assert r.status_code == 200, r.text
        moves = r.json()["items"]
        assert sum(m["on_hand_delta"] for m in moves) == row["on_hand"], (row, moves)
        assert sum(m["reserved_delta"] for m in moves) == row["reserved"], (row, moves)
        assert sum(m["presale_delta"] for m in moves) == row["presale_reserved"], (row, moves)
    [(checked_tenant, entries, broken)] = list(hub.queries.verify_audit([tenant_id]))
    assert checked_tenant == tenant_id and entries > 0
    assert broken is None, broken


# ---------------------------------------------------------------------------- warehouses


def test_create_and_list_warehouses(client: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    created = add_warehouse(client, "HZ1", province="浙江省", city="杭州市", lat="30.2741", lon=120.1551,
                            on_time_rate="0.975", handling_cost="3.50")
    assert created["code"] == "HZ1" and created["name"] == "HZ1 仓" and created["id"].startswith("wh_")
    assert (created["lat"], created["lon"]) == ("30.2741", "120.1551")
    assert created["on_time_rate"] == "0.975"
    assert created["handling_cost"] == {"amount": 350, "currency": "CNY"}
    # DESIGN.md §8, verbatim.
    example = client.post(WAREHOUSES, json={"code": "HZ2", "name": "杭州仓", "province": "浙江省",
                                            "city": "杭州市"})
    assert example.status_code == 201, example.text
    assert example.json()["on_time_rate"] == "1" and example.json()["lat"] is None

    listed = client.get(WAREHOUSES)
    assert listed.status_code == 200
    assert [w["code"] for w in listed.json()["items"]] == ["HZ1", "HZ2"]
    assert listed.json()["items"][0] == created
    assert [a for _, a in actions(hub, tenant.tenant_id, "warehouse")] == ["warehouse.created"] * 2


def test_duplicate_code_is_409_and_viewer_is_403(client: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    add_warehouse(client, "HZ1")
    before = audit_count(hub, tenant.tenant_id)
    assert_problem(client.post(WAREHOUSES, json={"code": "HZ1", "name": "again"}), 409,
                   "warehouse_already_exists", "code")

    viewer = hub.bus.handle(commands.CreateApiKey(tenant="acme", role="viewer"))
    r = client.post(WAREHOUSES, json={"code": "SH1", "name": "上海仓"}, headers=auth(viewer.api_key))
    assert_problem(r, 403, "permission_denied")
    r = client.put(f"{INVENTORY}/HZ1/TEA-001", json={"on_hand": 5}, headers=auth(viewer.api_key))
    assert_problem(r, 403, "permission_denied")
    # Reading is fine for a viewer; writing stock is the warehouse role's job.
    assert client.get(WAREHOUSES, headers=auth(viewer.api_key)).status_code == 200
    keeper = hub.bus.handle(commands.CreateApiKey(tenant="acme", role="warehouse"))
    r = client.put(f"{INVENTORY}/HZ1/TEA-001", json={"on_hand": 5}, headers=auth(keeper.api_key))
    assert r.status_code == 200, r.text
    assert audit_count(hub, tenant.tenant_id) == before + 3  # two keys issued, one stock change

    # Another tenant sees neither the warehouse nor its stock, and may reuse the code.
    other = hub.bus.handle(commands.CreateTenant("globex"))
    assert client.get(WAREHOUSES, headers=auth(other.api_key)).json() == {"items": []}
    assert client.get(INVENTORY, headers=auth(other.api_key)).json() == {"items": []}
    r = client.put(f"{INVENTORY}/HZ1/TEA-001", json={"on_hand": 5}, headers=auth(other.api_key))
    assert_problem(r, 404, "warehouse_not_found")
    r = client.post(WAREHOUSES, json={"code": "HZ1", "name": "their own"}, headers=auth(other.api_key))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(("body", "field"), [
    ({"code": "HZ 1", "name": "x"}, "code"),
    ({"code": "HZ1", "name": "   "}, "name"),
    ({"code": "HZ1"}, "name"),
    ({"code": "HZ1", "name": "x", "lat": "91"}, "lat"),
    ({"code": "HZ1", "name": "x", "lat": "30.1234567", "lon": "120"}, "lat"),
    ({"code": "HZ1", "name": "x", "lon": "NaN", "lat": "1"}, "lon"),
    ({"code": "HZ1", "name": "x", "on_time_rate": 1.5}, "on_time_rate"),
    ({"code": "HZ1", "name": "x", "handling_cost": "-1.00"}, "handling_cost"),
    ({"code": "HZ1", "name": "x", "handling_cost": "1.001"}, "handling_cost"),
    ({"code": "HZ1", "name": "x", "colour": "red"}, "colour"),
])
def test_bad_warehouse_input_is_422_with_the_field(client: TestClient, hub: OrderHub, tenant: IssuedKey,
                                                   body: dict[str, Any], field: str) -> None:
    before = audit_count(hub, tenant.tenant_id)
    r = client.post(WAREHOUSES, json=body)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["field"] == field, problem
    assert client.get(WAREHOUSES).json() == {"items": []}
    assert audit_count(hub, tenant.tenant_id) == before


def test_the_handler_checks_what_the_cli_sends(hub: OrderHub, tenant: IssuedKey) -> None:
    """The CLI has no Pydantic in front: the handler refuses the same things by field."""
    bus = hub.bus
    actor = commands.Actor(tenant_id=tenant.tenant_id, actor="cli", source="cli")
    cases = [(dict(code="../x", name="x"), "code"), (dict(code="A", name="x", lat="30"), "lon"),
             (dict(code="A", name="x", on_time_rate="0.9999"), "on_time_rate"),
             (dict(code="A", name="x", lat="abc", lon="1"), "lat")]
    for fields, field in cases:
        with pytest.raises(Exception) as caught:
            bus.handle(commands.CreateWarehouse(actor=actor, **fields))
        assert getattr(caught.value, "field", None) == field, (fields, caught.value)
    assert InventoryQueries(hub.engine).warehouses(tenant.tenant_id) == []


# ---------------------------------------------------------------------------- stock


def test_set_adjust_list_and_availability(client: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    add_warehouse(client, "HZ1")
    add_warehouse(client, "SH1")
    # DESIGN.md §8: PUT {"on_hand": 10} answers the row.
    row = put_stock(client, "HZ1", "TEA-001", on_hand=10)
    assert row == {"warehouse": "HZ1", "sku": "TEA-001", "on_hand": 10, "reserved": 0, "presale_reserved": 0,
                   "available": 10, "safety_stock": 0, "sellable": 10, "version": 1}
    row = put_stock(client, "HZ1", "TEA-001", on_hand=12, safety_stock=2, expected_version=1)
    assert (row["on_hand"], row["safety_stock"], row["sellable"], row["version"]) == (12, 2, 10, 2)
    # The same figures again change nothing: no new version, no audit entry.
    assert put_stock(client, "HZ1", "TEA-001", on_hand=12) == row

    r = adjust(client, "SH1", "TEA-001", "receipt", 5, "PO-778 arrived")
    assert r.status_code == 200, r.text
    assert (r.json()["warehouse"], r.json()["on_hand"], r.json()["version"]) == ("SH1", 5, 1)
    r = adjust(client, "SH1", "TEA-001", "damage", 2, "crushed in the dock")
    assert (r.json()["on_hand"], r.json()["available"]) == (3, 3)
    r = adjust(client, "SH1", "TEA-001", "correction", -1, "miscounted receipt")
    assert r.json()["on_hand"] == 2
    r = adjust(client, "SH1", "TEA-001", "count", 7, "cycle count")
    assert (r.json()["on_hand"], r.json()["version"]) == (7, 4)
    r = adjust(client, "HZ1", "TEA-002", "count", 4, "found on a shelf")
    assert (r.json()["on_hand"], r.json()["version"]) == (4, 1)

    listed = rows(client)
    assert [(x["sku"], x["warehouse"], x["on_hand"]) for x in listed] == [
        ("TEA-001", "HZ1", 12), ("TEA-001", "SH1", 7), ("TEA-002", "HZ1", 4)]
    assert [x["warehouse"] for x in rows(client, sku="TEA-001")] == ["HZ1", "SH1"]
    assert [x["sku"] for x in rows(client, warehouse="HZ1")] == ["TEA-001", "TEA-002"]
    assert rows(client, sku="NOPE") == []

    avail = client.get(f"{INVENTORY}/TEA-001/availability")
    assert avail.status_code == 200, avail.text
    body = avail.json()
    assert body["sku"] == "TEA-001" and [w["warehouse"] for w in body["warehouses"]] == ["HZ1", "SH1"]
    assert body["totals"] == {"on_hand": 19, "reserved": 0, "presale_reserved": 0, "available": 19,
                              "safety_stock": 2, "sellable": 17}
    assert client.get(f"{INVENTORY}/NOPE/availability").json()["totals"]["available"] == 0

    moves = client.get(f"{INVENTORY}/SH1/TEA-001/movements").json()["items"]
    assert [(m["kind"], m["on_hand_delta"], m["reason"]) for m in moves] == [
        ("receipt", 5, "PO-778 arrived"), ("damage", -2, "crushed in the dock"),
        ("correction", -1, "miscounted receipt"), ("count", 5, "cycle count")]
    assert all(m["actor"] == f"key:{tenant.key_id}" for m in moves)

    assert actions(hub, tenant.tenant_id, "stock") == [
        ("HZ1/TEA-001", "stock.set"), ("HZ1/TEA-001", "stock.set"), ("SH1/TEA-001", "stock.receipt"),
        ("SH1/TEA-001", "stock.damage"), ("SH1/TEA-001", "stock.correction"), ("SH1/TEA-001", "stock.count"),
        ("HZ1/TEA-002", "stock.count")]
    assert_ledger(client, hub, tenant.tenant_id)


def test_stale_version_is_409_and_changes_nothing(client: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    add_warehouse(client, "HZ1")
    first = put_stock(client, "HZ1", "TEA-001", on_hand=10, expected_version=0)
    put_stock(client, "HZ1", "TEA-001", on_hand=8, expected_version=first["version"])
    before = (rows(client), audit_count(hub, tenant.tenant_id))

    r = client.put(f"{INVENTORY}/HZ1/TEA-001", json={"on_hand": 50, "expected_version": first["version"]})
    problem = assert_problem(r, 409, "stock_version_mismatch", "expected_version")
    assert problem["current_version"] == 2
    r = client.post(f"{INVENTORY}/HZ1/TEA-001/adjustments",
                    json={"kind": "receipt", "quantity": 5, "reason": "late", "expected_version": 1})
    assert_problem(r, 409, "stock_version_mismatch")
    # A create that expects an existing row (or the reverse) is stale too.
    r = client.put(f"{INVENTORY}/HZ1/TEA-009", json={"on_hand": 1, "expected_version": 1})
    assert_problem(r, 409, "stock_version_mismatch")
    assert (rows(client), audit_count(hub, tenant.tenant_id)) == before
    assert_ledger(client, hub, tenant.tenant_id)


def test_below_reserved_and_damage_over_available_are_422_and_change_nothing(
        client: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    add_warehouse(client, "HZ1", province="浙江省", city="杭州市")
    put_stock(client, "HZ1", "TEA-001", on_hand=5)
    order = client.post("/api/v1/orders", json=ORDER, headers={"Idempotency-Key": "inv-1"})
    assert order.status_code == 201, order.text
    assert order.json()["status"] == "paid"  # reserved, not held out of stock
    [row] = rows(client)
    assert (row["on_hand"], row["reserved"], row["available"]) == (5, 3, 2)
    before = (rows(client), audit_count(hub, tenant.tenant_id))

    r = client.put(f"{INVENTORY}/HZ1/TEA-001", json={"on_hand": 2})
    problem = assert_problem(r, 422, "invalid_stock", "on_hand")
    assert "reserved" in problem["detail"]
    r = adjust(client, "HZ1", "TEA-001", "damage", 3, "water damage")
    problem = assert_problem(r, 422, "invalid_stock", "quantity")
    assert "available: 2" in problem["detail"]
    assert_problem(adjust(client, "HZ1", "TEA-001", "correction", -3), 422, "invalid_stock", "quantity")
    assert_problem(adjust(client, "HZ1", "TEA-001", "count", 2), 422, "invalid_stock", "quantity")
    assert (rows(client), audit_count(hub, tenant.tenant_id)) == before

    # Exactly what is available may go: on_hand down to what is reserved.
    r = adjust(client, "HZ1", "TEA-001", "damage", 2, "water damage")
    assert r.status_code == 200, r.text
    assert (r.json()["on_hand"], r.json()["reserved"], r.json()["available"]) == (3, 3, 0)
    moves = client.get(f"{INVENTORY}/HZ1/TEA-001/movements").json()["items"]
    assert [m["kind"] for m in moves] == ["count", "reserve", "damage"]
    assert moves[1]["order_id"] == order.json()["id"]
    assert_ledger(client, hub, tenant.tenant_id)


def test_unknown_warehouse_or_stock_row_is_404(client: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    add_warehouse(client, "HZ1")
    before = audit_count(hub, tenant.tenant_id)
    assert_problem(client.put(f"{INVENTORY}/NOPE/TEA-001", json={"on_hand": 1}), 404, "warehouse_not_found",
                   "warehouse")
    assert_problem(adjust(client, "NOPE", "TEA-001", "receipt", 1), 404, "warehouse_not_found")
    assert_problem(adjust(client, "HZ1", "TEA-404", "damage", 1), 404, "stock_not_found", "sku")
    assert_problem(adjust(client, "HZ1", "TEA-404", "correction", 1), 404, "stock_not_found", "sku")
    assert rows(client) == []
    assert audit_count(hub, tenant.tenant_id) == before


@pytest.mark.parametrize(("url", "body", "field"), [
    ("/HZ1/TEA-001", {"on_hand": -1}, "on_hand"),
    ("/HZ1/TEA-001", {"on_hand": 1.5}, "on_hand"),
    ("/HZ1/TEA-001", {"on_hand": "10"}, "on_hand"),
    ("/HZ1/TEA-001", {"on_hand": True}, "on_hand"),
    ("/HZ1/TEA-001", {"on_hand": 10**12}, "on_hand"),
    ("/HZ1/TEA-001", {"on_hand": 1, "safety_stock": -2}, "safety_stock"),
    ("/HZ1/TEA-001", {"on_hand": 1, "expected_version": -1}, "expected_version"),
    ("/HZ1/TEA-001", {}, "on_hand"),
    ("/HZ1/TEA-001/adjustments", {"kind": "theft", "quantity": 1, "reason": "x"}, "kind"),
    ("/HZ1/TEA-001/adjustments", {"kind": "reserve", "quantity": 1, "reason": "x"}, "kind"),
    ("/HZ1/TEA-001/adjustments", {"kind": "receipt", "quantity": 1, "reason": " "}, "reason"),
    ("/HZ1/TEA-001/adjustments", {"kind": "receipt", "quantity": 1}, "reason"),
    ("/HZ1/TEA-001/adjustments", {"kind": "receipt", "quantity": 2.5, "reason": "x"}, "quantity"),
    ("/HZ1/TEA-001/adjustments", {"kind": "receipt", "quantity": 10**10, "reason": "x"}, "quantity"),
    ("/HZ1/TEA-001/adjustments", {"kind": "receipt", "quantity": -3, "reason": "x"}, "quantity"),
    ("/HZ1/TEA-001/adjustments", {"kind": "receipt", "quantity": 0, "reason": "x"}, "quantity"),
    ("/HZ1/TEA-001/adjustments", {"kind": "count", "quantity": -1, "reason": "x"}, "quantity"),
])
def test_bad_stock_input_is_422_with_the_field(client: TestClient, hub: OrderHub, tenant: IssuedKey, url: str,
                                               body: dict[str, Any], field: str) -> None:
    add_warehouse(client, "HZ1")
    before = audit_count(hub, tenant.tenant_id)
    method = client.post if url.endswith("adjustments") else client.put
    r = method(f"{INVENTORY}{url}", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field, r.json()
    assert rows(client) == []
    assert audit_count(hub, tenant.tenant_id) == before


def test_adjustment_of_a_new_row_of_a_new_warehouse_turns_inventory_on_for_orders(
        client: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    """A tenant with a warehouse tracks stock: an order for a SKU nobody received is held."""
    add_warehouse(client, "HZ1")
    held = client.post("/api/v1/orders", json={**ORDER, "external_id": "WEB-2"})
    assert held.status_code == 201, held.text
    assert held.json()["status"] == "on_hold"
    assert adjust(client, "HZ1", "TEA-001", "receipt", 3, "first delivery").status_code == 200
    placed = client.post("/api/v1/orders", json={**ORDER, "external_id": "WEB-3"})
    assert placed.json()["status"] == "paid"
    assert rows(client)[0]["available"] == 0
    assert_ledger(client, hub, tenant.tenant_id)


def test_long_sku_is_refused_before_the_audit_subject_overflows(client: TestClient, hub: OrderHub,
                                                                tenant: IssuedKey) -> None:
    add_warehouse(client, "HZ1")
    r = client.put(f"{INVENTORY}/HZ1/{'S' * 99}", json={"on_hand": 1})
    assert_problem(r, 422, "invalid_input", "sku")
    longest = "S" * 95  # "HZ1/" + 95 characters: the audit subject's full width
    assert put_stock(client, "HZ1", longest, on_hand=1)["sku"] == longest
    assert_ledger(client, hub, tenant.tenant_id)


# ---------------------------------------------------------------------------- concurrency


def test_concurrent_writers_neither_lose_updates_nor_create_a_row_twice(client: TestClient, hub: OrderHub,
                                                                         tenant: IssuedKey) -> None:
    add_warehouse(client, "HZ1")
    put_stock(client, "HZ1", "TEA-001", on_hand=10)
    bus = hub.bus
    actor = commands.Actor(tenant_id=tenant.tenant_id, actor="test", source="test")
    threads, rounds = 8, 5
    barrier = threading.Barrier(threads)

    def receive(_: int) -> None:
        barrier.wait()
        for _ in range(rounds):
            bus.handle(commands.AdjustStock(actor=actor, warehouse="HZ1", sku="TEA-001", kind="receipt",
                                            quantity=1, reason="concurrent receipt"))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(receive, range(threads)))
    [row] = rows(client, sku="TEA-001")
    assert (row["on_hand"], row["version"]) == (10 + threads * rounds, 1 + threads * rounds)

    # Creating the same new row at once with expected_version 0: one wins, the rest are told.
    creators = threading.Barrier(threads)

    def create(n: int) -> str:
        creators.wait()
        try:
            bus.handle(commands.SetStock(actor=actor, warehouse="HZ1", sku="TEA-NEW", on_hand=n + 1,
                                         expected_version=0))
        except StockVersionMismatch:
            return "stale"
        return "created"

    with ThreadPoolExecutor(threads) as pool:
        outcomes = list(pool.map(create, range(threads)))
    assert outcomes.count("created") == 1, outcomes
    [new] = rows(client, sku="TEA-NEW")
    assert new["version"] == 1

    # Receipts name no version: the ones that lose the race to create the row are retried
    # on the row the winner created, so every unit counts.
    receivers = threading.Barrier(threads)

    def first_receipt(_: int) -> None:
        receivers.wait()
        bus.handle(commands.AdjustStock(actor=actor, warehouse="HZ1", sku="TEA-FRESH", kind="receipt", quantity=2,
                                        reason="first delivery"))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(first_receipt, range(threads)))
    [fresh] = rows(client, sku="TEA-FRESH")
    assert (fresh["on_hand"], fresh["version"]) == (2 * threads, threads)
    assert len(actions(hub, tenant.tenant_id, "stock")) == 1 + threads * rounds + 1 + threads
    assert_ledger(client, hub, tenant.tenant_id)


def test_stock_changes_queue_what_each_channel_may_sell(client: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    actor = commands.Actor(tenant_id=tenant.tenant_id, actor="test", source="test")
    for channel, code in (("taobao", "tb-1"), ("douyin", "dy-1")):
        hub.bus.handle(commands.RegisterShop(actor=actor, code=code, channel=channel, name=code,
                                             secret="feed-secret-1"))
    assert client.post(WAREHOUSES, json={"code": "HZ1", "name": "杭州仓"}).status_code == 201
    assert client.put(f"{INVENTORY}/HZ1/TEA-001", json={"on_hand": 40, "safety_stock": 4}).status_code == 200
    assert client.post(f"{INVENTORY}/HZ1/TEA-001/adjustments",
                       json={"kind": "damage", "quantity": 6, "reason": "crushed"}).status_code == 200
    with hub.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.target, outbox.c.payload).where(
            outbox.c.kind == "channel_stock").order_by(outbox.c.target)).all()
    # One pending row per channel and SKU, holding the latest figure: 40 − 6 − 4 safety = 30.
    assert [(r.target, r.payload["quantity"]) for r in rows] == [("douyin:TEA-001", 30), ("taobao:TEA-001", 30)]

"""Orders reserve stock in the transaction that stores them, and every later change moves
their reservations (DESIGN.md §2 step 3, §3), on SQLite and PostgreSQL: out of stock holds
the order, cancel releases, ship consumes, payment clears the expiry, a release from an
out-of-stock hold reserves again, presale orders use the presale bucket, and the chosen
allocation with every candidate's score is stored and in the timeline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from orderhub.adapters.db.inventory import WarehouseRow
from orderhub.adapters.db.tables import allocations, reservations, stock_movements
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands, ids
from orderhub.domain.inventory.stock import Movement, MovementKind
from orderhub.entrypoints.api.app import create_app
from orderhub.service_layer.handlers.tenancy import IssuedKey
from tests.integration.test_api_orders import order_body

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


def stock(hub: OrderHub, tenant_id: str, rows: dict[tuple[str, str], int]) -> None:
    """Warehouses HZ1 (Hangzhou), SH1 (Shanghai), BJ1 (Beijing) and the given on_hand figures."""
    with hub.uow_factory() as uow:
        sites = {"HZ1": ("浙江省", "杭州市", 30274000, 120155000), "SH1": ("上海市", "上海市", 31230000, 121473000),
                 "BJ1": ("北京市", "北京市", 39904000, 116407000)}
        ids_by_code = {}
        for code, (province, city, lat, lon) in sites.items():
            found = uow.inventory.warehouse(tenant_id, code)
            if found is None:
                row = WarehouseRow(id=ids.new_id("wh"), tenant_id=tenant_id, code=code, name=code, province=province,
                                   city=city, lat_e6=lat, lon_e6=lon, on_time_permille=950, handling_cost_minor=300,
                                   active=True, created_at=uow.clock.now())
                uow.inventory.add_warehouse(row)
                found = row
            ids_by_code[code] = found.id
        for (code, sku), on_hand in rows.items():
            before, _ = uow.inventory.set_stock(tenant_id, ids_by_code[code], sku, on_hand=on_hand, safety_stock=None,
                                                expected_version=None, now=uow.clock.now())
            delta = on_hand - (before.on_hand if before else 0)
            uow.inventory.add_movements(tenant_id, [Movement(ids_by_code[code], sku, MovementKind.COUNT,
                                                             on_hand_delta=delta)], actor="test", now=uow.clock.now())
        uow.commit()


def levels(hub: OrderHub, tenant_id: str) -> dict[tuple[str, str], tuple[int, int, int]]:
    with hub.uow_factory() as uow:
        houses = {w.id: w.code for w in uow.inventory.warehouses(tenant_id)}
        return {(houses[w], sku): (lv.on_hand, lv.reserved, lv.presale_reserved)
                for (w, sku), lv in uow.inventory.levels(tenant_id).items()}


def active(hub: OrderHub, tenant_id: str, order_id: str) -> list[Any]:
    with hub.engine.connect() as conn:
        return list(conn.execute(select(reservations).where(
            reservations.c.tenant_id == tenant_id, reservations.c.order_id == order_id,
            reservations.c.status == "active")).all())


def ledger_matches(hub: OrderHub, tenant_id: str) -> bool:
    with hub.uow_factory() as uow:
        sums = uow.inventory.movement_sums(tenant_id)
        rows = uow.inventory.levels(tenant_id)
    return all(sums.get(key, (0, 0, 0)) == (lv.on_hand, lv.reserved, lv.presale_reserved) for key, lv in rows.items())


@pytest.fixture
def client(hub: OrderHub, tenant: IssuedKey) -> Iterator[TestClient]:
    with TestClient(create_app(hub), headers={"Authorization": f"Bearer {tenant.api_key}"}) as c:
        yield c


def create(client: TestClient, external_id: str, lines: list[tuple[str, int]], **changes: Any) -> dict[str, Any]:
    body = order_body(external_id, lines=[{"sku": sku, "title": sku, "quantity": q, "unit_price": "10.00"}
                                          for sku, q in lines], **changes)
    reply = client.post("/api/v1/orders", json=body)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def event(client: TestClient, order_id: str, type_: str, **fields: Any) -> dict[str, Any]:
    reply = client.post(f"/api/v1/orders/{order_id}/events", json={"type": type_, **fields})
    assert reply.status_code == 200, reply.text
    return dict(reply.json()["order"])


def test_tenants_without_warehouses_reserve_nothing(client: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    order = create(client, "NO-WH-1", [("TEA", 2)])
    assert order["status"] == "paid" and active(hub, tenant.tenant_id, order["id"]) == []


def test_an_order_reserves_from_the_nearest_warehouse_that_can_serve_it(client: TestClient, hub: OrderHub,
                                                                        tenant: IssuedKey) -> None:
    stock(hub, tenant.tenant_id, {("HZ1", "TEA"): 5, ("SH1", "TEA"): 5, ("BJ1", "TEA"): 50, ("HZ1", "CUP"): 5,
                                  ("BJ1", "CUP"): 5})
    order = create(client, "R-1", [("TEA", 2), ("CUP", 1)])   # shipping to Hangzhou (the example address)
    assert order["status"] == "paid"
    held = active(hub, tenant.tenant_id, order["id"])
    assert sorted((r.sku, r.quantity) for r in held) == [("CUP", 1), ("TEA", 2)]
    assert levels(hub, tenant.tenant_id)[("HZ1", "TEA")] == (5, 2, 0)
    with hub.engine.connect() as conn:
        plan = conn.execute(select(allocations.c.plan).where(allocations.c.order_id == order["id"])).scalar_one()
    assert {c["warehouse"] for c in plan["candidates"]} == {"HZ1", "SH1", "BJ1"}
    assert all("score" in c for c in plan["candidates"])
    timeline = client.get(f"/api/v1/orders/{order['id']}/timeline").json()
    assert "order.allocated" in [i["action"] for i in timeline["items"]]
    shown = client.get(f"/api/v1/orders/{order['id']}").json()
    assert sorted((r["warehouse"], r["sku"], r["status"]) for r in shown["reservations"]) == [
        ("HZ1", "CUP", "active"), ("HZ1", "TEA", "active")]
    assert shown["allocation"] == plan
    assert ledger_matches(hub, tenant.tenant_id)


def test_out_of_stock_holds_the_order_and_reserves_nothing(client: TestClient, hub: OrderHub,
                                                           tenant: IssuedKey) -> None:
    stock(hub, tenant.tenant_id, {("HZ1", "TEA"): 1})
    order = create(client, "R-2", [("TEA", 3), ("GHOST", 1)])
    assert order["status"] == "on_hold" and order["hold_reason"].startswith("out_of_stock")
    assert "GHOST short by 1" in order["hold_reason"] and "TEA short by 2" in order["hold_reason"]
    assert active(hub, tenant.tenant_id, order["id"]) == []
    assert levels(hub, tenant.tenant_id)[("HZ1", "TEA")] == (1, 0, 0)

    # Restocked, then released: the order reserves again.
    stock(hub, tenant.tenant_id, {("HZ1", "TEA"): 10, ("SH1", "GHOST"): 1})
    released = event(client, order["id"], "release")
    assert released["status"] == "paid"
    assert len(active(hub, tenant.tenant_id, order["id"])) == 2
    assert ledger_matches(hub, tenant.tenant_id)


def test_cancel_releases_and_ship_consumes(client: TestClient, hub: OrderHub, tenant: IssuedKey) -> None:
    stock(hub, tenant.tenant_id, {("HZ1", "TEA"): 10})
    cancelled = create(client, "R-3", [("TEA", 4)])
    shipped = create(client, "R-4", [("TEA", 3)])
    assert levels(hub, tenant.tenant_id)[("HZ1", "TEA")] == (10, 7, 0)
    event(client, cancelled["id"], "cancel", reason="buyer asked")
    assert levels(hub, tenant.tenant_id)[("HZ1", "TEA")] == (10, 3, 0)
    event(client, shipped["id"], "ship")
    assert levels(hub, tenant.tenant_id)[("HZ1", "TEA")] == (7, 0, 0)
    with hub.engine.connect() as conn:
        states = dict(conn.execute(select(reservations.c.order_id, reservations.c.status)).all())
        kinds = [r.kind for r in conn.execute(select(stock_movements.c.kind).order_by(stock_movements.c.id))]
    assert states == {cancelled["id"]: "released", shipped["id"]: "consumed"}
    assert kinds == ["count", "reserve", "reserve", "release", "ship"]
    assert ledger_matches(hub, tenant.tenant_id)


def test_unpaid_orders_expire_and_payment_clears_the_expiry(client: TestClient, hub: OrderHub,
                                                            tenant: IssuedKey) -> None:
    stock(hub, tenant.tenant_id, {("HZ1", "TEA"): 10})
    unpaid = create(client, "R-5", [("TEA", 1)], status="pending_payment", paid_at=None)
    [held] = active(hub, tenant.tenant_id, unpaid["id"])
    assert held.expires_at is not None
    event(client, unpaid["id"], "mark_paid")
    [held] = active(hub, tenant.tenant_id, unpaid["id"])
    assert held.expires_at is None


def test_presale_orders_use_the_presale_bucket_with_their_promise_date(client: TestClient, hub: OrderHub,
                                                                       tenant: IssuedKey) -> None:
    stock(hub, tenant.tenant_id, {("HZ1", "TEA"): 10})
    order = create(client, "R-6", [("TEA", 2)], tags=["presale", "promise:2026-12-15"])
    [held] = active(hub, tenant.tenant_id, order["id"])
    assert held.bucket == "presale" and str(held.promise_date) == "2026-12-15"
    assert levels(hub, tenant.tenant_id)[("HZ1", "TEA")] == (10, 0, 2)
    assert ledger_matches(hub, tenant.tenant_id)


def test_partial_reservation_when_the_tenant_allows_it(client: TestClient, hub: OrderHub,
                                                       tenant: IssuedKey) -> None:
    actor = commands.Actor(tenant_id=tenant.tenant_id, actor="test", source="test")
    hub.bus.handle(commands.PutRuleSet(actor=actor, kind="inventory_policy", body={"allow_partial": True}))
    stock(hub, tenant.tenant_id, {("HZ1", "TEA"): 1})
    order = create(client, "R-7", [("TEA", 3)])
    assert order["status"] == "paid" and "partially_reserved" in order["tags"]
    [held] = active(hub, tenant.tenant_id, order["id"])
    assert held.quantity == 1
    bad = client.put("/api/v1/rules/inventory_policy", json={"unpaid_hold_minutes": 0})
    assert bad.status_code == 422 and bad.json()["field"] == "unpaid_hold_minutes"

"""Planning shipments and completing delivered orders (issue 5), on SQLite and PostgreSQL:
held orders get no shipment until released, split orders get one per warehouse and the
order follows their handovers, ``auto_fulfil: false`` plans nothing, and delivered orders
are completed once the tenant's after-sale window has passed."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.domain.time import FixedClock
from orderhub.simulation.fake_carrier import FakeCarrier
from orderhub.workers.fulfillment import FulfilmentPlanner
from tests.integration.fulfillment.helpers import (
    carrier_event,
    ok,
    order_status,
    place_order,
    plan_and_issue,
    push,
    ready_shipment,
    scan_steps,
    set_policy,
    setup_tenant,
    shipment,
    shipments_of,
)


def _order_shipments(api: TestClient, order_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ok(api.get(f"/api/v1/orders/{order_id}"))["shipments"]
    return found


def _delivered(hub: OrderHub, api: TestClient, clock: FixedClock, external_id: str) -> dict[str, Any]:
    parcel = ready_shipment(hub, api, external_id)
    scan_steps(api, parcel["id"])
    ok(push(api, "sf", [carrier_event(parcel["waybill_no"], "80", clock.now())]))
    assert order_status(api, parcel["order_id"]) == "delivered"
    return parcel


# ---------------------------------------------------------------------------- completion
def test_zero_day_window_completes_right_after_delivery(hub: OrderHub, api: TestClient, carrier: FakeCarrier,
                                                       clock: FixedClock) -> None:
    setup_tenant(api, carrier, aftersale_window_days=0)
    parcel = _delivered(hub, api, clock, "WEB-C1")
    assert hub.bus.handle(commands.CompleteDelivered()) == 1
    assert order_status(api, parcel["order_id"]) == "completed"
    assert hub.bus.handle(commands.CompleteDelivered()) == 0


def test_seven_day_window_completes_only_after_it(hub: OrderHub, api: TestClient, carrier: FakeCarrier,
                                                  clock: FixedClock) -> None:
    setup_tenant(api, carrier)
    parcel = _delivered(hub, api, clock, "WEB-C2")
    clock.advance(days=6, hours=23)
    assert hub.bus.handle(commands.CompleteDelivered()) == 0
    assert order_status(api, parcel["order_id"]) == "delivered"
    clock.advance(hours=1)
    assert hub.bus.handle(commands.CompleteDelivered()) == 1
    assert order_status(api, parcel["order_id"]) == "completed"
    assert "completed" in [e["to_status"] for e in ok(api.get(f"/api/v1/orders/{parcel['order_id']}/timeline"))[
        "items"] if e.get("to_status")]


# ---------------------------------------------------------------------------- planning
def test_held_order_gets_no_shipment_until_released(hub: OrderHub, api: TestClient, carrier: FakeCarrier) -> None:
    setup_tenant(api, carrier, stock={"HZ1": {"TEA-001": 1, "GIFT-CUP": 5}})
    order = place_order(api, "WEB-P1")
    assert order["status"] == "on_hold"
    assert plan_and_issue(hub) == 0
    assert shipments_of(api, order["id"]) == [] and _order_shipments(api, order["id"]) == []

    ok(api.put("/api/v1/inventory/HZ1/TEA-001", json={"on_hand": 10}))
    assert FulfilmentPlanner(hub).run_once() == 0  # still held: stock alone doesn't release it
    ok(api.post(f"/api/v1/orders/{order['id']}/events", json={"type": "release"}))
    assert order_status(api, order["id"]) == "paid"
    assert plan_and_issue(hub) == 1
    [planned] = _order_shipments(api, order["id"])
    assert planned["status"] == "waybill_issued" and planned["warehouse"] == "HZ1"
    assert order_status(api, order["id"]) == "ready_to_ship"


def test_split_order_gets_two_shipments_and_follows_their_handovers(hub: OrderHub, api: TestClient,
                                                                   carrier: FakeCarrier) -> None:
    setup_tenant(api, carrier, stock={"HZ1": {"TEA-001": 5}, "SH1": {"GIFT-CUP": 5}})
    order = place_order(api, "WEB-P2")
    assert order["status"] == "paid"
    assert plan_and_issue(hub) == 2
    parcels = _order_shipments(api, order["id"])
    assert sorted((p["warehouse"], [ln["sku"] for ln in p["lines"]]) for p in parcels) == [
        ("HZ1", ["TEA-001"]), ("SH1", ["GIFT-CUP"])]
    assert order_status(api, order["id"]) == "ready_to_ship"
    tea = next(p for p in parcels if p["warehouse"] == "HZ1")
    cup = next(p for p in parcels if p["warehouse"] == "SH1")
    scan_steps(api, tea["id"], [("pick", "TEA-001", 2, None), ("verify", "TEA-001", 2, None), ("pack", None, 1, None),
                                ("weigh", None, 1, 500), ("handover", None, 1, None)])
    assert order_status(api, order["id"]) == "partially_shipped"
    scan_steps(api, cup["id"], [("pick", "GIFT-CUP", 1, None), ("verify", "GIFT-CUP", 1, None),
                                ("pack", None, 1, None), ("weigh", None, 1, 100), ("handover", None, 1, None)])
    assert order_status(api, order["id"]) == "shipped"
    assert {p["status"] for p in _order_shipments(api, order["id"])} == {"handed_over"}
    assert shipment(api, tea["id"])["handed_over_at"] is not None


def test_auto_fulfil_off_plans_nothing(hub: OrderHub, api: TestClient, carrier: FakeCarrier) -> None:
    setup_tenant(api, carrier, auto_fulfil=False)
    order = place_order(api, "WEB-P3")
    assert order["status"] == "paid"
    assert plan_and_issue(hub) == 0
    assert FulfilmentPlanner(hub).run_once() == 0
    assert _order_shipments(api, order["id"]) == []
    assert order_status(api, order["id"]) == "paid"


def test_turning_auto_fulfil_back_on_plans_the_waiting_orders(hub: OrderHub, api: TestClient,
                                                              carrier: FakeCarrier) -> None:
    setup_tenant(api, carrier, auto_fulfil=False)
    order = place_order(api, "WEB-P4")
    assert plan_and_issue(hub) == 0
    set_policy(api, auto_fulfil=True)
    assert plan_and_issue(hub) == 1
    [planned] = _order_shipments(api, order["id"])
    assert planned["status"] == "waybill_issued"

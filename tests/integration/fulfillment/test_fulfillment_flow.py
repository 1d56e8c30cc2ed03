"""The whole fulfillment flow in process, on SQLite and PostgreSQL: a paid order gets a
shipment and a waybill from the simulated carrier over real HTTP, is scanned through the
warehouse, handed over, tracked by carrier pushes in and out of order, delivered and
completed after the after-sale window; everything in the order's timeline."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient

from orderhub.adapters.carriers.push import ORDERHUB_SIGNATURE_HEADER, sign_orderhub_push
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.domain.time import FixedClock
from orderhub.simulation.fake_carrier import FakeCarrier
from orderhub.workers.fulfillment import CarrierWaybillRelay, FulfilmentPlanner
from orderhub.workers.writeback import ChannelWriteBack
from tests.integration.fulfillment.helpers import API_KEY, PUSH_SECRET, START
from tests.integration.test_api_orders import order_body


def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _setup(api: TestClient, carrier: FakeCarrier) -> None:
    _ok(api.post("/api/v1/warehouses", json={"code": "HZ1", "name": "杭州仓", "province": "浙江省",
                                            "city": "杭州市"}), 201)
    _ok(api.put("/api/v1/inventory/HZ1/TEA-001", json={"on_hand": 20}))
    _ok(api.put("/api/v1/inventory/HZ1/GIFT-CUP", json={"on_hand": 20}))
    for code in ("sf", "zto"):
        _ok(api.post("/api/v1/carrier-accounts", json={"carrier": code, "api_base_url": carrier.base_url,
                                                       "api_key": API_KEY, "push_secret": PUSH_SECRET}), 201)
    _ok(api.put("/api/v1/rules/fulfillment_policy", json={
        "aftersale_window_days": 7, "sku_weights_g": {"TEA-001": 250, "GIFT-CUP": 100}}))


def _push(api: TestClient, carrier_id: str, events: list[dict[str, Any]], *, secret: str = PUSH_SECRET) -> Any:
    body = json.dumps({"carrier": carrier_id, "events": events}).encode()
    return api.post(f"/webhooks/carriers/{carrier_id}", content=body,
                    headers={"Content-Type": "application/json",
                             ORDERHUB_SIGNATURE_HEADER: sign_orderhub_push(secret, body)})


def test_paid_order_to_completed(hub: OrderHub, api: TestClient, carrier: FakeCarrier, clock: FixedClock) -> None:
    _setup(api, carrier)
    order = _ok(api.post("/api/v1/orders", headers={"Idempotency-Key": "k-flow-1"}, json=order_body(
        "WEB-F1", placed_at="2026-11-21T09:00:00+08:00", paid_at="2026-11-21T09:00:05+08:00", tags=["express"],
        lines=[{"sku": "TEA-001", "title": "龙井", "quantity": 2, "unit_price": "59.90"},
               {"sku": "GIFT-CUP", "title": "赠品杯", "quantity": 1, "unit_price": "0.00"}])), 201)

    assert FulfilmentPlanner(hub).run_once() == 1
    shipments = _ok(api.get("/api/v1/shipments", params={"order_id": order["id"]}))["items"]
    assert len(shipments) == 1
    shipment = shipments[0]
    assert shipment["carrier"] == "sf" and shipment["routing_rule"] == "express_sf"
    assert shipment["wave"] == "first_wave"
    assert _ok(api.get(f"/api/v1/orders/{order['id']}"))["status"] == "ready_to_ship"

    with httpx.Client(timeout=5) as http:
        assert CarrierWaybillRelay(hub, http_client=http).run_once() == 1
    shipment = _ok(api.get(f"/api/v1/shipments/{shipment['id']}"))
    waybill = shipment["waybill_no"]
    assert shipment["status"] == "waybill_issued" and waybill and waybill.startswith("SF")

    sid, version = shipment["id"], shipment["version"]
    scans = [("pick", "TEA-001", 2, None), ("pick", "GIFT-CUP", 1, None), ("verify", "TEA-001", 2, None),
             ("verify", "GIFT-CUP", 1, None), ("pack", None, 1, None), ("weigh", None, 1, 610),
             ("handover", None, 1, None)]
    for n, (step, barcode, qty, weight) in enumerate(scans):
        body: dict[str, Any] = {"scan_id": f"s-{n}", "step": step, "operator": "wang", "device_id": "pda-1",
                                "quantity": qty}
        if barcode:
            body["barcode"] = barcode
        if weight:
            body["weight_g"] = weight
        answer = _ok(api.post(f"/api/v1/shipments/{sid}/scans", json=body))
        assert answer["status"] == "applied"
    assert answer["shipment"]["status"] == "handed_over"
    assert version < answer["shipment"]["version"]
    assert _ok(api.get(f"/api/v1/orders/{order['id']}"))["status"] == "shipped"

    def ev(code: str, text: str, hours: int) -> dict[str, Any]:
        return {"waybill_no": waybill, "code": code, "description": text,
                "occurred_at": (START + timedelta(hours=hours)).isoformat()}

    out_of_order = [ev("44", "派送中", 20), ev("50", "已揽收", 1)]
    clock.advance(hours=21)
    result = _ok(_push(api, "sf", out_of_order))
    assert result["counts"].get("applied") == 2
    late = [ev("30", "分拣", 5)]
    assert _ok(_push(api, "sf", late))["counts"] == {"stale": 1}
    assert _ok(_push(api, "sf", late))["counts"] == {"duplicate": 1}
    delivered = [ev("80", "已签收", 21)]
    assert _ok(_push(api, "sf", delivered))["counts"] == {"applied": 1}
    assert _ok(api.get(f"/api/v1/orders/{order['id']}"))["status"] == "delivered"

    with httpx.Client(timeout=5) as http:
        # The order came from the API (no shop registered): the write-back is dead-lettered with the reason.
        assert ChannelWriteBack(hub.engine, hub.clock, hub.metrics, http_client=http).run_once() == 1

    clock.advance(days=8)
    assert hub.bus.handle(commands.CompleteDelivered()) == 1
    assert _ok(api.get(f"/api/v1/orders/{order['id']}"))["status"] == "completed"
    timeline = _ok(api.get(f"/api/v1/orders/{order['id']}/timeline"))
    actions = [item["action"] for item in timeline["items"]]
    for wanted in ("shipment.created", "shipment.waybill_issued", "shipment.scanned", "shipment.tracking_updated"):
        assert wanted in actions, actions
    assert timeline["verified"] is True


def test_bad_pushes(hub: OrderHub, api: TestClient, carrier: FakeCarrier) -> None:
    _setup(api, carrier)
    r = _push(api, "sf", [{"waybill_no": "SF0000000000000", "code": "80", "description": "x",
                           "occurred_at": START.isoformat()}])
    assert r.status_code == 404 and r.json()["code"] == "unknown_waybill", r.text
    r = api.post("/webhooks/carriers/sf", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text


def _planned(hub: OrderHub, api: TestClient, external_id: str) -> tuple[str, dict[str, Any]]:
    order = _ok(api.post("/api/v1/orders", headers={"Idempotency-Key": external_id}, json=order_body(
        external_id, placed_at="2026-11-21T09:00:00+08:00", paid_at="2026-11-21T09:00:05+08:00",
        lines=[{"sku": "TEA-001", "title": "龙井", "quantity": 1, "unit_price": "59.90"}])), 201)
    assert FulfilmentPlanner(hub).run_once() == 1
    with httpx.Client(timeout=5) as http:
        assert CarrierWaybillRelay(hub, http_client=http).run_once() == 1
    [shipment] = _ok(api.get("/api/v1/shipments", params={"order_id": order["id"]}))["items"]
    assert shipment["waybill_no"]
    return order["id"], shipment


def test_a_cancelled_order_cancels_its_shipment_and_voids_the_waybill(hub: OrderHub, api: TestClient,
                                                                       carrier: FakeCarrier) -> None:
    _setup(api, carrier)
    order_id, shipment = _planned(hub, api, "WEB-C1")
    _ok(api.post(f"/api/v1/orders/{order_id}/events", json={"type": "cancel", "reason": "buyer changed mind"}))
    after = _ok(api.get(f"/api/v1/shipments/{shipment['id']}"))
    assert after["status"] == "cancelled" and "buyer changed mind" in after["cancel_reason"]
    with httpx.Client(timeout=5) as http:
        assert CarrierWaybillRelay(hub, http_client=http).run_once() == 1
    assert carrier.waybills[shipment["waybill_no"]].cancelled
    r = api.post(f"/api/v1/shipments/{shipment['id']}/scans",
                 json={"scan_id": "c-1", "step": "pick", "operator": "wang", "barcode": "TEA-001"})
    assert r.status_code == 409 and r.json()["code"] == "shipment_closed", r.text


def test_a_held_order_takes_no_scans_until_released(hub: OrderHub, api: TestClient, carrier: FakeCarrier) -> None:
    _setup(api, carrier)
    order_id, shipment = _planned(hub, api, "WEB-H1")
    _ok(api.post(f"/api/v1/orders/{order_id}/events", json={"type": "hold", "reason": "address check"}))
    scan = {"scan_id": "h-1", "step": "pick", "operator": "wang", "barcode": "TEA-001"}
    r = api.post(f"/api/v1/shipments/{shipment['id']}/scans", json=scan)
    assert r.status_code == 422 and r.json()["code"] == "scan_rejected", r.text
    assert "address check" in r.json()["detail"] and r.json()["expected"] == {"order_status": "on_hold"}
    _ok(api.post(f"/api/v1/orders/{order_id}/events", json={"type": "release"}))
    assert _ok(api.post(f"/api/v1/shipments/{shipment['id']}/scans", json=scan))["status"] == "applied"

"""End to end, issue 5: a real ``orderhub serve`` process (API + workers + timers) on SQLite and
on PostgreSQL takes a signed own_site webhook to a completed order — the inbox worker creates
the paid order, the planner gives it a shipment, the carrier relay gets a waybill from the
simulated carrier over HTTP, the warehouse scans it out over HTTP, the carrier pushes tracking
in and out of order (OrderHub's JSON push and SF's route push, both signed), the order follows
to delivered and the timers complete it once the after-sale window is set to 0 days. The
order's timeline shows every step and verifies."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from orderhub.adapters.carriers.base import CarrierEvent
from orderhub.adapters.carriers.push import ORDERHUB_SIGNATURE_HEADER, sign_orderhub_push
from orderhub.adapters.channels.signatures import sign
from orderhub.simulation.fake_carrier import FakeCarrier
from tests.e2e.test_cli_and_server import Server

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

SHOP_SECRET = "e2e-own-site-fulfil-secret"
CARRIER_KEY = "ck-e2e-carrier"
PUSH_SECRET = "e2e-push-secret-123"
DEADLINE = 20.0  # seconds any one background step may take (the workers poll every 0.5 s)

T = TypeVar("T")


@pytest.fixture
def carrier() -> Iterator[FakeCarrier]:
    with FakeCarrier(api_key=CARRIER_KEY, seed=5) as fake:
        yield fake


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


def eventually(server: Server, what: str, probe: Callable[[], T | None], timeout: float = DEADLINE) -> T:
    """Poll ``probe`` until it returns something (not None) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s\n--- server log ---\n{server.output()[-4000:]}")
        time.sleep(0.1)


def order_status(api: httpx.Client, order_id: str) -> str:
    status: str = ok(api.get(f"/api/v1/orders/{order_id}"))["status"]
    return status


def own_site_order(external_id: str, placed: datetime) -> bytes:
    body = {"external_id": external_id, "currency": "CNY", "status": "paid",
            "placed_at": placed.isoformat(), "paid_at": (placed + timedelta(seconds=5)).isoformat(),
            "tags": ["express"], "buyer": {"name": "王小明", "phone": "138****5678"},
            "shipping_address": {"country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
                                 "detail": "文三路 90 号", "name": "王小明", "phone": "138****5678"},
            "lines": [{"sku": "TEA-001", "title": "龙井 250g", "quantity": 2, "unit_price": "59.90"},
                      {"sku": "GIFT-CUP", "title": "赠品杯", "quantity": 1, "unit_price": "0.00"}]}
    return json.dumps(body, ensure_ascii=False).encode()


def test_own_site_webhook_to_completed_order(world: tuple[Server, httpx.Client], carrier: FakeCarrier) -> None:
    server, api = world
    started = time.monotonic()

    # The merchant's set-up, all over HTTP: stock, carrier accounts, policy, the shop.
    ok(api.post("/api/v1/warehouses", json={"code": "HZ1", "name": "杭州仓", "province": "浙江省", "city": "杭州市"}),
       201)
    for sku in ("TEA-001", "GIFT-CUP"):
        ok(api.put(f"/api/v1/inventory/HZ1/{sku}", json={"on_hand": 10}))
    for code in ("sf", "zto"):
        ok(api.post("/api/v1/carrier-accounts", json={"carrier": code, "api_base_url": carrier.base_url,
                                                      "api_key": CARRIER_KEY, "push_secret": PUSH_SECRET}), 201)
    policy = {"aftersale_window_days": 7, "sku_weights_g": {"TEA-001": 250, "GIFT-CUP": 100}}
    ok(api.put("/api/v1/rules/fulfillment_policy", json=policy))
    ok(api.post("/api/v1/shops", json={"code": "web", "channel": "own_site", "name": "官网", "secret": SHOP_SECRET,
                                       "timezone": "Asia/Shanghai"}), 201)

    # 1. The site pushes a paid order, signed; the inbox worker creates it.
    body = own_site_order("WEB-FUL-1", datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10))
    headers = sign("orderhub", body=body, secret=SHOP_SECRET, url="") | {"Content-Type": "application/json"}
    forged = httpx.post(f"{server.url}/webhooks/own_site/web", content=body,
                        headers=headers | {"x-orderhub-signature": "sha256=" + "0" * 64}, timeout=10)
    assert forged.status_code == 401, forged.text
    accepted = ok(httpx.post(f"{server.url}/webhooks/own_site/web", content=body, headers=headers, timeout=10), 202)
    assert accepted["status"] == "accepted"

    def created() -> dict[str, Any] | None:
        items = ok(api.get("/api/v1/orders", params={"q": "WEB-FUL-1"}))["items"]
        return dict(items[0]) if items else None

    order_id: str = eventually(server, "the webhook became an order", created)["id"]

    # 2. The planner gives it a shipment; the relay gets the waybill from the carrier over HTTP.
    def with_waybill() -> dict[str, Any] | None:
        found = ok(api.get("/api/v1/shipments", params={"order_id": order_id}))["items"]
        return dict(found[0]) if found and found[0]["waybill_no"] else None

    shipment = eventually(server, "a shipment with a waybill", with_waybill)
    sid, waybill = shipment["id"], shipment["waybill_no"]
    assert shipment["carrier"] == "sf" and shipment["status"] == "waybill_issued", shipment
    assert waybill in carrier.waybills and carrier.waybills[waybill].shipment_id == sid
    assert [r.path for r in carrier.requests if r.method == "POST"] == ["/v1/waybills"]
    assert order_status(api, order_id) == "ready_to_ship"

    # 3. The warehouse scans it out; a resent scan is answered as a duplicate.
    scans: list[dict[str, Any]] = [
        {"step": "pick", "barcode": "TEA-001", "quantity": 2}, {"step": "pick", "barcode": "GIFT-CUP"},
        {"step": "verify", "barcode": "TEA-001", "quantity": 2}, {"step": "verify", "barcode": "GIFT-CUP"},
        {"step": "pack"}, {"step": "weigh", "weight_g": 610}, {"step": "handover"}]
    answer: dict[str, Any] = {}
    for n, scan in enumerate(scans):
        answer = ok(api.post(f"/api/v1/shipments/{sid}/scans", json={
            "scan_id": f"e2e-{n}", "operator": "wang", "device_id": "pda-1", **scan}))
        assert answer["status"] == "applied", answer
    assert answer["shipment"]["status"] == "handed_over"
    again = ok(api.post(f"/api/v1/shipments/{sid}/scans", json={"scan_id": "e2e-6", "operator": "wang",
                                                               "device_id": "pda-1", "step": "handover"}))
    assert again["status"] == "duplicate"
    assert order_status(api, order_id) == "shipped"

    # 4. The carrier pushes tracking: out of order, late, resent, and in SF's own route format.
    handed = datetime.now(UTC).replace(microsecond=0)
    journey = {code: text for code, text in [("50", "顺丰速运 已收取快件"), ("30", "快件已完成分拣"),
                                             ("44", "正在派送途中"), ("80", "已签收，感谢使用顺丰")]}

    def event(code: str, seconds: int) -> CarrierEvent:
        return carrier.add_event(waybill, code, occurred_at=handed + timedelta(seconds=seconds),
                                 description=journey[code], location="杭州")

    picked, sorted_, out, signed = event("50", 10), event("30", 20), event("44", 30), event("80", 40)

    def push(events: list[CarrierEvent], fmt: str = "orderhub") -> dict[str, Any]:
        reply = carrier.push(server.url, PUSH_SECRET, events=events, fmt=fmt)
        assert reply.status_code == 200, reply.text
        data: dict[str, Any] = reply.json()
        return data

    first = push([out, picked])  # newest first
    assert first["counts"] == {"applied": 2}, first
    assert [i["outcome"] for i in first["items"]] == ["applied", "applied"]
    assert push([sorted_])["counts"] == {"stale": 1}
    assert push([sorted_])["counts"] == {"duplicate": 1}
    tracked = ok(api.get(f"/api/v1/shipments/{sid}"))
    assert tracked["status"] == "out_for_delivery", tracked

    forged_push = httpx.post(f"{server.url}/webhooks/carriers/sf", content=json.dumps(
        {"carrier": "sf", "events": [{"waybill_no": waybill, "code": "80", "description": "x",
                                      "occurred_at": handed.isoformat()}]}).encode(),
        headers={"Content-Type": "application/json", ORDERHUB_SIGNATURE_HEADER: sign_orderhub_push("wrong", b"{}")},
        timeout=10)
    assert forged_push.status_code == 401, forged_push.text
    assert ok(api.get(f"/api/v1/shipments/{sid}"))["status"] == "out_for_delivery"

    delivered = push([signed], fmt="sf_route")
    assert delivered["counts"] == {"applied": 1}, delivered
    assert ok(api.get(f"/api/v1/shipments/{sid}"))["status"] == "delivered"
    assert order_status(api, order_id) == "delivered"

    # 5. After the after-sale window (now 0 days) the timers (every few seconds) complete it.
    ok(api.put("/api/v1/rules/fulfillment_policy", json=policy | {"aftersale_window_days": 0}))
    eventually(server, "the delivered order was completed",
               lambda: True if order_status(api, order_id) == "completed" else None)

    # 6. Everything is on the order's timeline, and the chain verifies.
    timeline = ok(api.get(f"/api/v1/orders/{order_id}/timeline"))
    actions = [item["action"] for item in timeline["items"]]
    for wanted in ("order.created", "shipment.created", "order.ready_to_ship", "shipment.waybill_issued",
                   "shipment.scanned", "order.ship", "shipment.tracking_updated", "order.deliver", "order.complete"):
        assert wanted in actions, actions
    assert actions.index("order.created") < actions.index("shipment.waybill_issued") < actions.index("order.ship")
    assert actions.index("order.ship") < actions.index("order.deliver") < actions.index("order.complete")
    assert actions.count("shipment.scanned") == len(scans)
    tracking = [i for i in timeline["items"] if i["action"] == "shipment.tracking_updated"]
    assert [i["payload"]["outcome"] for i in tracking] == ["applied", "applied", "stale", "applied"], tracking
    assert timeline["verified"] is True
    assert time.monotonic() - started < 60

"""The demo's second act: from paid to the door. A warehouse with stock, carrier accounts on
a simulated carrier service (real HTTP, inside the demo process), a few paid own-site orders
that the workers turn into shipments and waybills, warehouse scans over the API, then the
carrier's tracking pushes (in and out of order, one code the tables don't know), read back
from the running server.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from orderhub.adapters.carriers.code_tables import CARRIER_IDS
from orderhub.simulation.fake_carrier import JOURNEYS, FakeCarrier

WAREHOUSE = "DEMO-HZ"
SKUS = {"TEA-LJ-250": ("西湖龙井 250g", "128.00", 280), "CUP-GLASS": ("玻璃杯", "39.00", 350),
        "GIFT-TEABAG": ("赠品 茶包", "0.00", 20)}
CARRIER_KEY = "ck-demo-carrier"
PUSH_SECRET = "demo-push-secret"  # noqa: S105 - the simulated carrier's, printed nowhere
WAIT = 60.0


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url.path} answered "
                           f"{response.status_code}: {response.text[:300]}")
    return response.json()


def _orders(now: datetime) -> list[dict[str, Any]]:
    """Five paid orders: express ones (SF, first wave), standard ones (ZTO), one to Xinjiang (EMS)."""
    places = [("浙江省", "杭州市", "西湖区", ["express"]), ("上海市", "上海市", "浦东新区", []),
              ("广东省", "深圳市", "南山区", ["express"]), ("江苏省", "南京市", "玄武区", []),
              ("新疆维吾尔自治区", "乌鲁木齐市", "天山区", [])]
    out = []
    for n, (province, city, district, tags) in enumerate(places, start=1):
        placed = now - timedelta(minutes=30 - n)
        out.append({
            "external_id": f"DEMO-F{n:03d}", "channel": "own_site", "shop": "main", "currency": "CNY",
            "status": "paid", "placed_at": placed.isoformat(), "paid_at": (placed + timedelta(seconds=20)).isoformat(),
            "buyer": {"name": "演示买家", "phone": "138****0000"},
            "shipping_address": {"country": "CN", "province": province, "city": city, "district": district,
                                 "detail": f"演示路 {n} 号", "postcode": "310000", "name": "演示买家",
                                 "phone": "138****0000"},
            "lines": [{"sku": "TEA-LJ-250", "title": SKUS["TEA-LJ-250"][0], "quantity": 1 + n % 2,
                       "unit_price": SKUS["TEA-LJ-250"][1]},
                      {"sku": "CUP-GLASS", "title": SKUS["CUP-GLASS"][0], "quantity": 1,
                       "unit_price": SKUS["CUP-GLASS"][1]},
                      {"sku": "GIFT-TEABAG", "title": SKUS["GIFT-TEABAG"][0], "quantity": 1, "unit_price": "0.00"}],
            "shipping_fee": "0.00", "discount": "0.00", "tags": tags,
        })
    return out


def _wait_for_waybills(client: httpx.Client, order_ids: list[str]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT
    while True:
        shipments = [s for oid in order_ids
                     for s in _ok(client.get("/api/v1/shipments", params={"order_id": oid}))["items"]]
        if len(shipments) >= len(order_ids) and all(s["waybill_no"] for s in shipments):
            return shipments
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not plan shipments and fetch waybills within "
                               f"{WAIT:.0f} s; see `orderhub outbox status`")
        time.sleep(0.3)


def _scan_through(client: httpx.Client, shipment: dict[str, Any], device: str) -> None:
    sid = shipment["id"]
    n = 0

    def scan(step: str, **fields: Any) -> None:
        nonlocal n
        n += 1
        _ok(client.post(f"/api/v1/shipments/{sid}/scans", json={
            "scan_id": f"{sid}-{n}", "step": step, "operator": "demo-packer", "device_id": device, **fields}))

    for line in shipment["lines"]:
        scan("pick", barcode=line["sku"], quantity=line["quantity"])
    for line in shipment["lines"]:
        scan("verify", barcode=line["sku"], quantity=line["quantity"])
    scan("pack")
    scan("weigh", weight_g=shipment["expected_weight_g"] + 15)
    scan("handover")


def run_fulfillment(client: httpx.Client, server_url: str) -> dict[str, Any]:
    """Drive five orders from paid to the door against the running server; returns a summary
    read back from it. The simulated carrier keeps running in the demo process."""
    carrier = FakeCarrier(api_key=CARRIER_KEY)
    carrier.start()
    existing = {w["code"] for w in _ok(client.get("/api/v1/warehouses"))["items"]}
    if WAREHOUSE not in existing:
        _ok(client.post("/api/v1/warehouses", json={"code": WAREHOUSE, "name": "演示杭州仓", "province": "浙江省",
                                                    "city": "杭州市", "lat": "30.2741", "lon": "120.1551"}))
    for sku in SKUS:
        _ok(client.post(f"/api/v1/inventory/{WAREHOUSE}/{sku}/adjustments",
                        json={"kind": "receipt", "quantity": 100, "reason": "demo stock"}))
    for code in CARRIER_IDS:
        _ok(client.post("/api/v1/carrier-accounts", json={"carrier": code, "api_base_url": carrier.base_url,
                                                          "api_key": CARRIER_KEY, "push_secret": PUSH_SECRET}))
    _ok(client.put("/api/v1/rules/fulfillment_policy", json={
        "sku_weights_g": {sku: grams for sku, (_, _, grams) in SKUS.items()}, "aftersale_window_days": 7}))
    now = datetime.now(UTC)
    run = now.strftime("%H%M%S")
    order_ids = []
    for body in _orders(now):
        body["external_id"] = f"{body['external_id']}-{run}"
        created = _ok(client.post("/api/v1/orders", json=body, headers={"Idempotency-Key": body["external_id"]}))
        order_ids.append(created["id"])
    shipments = _wait_for_waybills(client, order_ids)
    for n, shipment in enumerate(shipments):
        _scan_through(client, shipment, device=f"pda-{1 + n % 2}")
    start = now - timedelta(hours=6)
    for n, shipment in enumerate(shipments):
        journey = JOURNEYS.get(shipment["carrier"], [])
        # The first two parcels arrive; the rest are still travelling.
        upto = len(journey) if n < 2 else max(len(journey) - 2, 1)
        carrier.play_journey(shipment["waybill_no"], start, timedelta(minutes=40), upto=upto)
        events = carrier.events(shipment["waybill_no"])
        # Out of order on purpose: the newest checkpoint first, the rest after it.
        _ok(carrier.push(server_url, PUSH_SECRET, events=events[-1:]))
        if len(events) > 1:
            _ok(carrier.push(server_url, PUSH_SECRET, events=events[:-1]))
    odd = shipments[-1]
    carrier.add_event(odd["waybill_no"], "RENAMED-CODE", occurred_at=now - timedelta(minutes=5),
                      description="a code the carrier just introduced")
    _ok(carrier.push(server_url, PUSH_SECRET, events=carrier.events(odd["waybill_no"])[-1:]))
    final = [_ok(client.get(f"/api/v1/shipments/{s['id']}")) for s in shipments]
    orders = [_ok(client.get(f"/api/v1/orders/{oid}")) for oid in order_ids]
    return {
        "shipments": len(final),
        "carriers": dict(Counter(s["carrier"] for s in final)),
        "shipment_statuses": dict(Counter(s["status"] for s in final)),
        "order_statuses": dict(Counter(o["status"] for o in orders)),
        "unknown_codes": _ok(client.get("/api/v1/tracking/unknown-codes"))["items"],
        "sample_shipment": final[0]["id"],
        "sample_order": order_ids[0],
        "order_ids": order_ids,
        "warehouse": WAREHOUSE,
        "carrier_url": carrier.base_url,
    }

"""Shared setup for the fulfillment and tracking API tests (issue 5): a tenant with a
warehouse, stock, carrier accounts on the simulated carrier and a fulfillment policy;
orders planned into shipments with waybills; scans, offline syncs and carrier pushes.

The fixtures themselves (a FixedClock hub, the FakeCarrier, the API client) are declared in
each test module, so pytest sees them there; these are plain functions they call."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi.testclient import TestClient

from orderhub.adapters.carriers.push import ORDERHUB_SIGNATURE_HEADER, sign_orderhub_push
from orderhub.adapters.db.outbox import SqlOutboxRepository
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.simulation.fake_carrier import FakeCarrier
from orderhub.workers.fulfillment import CarrierWaybillRelay, FulfilmentPlanner
from tests.integration.test_api_orders import order_body

START = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
PUSH_SECRET = "push-secret-123"
API_KEY = "ck-carrier-fake"
CARRIERS = ("sf", "zto", "usps")
# TEA-001 × 2 (250 g each) and a free gift cup (100 g): 600 g expected, ±60 g tolerated.
LINES: list[dict[str, Any]] = [{"sku": "TEA-001", "title": "龙井", "quantity": 2, "unit_price": "59.90"},
                               {"sku": "GIFT-CUP", "title": "赠品杯", "quantity": 1, "unit_price": "0.00"}]
POLICY: dict[str, Any] = {"aftersale_window_days": 7, "sku_weights_g": {"TEA-001": 250, "GIFT-CUP": 100}}
GOOD_WEIGHT_G = 610
# Every warehouse step for LINES, in order: (step, barcode, quantity, weight_g).
STEPS: list[tuple[str, str | None, int, int | None]] = [
    ("pick", "TEA-001", 2, None), ("pick", "GIFT-CUP", 1, None), ("verify", "TEA-001", 2, None),
    ("verify", "GIFT-CUP", 1, None), ("pack", None, 1, None), ("weigh", None, 1, GOOD_WEIGHT_G),
    ("handover", None, 1, None)]


def ok(response: Any, status: int = 200) -> dict[str, Any]:
    """The JSON body of ``response`` (a TestClient response), asserting its status."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The problem+json body of ``response``, asserting its status and ``code``."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def role_key(hub: OrderHub, role: str) -> str:
    """A new API key of ``role`` for the ``acme`` tenant."""
    issued: IssuedKey = hub.bus.handle(commands.CreateApiKey(tenant="acme", role=role))
    return issued.api_key


def set_policy(api: TestClient, **changes: Any) -> dict[str, Any]:
    """Store the test fulfillment policy with ``changes``."""
    return ok(api.put("/api/v1/rules/fulfillment_policy", json={**POLICY, **changes}))


def setup_tenant(api: TestClient, carrier: FakeCarrier, *, stock: dict[str, dict[str, int]] | None = None,
                 **policy: Any) -> None:
    """Warehouses with stock (default: HZ1 with 20 of each SKU), accounts with every carrier
    the tests route to (all on the FakeCarrier) and the policy."""
    stock = stock if stock is not None else {"HZ1": {"TEA-001": 20, "GIFT-CUP": 20}}
    for n, (code, skus) in enumerate(stock.items()):
        ok(api.post("/api/v1/warehouses", json={"code": code, "name": f"仓{n}", "province": "浙江省",
                                                "city": "杭州市"}), 201)
        for sku, on_hand in skus.items():
            ok(api.put(f"/api/v1/inventory/{code}/{sku}", json={"on_hand": on_hand}))
    for name in CARRIERS:
        ok(api.post("/api/v1/carrier-accounts", json={"carrier": name, "api_base_url": carrier.base_url,
                                                      "api_key": API_KEY, "push_secret": PUSH_SECRET}), 201)
    set_policy(api, **policy)


def place_order(api: TestClient, external_id: str, *, lines: list[dict[str, Any]] | None = None,
                tags: Sequence[str] = ("express",)) -> dict[str, Any]:
    """A paid order (placed a minute before START)."""
    return ok(api.post("/api/v1/orders", headers={"Idempotency-Key": f"k-{external_id}"}, json=order_body(
        external_id, placed_at="2026-11-21T09:59:00+08:00", paid_at="2026-11-21T09:59:05+08:00", tags=list(tags),
        lines=lines if lines is not None else LINES)), 201)


def plan_and_issue(hub: OrderHub) -> int:
    """Run the planner, then the waybill relay against the FakeCarrier; how many waybills."""
    FulfilmentPlanner(hub).run_once()
    with httpx.Client(timeout=5) as http:
        return CarrierWaybillRelay(hub, http_client=http).run_once()


def shipments_of(api: TestClient, order_id: str) -> list[dict[str, Any]]:
    """The order's shipments, newest first."""
    items: list[dict[str, Any]] = ok(api.get("/api/v1/shipments", params={"order_id": order_id}))["items"]
    return items


def shipment(api: TestClient, shipment_id: str) -> dict[str, Any]:
    """``GET /api/v1/shipments/{id}``."""
    return ok(api.get(f"/api/v1/shipments/{shipment_id}"))


def ready_shipment(hub: OrderHub, api: TestClient, external_id: str, **order: Any) -> dict[str, Any]:
    """A paid order's single shipment, planned and with its waybill."""
    placed = place_order(api, external_id, **order)
    assert plan_and_issue(hub) == 1
    [planned] = shipments_of(api, placed["id"])
    found = shipment(api, planned["id"])
    assert found["status"] == "waybill_issued" and found["waybill_no"], found
    return found


def scan_body(scan_id: str, step: str, barcode: str | None = None, quantity: int = 1, weight_g: int | None = None,
              *, operator: str = "wang", device_id: str | None = "pda-1", **extra: Any) -> dict[str, Any]:
    """The JSON of one online scan."""
    body: dict[str, Any] = {"scan_id": scan_id, "step": step, "operator": operator, "quantity": quantity, **extra}
    if device_id is not None:
        body["device_id"] = device_id
    if barcode is not None:
        body["barcode"] = barcode
    if weight_g is not None:
        body["weight_g"] = weight_g
    return body


def scan(api: TestClient, shipment_id: str, scan_id: str, step: str, barcode: str | None = None, quantity: int = 1,
         weight_g: int | None = None, **extra: Any) -> Any:
    """``POST /api/v1/shipments/{id}/scans``."""
    return api.post(f"/api/v1/shipments/{shipment_id}/scans",
                    json=scan_body(scan_id, step, barcode, quantity, weight_g, **extra))


def scan_steps(api: TestClient, shipment_id: str, steps: Sequence[tuple[str, str | None, int, int | None]] = STEPS,
               *, prefix: str = "s", **extra: Any) -> dict[str, Any]:
    """Apply ``steps`` (default: all of them, up to handover); the last answer."""
    answer: dict[str, Any] = {}
    for step, barcode, quantity, weight in steps:
        scan_id = f"{prefix}-{shipment_id}-{step}-{barcode or ''}"
        answer = ok(scan(api, shipment_id, scan_id, step, barcode, quantity, weight, **extra))
        assert answer["status"] == "applied", answer
    return answer


def sync_item(scan_id: str, shipment_id: str, version: int, step: str, barcode: str | None = None,
              quantity: int = 1, weight_g: int | None = None, operator: str = "wang") -> dict[str, Any]:
    """One item of an offline sync batch."""
    item: dict[str, Any] = {"scan_id": scan_id, "shipment_id": shipment_id, "shipment_version": version,
                            "step": step, "operator": operator, "quantity": quantity}
    if barcode is not None:
        item["barcode"] = barcode
    if weight_g is not None:
        item["weight_g"] = weight_g
    return item


def sync(api: TestClient, device_id: str, items: list[Any]) -> dict[str, Any]:
    """``POST /api/v1/devices/{device_id}/sync`` (200 expected)."""
    return ok(api.post(f"/api/v1/devices/{device_id}/sync", json={"items": items}))


def alerts(api: TestClient, kind: str, *, open_only: bool = True) -> list[dict[str, Any]]:
    """The tenant's alerts of ``kind``."""
    items = ok(api.get("/api/v1/alerts", params={"open_only": str(open_only).lower()}))["items"]
    return [a for a in items if a["kind"] == kind]


def timeline_actions(api: TestClient, order_id: str) -> list[str]:
    """The actions in the order's timeline."""
    return [item["action"] for item in ok(api.get(f"/api/v1/orders/{order_id}/timeline"))["items"]]


def order_status(api: TestClient, order_id: str) -> str:
    """The order's status."""
    return str(ok(api.get(f"/api/v1/orders/{order_id}"))["status"])


def carrier_event(waybill_no: str, code: str, at: datetime, description: str = "") -> dict[str, Any]:
    """One event of an OrderHub-format carrier push."""
    return {"waybill_no": waybill_no, "code": code, "description": description or code,
            "occurred_at": at.isoformat()}


def push(api: TestClient, carrier_id: str, events: list[dict[str, Any]], *,
         secret: str = PUSH_SECRET) -> Any:
    """A signed OrderHub-format push to ``/webhooks/carriers/{carrier_id}`` (no API key needed)."""
    body = json.dumps({"carrier": carrier_id, "events": events}).encode()
    return api.post(f"/webhooks/carriers/{carrier_id}", content=body,
                    headers={"Content-Type": "application/json",
                             ORDERHUB_SIGNATURE_HEADER: sign_orderhub_push(secret, body)})


def outbox_topics(hub: OrderHub, tenant_id: str) -> list[str]:
    """Topics of the tenant's outbox rows, oldest first."""
    with hub.engine.connect() as conn:
        return [row.topic for row in reversed(SqlOutboxRepository(conn).list(tenant_id, limit=500))]

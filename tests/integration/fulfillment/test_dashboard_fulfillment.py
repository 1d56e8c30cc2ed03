"""The dashboard's fulfillment pages (issue 5) on real SQLite and PostgreSQL, with data made by
the real flow: a paid order planned into a shipment, a waybill from the simulated carrier over
HTTP, warehouse scans (one refused, one weighing too much), carrier pushes (one with a code
nobody maps) and handhelds whose operator gets locked. The order page lists its shipments, the
shipment page shows lines, scans and carrier events, the alerts and devices pages show what
went wrong, and nothing of another tenant's is shown."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from orderhub.adapters.carriers.push import ORDERHUB_SIGNATURE_HEADER, sign_orderhub_push
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.domain.time import FixedClock
from orderhub.entrypoints.api.app import create_app
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.simulation.fake_carrier import FakeCarrier
from orderhub.workers.fulfillment import CarrierWaybillRelay, FulfilmentPlanner
from tests.integration.fulfillment.helpers import API_KEY, PUSH_SECRET, START
from tests.integration.test_api_orders import order_body
from tests.integration.test_dashboard_pages import sign_in, text_of, with_dashboard

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def ui(hub: OrderHub) -> Iterator[TestClient]:
    with TestClient(with_dashboard(create_app(hub), hub), follow_redirects=False) as c:
        yield c


def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _push(api: TestClient, events: list[dict[str, Any]]) -> dict[str, Any]:
    body = json.dumps({"carrier": "sf", "events": events}).encode()
    return _ok(api.post("/webhooks/carriers/sf", content=body, headers={
        "Content-Type": "application/json", ORDERHUB_SIGNATURE_HEADER: sign_orderhub_push(PUSH_SECRET, body)}))


def _scan(api: TestClient, sid: str, scan_id: str, step: str, *, status: int = 200, **fields: Any) -> dict[str, Any]:
    return _ok(api.post(f"/api/v1/shipments/{sid}/scans", json={
        "scan_id": scan_id, "step": step, "operator": "wang", "device_id": "pda-1", **fields}), status)


@pytest.fixture
def shipped(hub: OrderHub, api: TestClient, carrier: FakeCarrier, clock: FixedClock) -> dict[str, Any]:
    """A paid order with one shipment that has a waybill, scans up to a bad weigh, a refused
    scan, carrier events (applied and unknown) and a locked operator."""
    _ok(api.post("/api/v1/warehouses", json={"code": "HZ1", "name": "杭州仓", "province": "浙江省",
                                            "city": "杭州市"}), 201)
    _ok(api.put("/api/v1/inventory/HZ1/TEA-001", json={"on_hand": 20}))
    _ok(api.post("/api/v1/carrier-accounts", json={"carrier": "sf", "api_base_url": carrier.base_url,
                                                   "api_key": API_KEY, "push_secret": PUSH_SECRET}), 201)
    _ok(api.put("/api/v1/rules/fulfillment_policy", json={"sku_weights_g": {"TEA-001": 250}}))
    order = _ok(api.post("/api/v1/orders", json=order_body(
        "WEB-SHIP-1", placed_at="2026-11-21T09:00:00+08:00", paid_at="2026-11-21T09:00:05+08:00", tags=["express"],
        lines=[{"sku": "TEA-001", "title": "龙井", "quantity": 2, "unit_price": "59.90"}])), 201)
    assert FulfilmentPlanner(hub).run_once() == 1
    with httpx.Client(timeout=5) as http:
        assert CarrierWaybillRelay(hub, http_client=http).run_once() == 1
    [shipment] = _ok(api.get("/api/v1/shipments", params={"order_id": order["id"]}))["items"]
    sid, waybill = shipment["id"], shipment["waybill_no"]
    assert waybill

    _scan(api, sid, "s-1", "pick", barcode="TEA-001", quantity=2)
    _scan(api, sid, "s-2", "verify", barcode="WRONG-ITEM", status=422)
    _scan(api, sid, "s-3", "verify", barcode="TEA-001", quantity=2)
    _scan(api, sid, "s-4", "pack")
    weighed = _scan(api, sid, "s-5", "weigh", weight_g=900)
    assert "weight_out_of_tolerance" in weighed["flags"]

    def ev(code: str, text: str, hours: int) -> dict[str, Any]:
        return {"waybill_no": waybill, "code": code, "description": text,
                "occurred_at": (START + timedelta(hours=hours)).isoformat()}

    clock.advance(hours=3)
    assert _push(api, [ev("50", "已揽收", 1)])["counts"] == {"applied": 1}
    assert _push(api, [ev("ZZ9", HOSTILE, 2)])["counts"] == {"unknown": 1}

    for device in ("pda-1", "pda-2", "pda-3"):
        _ok(api.post(f"/api/v1/devices/{device}/heartbeat", json={"operator": "li", "app_version": "2.1.0"}))
    return {"order": order, "shipment_id": sid, "waybill": waybill}


def test_new_pages_require_sign_in(ui: TestClient, tenant: IssuedKey) -> None:
    for path in ("/ui/alerts", "/ui/devices", "/ui/shipments/shp_x"):
        r = ui.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/ui/login")


def test_order_page_lists_its_shipments(ui: TestClient, tenant: IssuedKey, shipped: dict[str, Any]) -> None:
    sign_in(ui, tenant.api_key)
    page = ui.get(f"/ui/orders/{shipped['order']['id']}")
    assert page.status_code == 200
    sid = shipped["shipment_id"]
    assert f'<a href="/ui/shipments/{sid}">' in page.text
    row = re.search(rf'<tr data-shipment="{sid}">(.*?)</tr>', page.text, re.S)
    assert row is not None
    cells = text_of(row.group(1))
    # The carrier's pickup scan moved the packed parcel on: nothing is left for the warehouse.
    for shown in ("in transit · 运输中", "sf", shipped["waybill"], "HZ1", "first_wave", "express_sf", "in_transit",
                  "InTransit_002"):
        assert shown in cells, (shown, cells)


def test_shipment_page_shows_lines_scans_and_carrier_events(ui: TestClient, tenant: IssuedKey,
                                                            shipped: dict[str, Any]) -> None:
    sign_in(ui, tenant.api_key)
    page = ui.get(f"/ui/shipments/{shipped['shipment_id']}")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    text = text_of(html)
    assert f"Shipment {shipped['waybill']}" in text
    assert f'href="/ui/orders/{shipped["order"]["id"]}"' in html
    for shown in ("express_sf", "first_wave", "Next step — (left the warehouse)", "900 g", "expected 500 g",
                  "Weight out of tolerance"):
        assert shown in text, shown
    lines = re.search(r'<table class="lines">(.*?)</table>', html, re.S)
    assert lines is not None
    assert re.search(r"TEA-001.*2 / 2.*2 / 2", text_of(lines.group(1))), lines.group(1)
    scans = text_of(re.search(r'<table class="scans">(.*?)</table>', html, re.S).group(1))  # type: ignore[union-attr]
    for scan_id in ("s-1", "s-3", "s-4", "s-5"):
        assert scan_id in scans
    assert "weight_out_of_tolerance" in scans and "pda-1" in scans
    refused = text_of(re.search(r'<table class="refused">(.*?)</table>', html, re.S).group(1))  # type: ignore[union-attr]
    assert "s-2" in refused and "WRONG-ITEM" in refused and "s-1" not in refused
    tracking = text_of(re.search(r'<table class="tracking">(.*?)</table>', html, re.S).group(1))  # type: ignore[union-attr]
    assert "已揽收" in tracking and "applied" in tracking and "InTransit_002" in tracking
    assert "ZZ9" in tracking and "unknown" in tracking
    # Carrier-supplied text is escaped.
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<style" not in html and ' style="' not in html and "<script>" not in html


def test_alerts_page_lists_open_alerts(ui: TestClient, tenant: IssuedKey, shipped: dict[str, Any]) -> None:
    sign_in(ui, tenant.api_key)
    assert '<a href="/ui/alerts">Alerts</a>' in ui.get("/ui/").text  # the nav link
    page = ui.get("/ui/alerts")
    assert page.status_code == 200
    assert 'href="/ui/alerts" aria-current="page"' in page.text
    text = text_of(page.text)
    sid = shipped["shipment_id"]
    assert "weight_out_of_tolerance" in text and f"shipment {sid} weighed 900 g" in text
    assert f'<a href="/ui/shipments/{sid}">shipment:{sid}</a>' in page.text
    assert "carrier_code_unknown" in text and "carrier:sf:ZZ9" in text
    assert "operator_locked" in text and "critical" in text
    assert '<a href="/ui/devices">operator:li</a>' in page.text
    assert "2026-11-21 02:00:00 UTC" in text


def test_devices_page_shows_handhelds_and_locked_operators(ui: TestClient, tenant: IssuedKey,
                                                          shipped: dict[str, Any]) -> None:
    sign_in(ui, tenant.api_key)
    page = ui.get("/ui/devices")
    assert page.status_code == 200
    html = page.text
    assert re.findall(r'<tr data-device="([^"]+)"', html) == ["pda-1", "pda-2", "pda-3"]
    rows = dict(re.findall(r'<tr data-device="([^"]+)">(.*?)</tr>', html, re.S))
    pda1 = text_of(rows["pda-1"])
    # Last heartbeat after the clock moved on 3 hours; first seen with the first scan.
    assert "li" in pda1 and "2.1.0" in pda1 and "2026-11-21 05:00:00 UTC" in pda1
    assert "2026-11-21 02:00:00 UTC" in pda1
    refused = {device: re.findall(r'class="num refused-items">(\d+)<', row) for device, row in rows.items()}
    assert refused == {"pda-1": ["1"], "pda-2": ["0"], "pda-3": ["0"]}  # the refused verify scan
    locked = re.search(r'<tr class="flagged" data-operator="li">(.*?)</tr>', html, re.S)
    assert locked is not None
    assert "pda-1" in locked.group(1) and "pda-3" in locked.group(1) and "3 devices" in text_of(locked.group(1))


def test_another_tenants_shipment_is_a_404(ui: TestClient, hub: OrderHub, shipped: dict[str, Any]) -> None:
    other: IssuedKey = hub.bus.handle(commands.CreateTenant("globex"))
    sign_in(ui, other.api_key)
    for shipment_id in (shipped["shipment_id"], "shp_does_not_exist", "x" * 300, "bad%00id"):
        page = ui.get(f"/ui/shipments/{shipment_id}")
        assert page.status_code == 404, shipment_id
        assert "was not found in this tenant" in page.text
        assert shipped["waybill"] not in page.text
    # Nor do its alerts or devices show.
    alerts = ui.get("/ui/alerts").text
    assert "No open alerts." in alerts and shipped["shipment_id"] not in alerts
    devices = ui.get("/ui/devices").text
    assert "No device has reported yet." in devices and "No operator account is locked." in devices
    assert "pda-1" not in devices


def test_order_without_shipments_says_so(ui: TestClient, api: TestClient, tenant: IssuedKey) -> None:
    order = _ok(api.post("/api/v1/orders", json=order_body("WEB-NOSHIP")), 201)
    sign_in(ui, tenant.api_key)
    page = ui.get(f"/ui/orders/{order['id']}")
    assert page.status_code == 200
    assert "No shipment yet" in page.text

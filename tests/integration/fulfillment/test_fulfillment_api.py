"""Warehouse scans over the HTTP API (issue 5), on SQLite and PostgreSQL: every refusal is a
problem with what was expected instead and leaves the shipment as it was (kept under
``refused_scans``); weights out of tolerance are applied with a flag and an alert; resends
are duplicates; stale versions are conflicts; roles decide who may scan.

Offline syncs and the operator lock: ``test_fulfillment_devices_api.py``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from orderhub.bootstrap import OrderHub
from orderhub.simulation.fake_carrier import FakeCarrier
from tests.http_helpers import auth
from tests.integration.fulfillment.helpers import (
    STEPS,
    alerts,
    ok,
    order_status,
    problem,
    ready_shipment,
    role_key,
    scan,
    scan_steps,
    setup_tenant,
    shipment,
    timeline_actions,
)

ALL_LEFT = {"TEA-001": 2, "GIFT-CUP": 1}


@pytest.fixture(autouse=True)
def _tenant_ready(api: TestClient, carrier: FakeCarrier) -> None:
    """Warehouse, stock, carrier accounts and policy for every test here."""
    setup_tenant(api, carrier)


def _unchanged(api: TestClient, before: dict[str, Any]) -> dict[str, Any]:
    """The shipment now, asserting a refused scan changed nothing."""
    now = shipment(api, before["id"])
    for key in ("version", "status", "lines", "weight_g", "next_step"):
        assert now[key] == before[key], key
    return now


# ---------------------------------------------------------------------------- refusals
def test_unknown_barcode_is_rejected_with_what_is_left_and_changes_nothing(hub: OrderHub, api: TestClient) -> None:
    parcel = ready_shipment(hub, api, "WEB-S1")
    body = problem(scan(api, parcel["id"], "x-1", "pick", "NOT-ON-IT"), 422, "scan_rejected")
    assert body["expected"] == {"barcodes": ALL_LEFT}
    assert body["field"] == "barcode" and "NOT-ON-IT" in body["detail"]
    after = _unchanged(api, parcel)
    [refused] = after["refused_scans"]
    assert (refused["scan_id"], refused["status"], refused["code"]) == ("x-1", "rejected", "scan_rejected")
    assert refused["item"]["barcode"] == "NOT-ON-IT" and refused["device_id"] == "pda-1"
    assert after["scans"] == []

    # After a partial pick, `expected` lists only what remains.
    ok(scan(api, parcel["id"], "p-1", "pick", "TEA-001", 1))
    body = problem(scan(api, parcel["id"], "x-2", "pick", "TEA-002"), 422, "scan_rejected")
    assert body["expected"] == {"barcodes": {"TEA-001": 1, "GIFT-CUP": 1}}


def test_over_quantity_is_rejected_with_the_remaining_count(hub: OrderHub, api: TestClient) -> None:
    parcel = ready_shipment(hub, api, "WEB-S2")
    body = problem(scan(api, parcel["id"], "x-1", "pick", "TEA-001", 3), 422, "scan_rejected")
    assert body["field"] == "quantity"
    assert body["expected"] == {"barcode": "TEA-001", "remaining": 2}
    _unchanged(api, parcel)
    ok(scan(api, parcel["id"], "p-1", "pick", "TEA-001", 2))
    body = problem(scan(api, parcel["id"], "x-2", "pick", "TEA-001", 1), 422, "scan_rejected")
    assert body["expected"] == {"barcodes": {"GIFT-CUP": 1}}
    assert len(shipment(api, parcel["id"])["refused_scans"]) == 2


def test_steps_out_of_order_name_the_expected_step(hub: OrderHub, api: TestClient) -> None:
    parcel = ready_shipment(hub, api, "WEB-S3")
    body = problem(scan(api, parcel["id"], "x-1", "pack"), 422, "scan_rejected")
    assert body["expected"] == {"step": "pick", "status": "waybill_issued"}
    scan_steps(api, parcel["id"], STEPS[:2])
    picked = shipment(api, parcel["id"])
    assert (picked["status"], picked["next_step"]) == ("picked", "verify")
    # Pack before verify: refused, naming the verify step and what is left to verify.
    body = problem(scan(api, parcel["id"], "x-2", "pack"), 422, "scan_rejected")
    assert body["expected"]["step"] == "verify"
    assert body["expected"]["barcodes"] == ALL_LEFT
    body = problem(scan(api, parcel["id"], "x-3", "handover"), 422, "scan_rejected")
    assert body["expected"]["step"] == "verify"
    _unchanged(api, picked)
    scan_steps(api, parcel["id"], STEPS[2:5])
    body = problem(scan(api, parcel["id"], "x-4", "handover"), 422, "scan_rejected")
    assert body["expected"] == {"step": "weigh", "status": "packed"}


def test_the_free_gift_line_must_be_picked_and_verified_too(hub: OrderHub, api: TestClient) -> None:
    parcel = ready_shipment(hub, api, "WEB-S4")
    assert {line["sku"]: line["kind"] for line in parcel["lines"]} == {"TEA-001": "goods", "GIFT-CUP": "gift"}
    answer = ok(scan(api, parcel["id"], "p-1", "pick", "TEA-001", 2))
    # Without the gift the parcel isn't picked: it can't be verified or packed.
    assert (answer["shipment"]["status"], answer["shipment"]["next_step"]) == ("picking", "pick")
    for n, (step, barcode) in enumerate((("verify", "TEA-001"), ("pack", None))):
        body = problem(scan(api, parcel["id"], f"x-{n}", step, barcode), 422, "scan_rejected")
        assert body["expected"] == {"step": "pick", "status": "picking"}
    answer = ok(scan(api, parcel["id"], "p-2", "pick", "GIFT-CUP"))
    assert answer["shipment"]["status"] == "picked"
    ok(scan(api, parcel["id"], "v-1", "verify", "TEA-001", 2))
    # Verified goods but not the gift: pack is refused naming the gift line.
    body = problem(scan(api, parcel["id"], "x-9", "pack"), 422, "scan_rejected")
    assert body["expected"]["barcodes"] == {"GIFT-CUP": 1}
    assert "gift" in body["detail"]


def test_weight_out_of_tolerance_is_applied_with_a_flag_and_an_alert(hub: OrderHub, api: TestClient) -> None:
    parcel = ready_shipment(hub, api, "WEB-S5")
    assert parcel["expected_weight_g"] == 600
    scan_steps(api, parcel["id"], STEPS[:5])
    assert alerts(api, "weight_out_of_tolerance") == []
    answer = ok(scan(api, parcel["id"], "w-1", "weigh", weight_g=800))
    assert answer["status"] == "applied" and answer["flags"] == ["weight_out_of_tolerance"]
    assert answer["shipment"]["weight_g"] == 800 and answer["shipment"]["weight_flagged"] is True
    [alert] = alerts(api, "weight_out_of_tolerance")
    assert alert["subject"] == f"shipment:{parcel['id']}"
    assert alert["details"] == {"weight_g": 800, "expected_weight_g": 600}
    # The flag travels to the handover (which isn't blocked by it).
    answer = ok(scan(api, parcel["id"], "h-1", "handover"))
    assert answer["shipment"]["status"] == "handed_over" and answer["flags"] == ["weight_out_of_tolerance"]


def test_weight_within_tolerance_raises_nothing(hub: OrderHub, api: TestClient) -> None:
    parcel = ready_shipment(hub, api, "WEB-S6")
    scan_steps(api, parcel["id"], STEPS[:5])
    answer = ok(scan(api, parcel["id"], "w-1", "weigh", weight_g=660))  # +60 g: the tolerance exactly
    assert answer["flags"] == [] and answer["shipment"]["weight_flagged"] is False
    assert alerts(api, "weight_out_of_tolerance") == []


def test_scan_after_handover_is_409_shipment_closed(hub: OrderHub, api: TestClient) -> None:
    parcel = ready_shipment(hub, api, "WEB-S7")
    done = scan_steps(api, parcel["id"])["shipment"]
    assert done["status"] == "handed_over" and done["next_step"] is None
    assert order_status(api, parcel["order_id"]) == "shipped"
    body = problem(scan(api, parcel["id"], "late-1", "pick", "TEA-001"), 409, "shipment_closed")
    assert body["shipment_status"] == "handed_over"
    after = shipment(api, parcel["id"])
    assert after["version"] == done["version"]
    assert after["refused_scans"][-1]["code"] == "shipment_closed"


def test_unknown_shipment_is_404(hub: OrderHub, api: TestClient) -> None:
    problem(scan(api, "shp_nope", "x-1", "pick", "TEA-001"), 404, "shipment_not_found")
    problem(api.get("/api/v1/shipments/shp_nope"), 404, "shipment_not_found")


@pytest.mark.parametrize(("change", "field"), [
    ({"step": "dance"}, "step"),
    ({"quantity": -1}, "quantity"),
    ({"quantity": "2"}, "quantity"),
    ({"weight_g": -5}, "weight_g"),
    ({"colour": "red"}, "colour"),
    ({"scan_id": ""}, "scan_id"),
    ({"operator": "wang li"}, "operator"),
    ({"expected_version": 0}, "expected_version"),
    ({"occurred_at": "2026-11-21T10:00:00"}, "occurred_at"),
])
def test_malformed_scan_is_422_naming_the_field(hub: OrderHub, api: TestClient, change: dict[str, Any],
                                                field: str) -> None:
    parcel = ready_shipment(hub, api, "WEB-S8")
    body = {"scan_id": "m-1", "step": "pick", "operator": "wang", "barcode": "TEA-001", **change}
    answer = problem(api.post(f"/api/v1/shipments/{parcel['id']}/scans", json=body), 422, "validation_error")
    assert answer["field"] == field, answer
    _unchanged(api, parcel)


def test_repeated_scan_id_is_a_duplicate_with_the_first_answer(hub: OrderHub, api: TestClient) -> None:
    parcel = ready_shipment(hub, api, "WEB-S9")
    first = ok(scan(api, parcel["id"], "p-1", "pick", "TEA-001"))
    assert first["status"] == "applied" and first["shipment"]["version"] == parcel["version"] + 1
    again = ok(scan(api, parcel["id"], "p-1", "pick", "TEA-001"))
    assert again["status"] == "duplicate"
    assert again["shipment"] == first["shipment"] and again["scan_id"] == "p-1"
    now = shipment(api, parcel["id"])
    assert now["version"] == first["shipment"]["version"]
    assert [line["picked"] for line in now["lines"]] == [1, 0]
    assert [s["scan_id"] for s in now["scans"]] == ["p-1"]


def test_stale_expected_version_is_409_with_the_current_shipment(hub: OrderHub, api: TestClient) -> None:
    parcel = ready_shipment(hub, api, "WEB-S10")
    seen = parcel["version"]
    ok(scan(api, parcel["id"], "p-1", "pick", "TEA-001", expected_version=seen))
    body = problem(scan(api, parcel["id"], "p-2", "pick", "TEA-001", expected_version=seen), 409,
                   "shipment_version_mismatch")
    assert body["current"]["version"] == seen + 1
    assert body["current"]["lines"][0]["picked"] == 1
    after = shipment(api, parcel["id"])
    assert after["version"] == seen + 1
    assert after["refused_scans"][-1]["code"] == "shipment_version_mismatch"
    # With the version it now has, the same scan goes through.
    answer = ok(scan(api, parcel["id"], "p-2", "pick", "TEA-001", expected_version=seen + 1))
    assert answer["status"] == "applied"


def test_every_scan_is_in_the_order_timeline(hub: OrderHub, api: TestClient) -> None:
    parcel = ready_shipment(hub, api, "WEB-S11")
    scan_steps(api, parcel["id"])
    timeline = ok(api.get(f"/api/v1/orders/{parcel['order_id']}/timeline"))
    scanned = [item for item in timeline["items"] if item["action"] == "shipment.scanned"]
    assert len(scanned) == len(STEPS)
    assert timeline["verified"] is True
    assert "shipment.created" in timeline_actions(api, parcel["order_id"])


def test_warehouse_key_scans_and_viewer_key_is_forbidden(hub: OrderHub, api: TestClient) -> None:
    parcel = ready_shipment(hub, api, "WEB-S12")
    url = f"/api/v1/shipments/{parcel['id']}/scans"
    body = {"scan_id": "r-1", "step": "pick", "operator": "wang", "barcode": "TEA-001"}
    viewer = problem(api.post(url, json=body, headers=auth(role_key(hub, "viewer"))), 403, "permission_denied")
    assert "viewer" in viewer["detail"]
    problem(api.post("/api/v1/devices/pda-1/sync", json={"items": []}, headers=auth(role_key(hub, "viewer"))),
            403, "permission_denied")
    _unchanged(api, parcel)
    warehouse = auth(role_key(hub, "warehouse"))
    assert ok(api.post(url, json=body, headers=warehouse))["status"] == "applied"
    assert ok(api.post("/api/v1/devices/pda-1/heartbeat", json={"operator": "wang"}, headers=warehouse))
    # The warehouse role may scan but not unlock operators or change rules.
    problem(api.post("/api/v1/operators/wang/unlock", headers=warehouse), 403, "permission_denied")

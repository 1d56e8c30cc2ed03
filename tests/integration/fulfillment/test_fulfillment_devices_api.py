"""Handheld devices over the HTTP API (issue 5), on SQLite and PostgreSQL: offline syncs
answered item by item (applied, duplicate, conflict with the current shipment, rejected
with the field), idempotent resends, the device list and its rejections, and the operator
lock (one account on too many devices within the window) with its unlock."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from orderhub.bootstrap import OrderHub
from orderhub.domain.time import FixedClock, isoformat
from orderhub.simulation.fake_carrier import FakeCarrier
from tests.http_helpers import auth
from tests.integration.fulfillment.helpers import (
    START,
    alerts,
    ok,
    problem,
    ready_shipment,
    role_key,
    scan,
    set_policy,
    setup_tenant,
    shipment,
    sync,
    sync_item,
)


@pytest.fixture(autouse=True)
def _tenant_ready(api: TestClient, carrier: FakeCarrier) -> None:
    """Warehouse, stock, carrier accounts and policy for every test here."""
    setup_tenant(api, carrier)


def _devices(api: TestClient) -> dict[str, Any]:
    return ok(api.get("/api/v1/devices"))


def _device(api: TestClient, device_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [d for d in _devices(api)["items"] if d["device_id"] == device_id]
    assert len(found) == 1, found
    return found[0]


def _statuses(answer: dict[str, Any]) -> list[str]:
    return [item["status"] for item in answer["items"]]


# ---------------------------------------------------------------------------- offline sync
def test_offline_batch_on_one_shipment_applies_in_order(hub: OrderHub, api: TestClient, clock: FixedClock) -> None:
    parcel = ready_shipment(hub, api, "WEB-D1")
    sid, seen = parcel["id"], parcel["version"]
    steps = [("pick", "TEA-001", 2, None), ("pick", "GIFT-CUP", 1, None), ("verify", "TEA-001", 2, None),
             ("verify", "GIFT-CUP", 1, None), ("pack", None, 1, None), ("weigh", None, 1, 610)]
    # Every item carries the version the device downloaded before going offline.
    items = [sync_item(f"off-{n}", sid, seen, step, barcode, qty, weight)
             for n, (step, barcode, qty, weight) in enumerate(steps)]
    clock.advance(minutes=5)
    answer = sync(api, "pda-9", items)
    assert answer["counts"] == {"applied": 6, "duplicate": 0, "conflict": 0, "rejected": 0}
    assert [item["index"] for item in answer["items"]] == list(range(6))
    assert [item["shipment"]["version"] for item in answer["items"]] == [seen + n for n in range(1, 7)]
    assert [item["shipment"]["status"] for item in answer["items"]] == [
        "picking", "picked", "picked", "picked", "packed", "packed"]
    after = shipment(api, sid)
    assert (after["status"], after["version"], after["weight_g"], after["next_step"]) == (
        "packed", seen + 6, 610, "handover")
    assert [s["scan_id"] for s in after["scans"]] == [f"off-{n}" for n in range(6)]
    assert {s["device_id"] for s in after["scans"]} == {"pda-9"}
    device = _device(api, "pda-9")
    assert device["last_sync_at"] == isoformat(clock.now()) and device["refused_items"] == 0
    assert device["last_operator"] == "wang"


def test_conflicting_items_are_not_applied_while_another_shipments_are(hub: OrderHub, api: TestClient) -> None:
    first = ready_shipment(hub, api, "WEB-D2")
    second = ready_shipment(hub, api, "WEB-D3")
    # Someone scans the first parcel online after the device went offline.
    changed = ok(scan(api, first["id"], "online-1", "pick", "TEA-001", device_id="pda-1"))["shipment"]
    items = [sync_item("c-1", first["id"], first["version"], "pick", "GIFT-CUP"),
             sync_item("c-2", second["id"], second["version"], "pick", "TEA-001", 2),
             sync_item("c-3", first["id"], first["version"], "pick", "TEA-001"),
             sync_item("c-4", second["id"], second["version"], "pick", "GIFT-CUP")]
    answer = sync(api, "pda-2", items)
    assert _statuses(answer) == ["conflict", "applied", "conflict", "applied"]
    assert answer["counts"] == {"applied": 2, "duplicate": 0, "conflict": 2, "rejected": 0}
    for conflict in (answer["items"][0], answer["items"][2]):
        assert conflict["error"]["code"] == "shipment_version_mismatch"
        assert conflict["error"]["current"] == changed
    now_first = shipment(api, first["id"])
    assert now_first["version"] == changed["version"] and now_first["lines"] == changed["lines"]
    now_second = shipment(api, second["id"])
    assert (now_second["status"], now_second["version"]) == ("picked", second["version"] + 2)

    # The device didn't hear the answer and sends the whole batch again: same answers.
    again = sync(api, "pda-2", items)
    assert _statuses(again) == ["conflict", "duplicate", "conflict", "duplicate"]
    for n in (1, 3):
        assert again["items"][n]["shipment"] == answer["items"][n]["shipment"]
        assert again["items"][n]["scan_id"] == items[n]["scan_id"]
    assert again["items"][0]["error"]["current"] == changed
    assert shipment(api, second["id"])["version"] == second["version"] + 2

    # Every conflict is kept as sent, newest first.
    kept = ok(api.get("/api/v1/devices/pda-2/rejections"))["items"]
    assert [(r["scan_id"], r["status"]) for r in kept] == [("c-3", "conflict"), ("c-1", "conflict")] * 2
    assert kept[-1]["item"] == items[0] and kept[-1]["shipment_id"] == first["id"]
    assert _device(api, "pda-2")["refused_items"] == 4


def test_malformed_items_are_rejected_with_their_field_and_the_rest_applied(hub: OrderHub,
                                                                           api: TestClient) -> None:
    parcel = ready_shipment(hub, api, "WEB-D4")
    sid, seen = parcel["id"], parcel["version"]
    no_version = sync_item("m-2", sid, seen, "pick", "TEA-001")
    del no_version["shipment_version"]
    items: list[Any] = [
        sync_item("m-0", sid, seen, "pick", "TEA-001"),
        sync_item("m-1", sid, seen, "pick", "TEA-001"),
        no_version,
        sync_item("m-3", sid, seen, "dance", "TEA-001"),
        "pick TEA-001",
        {**sync_item("m-5", sid, seen, "pick", "GIFT-CUP"), "colour": "red"},
        sync_item("m-6", sid, seen, "pick", "GIFT-CUP", quantity=-1),
        sync_item("m-7", sid, seen, "pick", "NOT-ON-IT"),
        sync_item("m-8", sid, seen, "pick", "GIFT-CUP"),
    ]
    answer = sync(api, "pda-3", items)
    assert _statuses(answer) == ["applied", "applied", "rejected", "rejected", "rejected", "rejected", "rejected",
                                 "rejected", "applied"]
    fields = [item["error"].get("field") for item in answer["items"] if item["status"] == "rejected"]
    assert fields == ["items[2].shipment_version", "items[3].step", "items[4]", "items[5].colour",
                      "items[6].quantity", None]
    assert answer["items"][7]["error"]["code"] == "scan_rejected"
    assert answer["items"][7]["error"]["expected"] == {"barcodes": {"GIFT-CUP": 1}}
    assert shipment(api, sid)["status"] == "picked"

    kept = ok(api.get("/api/v1/devices/pda-3/rejections"))["items"]
    assert [r["item"] for r in reversed(kept)] == [items[2], items[3], {"item": "pick TEA-001"}, items[5], items[6],
                                                   items[7]]
    device = _device(api, "pda-3")
    assert device["refused_items"] == 6 and device["last_sync_at"] is not None


def test_sync_body_must_be_a_list_of_items(hub: OrderHub, api: TestClient) -> None:
    problem(api.post("/api/v1/devices/pda-1/sync", json={"items": "x"}), 422, "validation_error")
    assert problem(api.post("/api/v1/devices/pda-1/sync", json={"scans": []}), 422, "validation_error")["field"] \
        == "items"
    problem(api.post("/api/v1/devices/bad%20id/sync", json={"items": []}), 422, "validation_error")
    assert _devices(api)["items"] == []


def test_device_list_shows_heartbeats_syncs_and_refusals(hub: OrderHub, api: TestClient, clock: FixedClock) -> None:
    beat = ok(api.post("/api/v1/devices/pda-7/heartbeat", json={"operator": "li", "app_version": "2.4.1"}))
    assert beat == {"device_id": "pda-7", "heartbeat_at": isoformat(clock.now()), "operator": "li",
                    "operator_locked": False}
    device = _device(api, "pda-7")
    assert (device["last_heartbeat_at"], device["last_sync_at"], device["app_version"], device["last_operator"]) == (
        isoformat(clock.now()), None, "2.4.1", "li")
    clock.advance(minutes=1)
    sync(api, "pda-7", [{"scan_id": "z-1"}])
    device = _device(api, "pda-7")
    assert device["last_sync_at"] == isoformat(clock.now()) and device["refused_items"] == 1
    assert device["last_heartbeat_at"] == isoformat(START)
    problem(api.post("/api/v1/devices/pda-7/heartbeat", json={"operator": "li", "battery": 80}), 422,
            "validation_error")


# ---------------------------------------------------------------------------- operator lock
def test_operator_on_three_devices_within_ten_minutes_is_locked(hub: OrderHub, api: TestClient,
                                                                clock: FixedClock) -> None:
    parcel = ready_shipment(hub, api, "WEB-L1")
    sid = parcel["id"]
    ok(scan(api, sid, "l-1", "pick", "TEA-001", device_id="pda-1"))
    clock.advance(minutes=4)
    assert ok(api.post("/api/v1/devices/pda-2/heartbeat", json={"operator": "wang"}))["operator_locked"] is False
    clock.advance(minutes=4)
    body = problem(scan(api, sid, "l-2", "pick", "TEA-001", device_id="pda-3"), 403, "operator_locked")
    assert body["operator"] == "wang" and "unlock" in body["detail"]
    [alert] = alerts(api, "operator_locked")
    assert alert["subject"] == "operator:wang"
    assert alert["details"] == {"operator": "wang", "devices": ["pda-1", "pda-2", "pda-3"]}
    [locked] = _devices(api)["locked_operators"]
    assert (locked["operator"], locked["devices"]) == ("wang", ["pda-1", "pda-2", "pda-3"])

    # Every later write by the account is refused, on any device, online or offline.
    problem(scan(api, sid, "l-3", "pick", "TEA-001", device_id="pda-1"), 403, "operator_locked")
    problem(scan(api, sid, "l-4", "pick", "TEA-001", device_id=None), 403, "operator_locked")
    answer = sync(api, "pda-1", [sync_item("l-5", sid, parcel["version"] + 1, "pick", "TEA-001")])
    assert answer["items"][0]["status"] == "rejected"
    assert answer["items"][0]["error"]["code"] == "operator_locked"
    assert ok(api.post("/api/v1/devices/pda-1/heartbeat", json={"operator": "wang"}))["operator_locked"] is True
    after = shipment(api, sid)
    assert after["version"] == parcel["version"] + 1
    assert [r["code"] for r in after["refused_scans"]] == ["operator_locked"] * 4
    # Other operators keep working.
    ok(scan(api, sid, "l-6", "pick", "TEA-001", operator="li", device_id="pda-4"))

    problem(api.post("/api/v1/operators/wang/unlock", headers=auth(role_key(hub, "warehouse"))), 403,
            "permission_denied")
    assert ok(api.post("/api/v1/operators/wang/unlock")) == {"operator": "wang", "unlocked": True}
    assert ok(api.post("/api/v1/operators/wang/unlock")) == {"operator": "wang", "unlocked": False}
    assert alerts(api, "operator_locked") == []
    assert _devices(api)["locked_operators"] == []
    answer = ok(scan(api, sid, "l-7", "pick", "GIFT-CUP", device_id="pda-3"))
    assert answer["status"] == "applied" and answer["shipment"]["status"] == "picked"


def test_two_devices_do_not_lock(hub: OrderHub, api: TestClient, clock: FixedClock) -> None:
    parcel = ready_shipment(hub, api, "WEB-L2")
    for n, device in enumerate(("pda-1", "pda-2", "pda-1", "pda-2")):
        barcode = ("TEA-001", "TEA-001", "GIFT-CUP")[n] if n < 3 else None
        if barcode is None:
            assert ok(api.post(f"/api/v1/devices/{device}/heartbeat", json={"operator": "wang"}))[
                "operator_locked"] is False
        else:
            ok(scan(api, parcel["id"], f"t-{n}", "pick", barcode, device_id=device))
        clock.advance(minutes=1)
    assert _devices(api)["locked_operators"] == []
    assert alerts(api, "operator_locked") == []
    assert shipment(api, parcel["id"])["status"] == "picked"


def test_devices_spread_over_more_than_the_window_do_not_lock(hub: OrderHub, api: TestClient,
                                                              clock: FixedClock) -> None:
    parcel = ready_shipment(hub, api, "WEB-L3")
    ok(scan(api, parcel["id"], "w-1", "pick", "TEA-001", device_id="pda-1"))
    clock.advance(minutes=6)
    ok(api.post("/api/v1/devices/pda-2/heartbeat", json={"operator": "wang"}))
    clock.advance(minutes=5)  # pda-1 was 11 minutes ago
    ok(scan(api, parcel["id"], "w-2", "pick", "TEA-001", device_id="pda-3"))
    assert _devices(api)["locked_operators"] == []
    # A fourth device within ten minutes of pda-2 and pda-3 does lock.
    clock.advance(minutes=3)
    problem(scan(api, parcel["id"], "w-3", "pick", "GIFT-CUP", device_id="pda-4"), 403, "operator_locked")
    [locked] = _devices(api)["locked_operators"]
    assert locked["devices"] == ["pda-2", "pda-3", "pda-4"]


def test_policy_changes_the_device_threshold(hub: OrderHub, api: TestClient, clock: FixedClock) -> None:
    set_policy(api, account_lock={"devices": 4})
    parcel = ready_shipment(hub, api, "WEB-L4")
    for n in range(1, 4):
        ok(api.post(f"/api/v1/devices/pda-{n}/heartbeat", json={"operator": "wang"}))
        clock.advance(minutes=1)
    ok(scan(api, parcel["id"], "p-1", "pick", "TEA-001", device_id="pda-3"))
    assert _devices(api)["locked_operators"] == []
    assert ok(api.post("/api/v1/devices/pda-4/heartbeat", json={"operator": "wang"}))["operator_locked"] is True
    assert [a["details"]["devices"] for a in alerts(api, "operator_locked")] == [["pda-1", "pda-2", "pda-3", "pda-4"]]
    problem(scan(api, parcel["id"], "p-2", "pick", "TEA-001", device_id="pda-3"), 403, "operator_locked")

    set_policy(api, account_lock={"enabled": False})
    ok(api.post("/api/v1/operators/wang/unlock"))
    for n in range(1, 6):
        ok(api.post(f"/api/v1/devices/pda-{n}/heartbeat", json={"operator": "wang"}))
    assert _devices(api)["locked_operators"] == []
    body = problem(api.put("/api/v1/rules/fulfillment_policy", json={"account_lock": {"devices": 1}}), 422,
                   "rule_invalid")
    assert body["field"] == "account_lock.devices"

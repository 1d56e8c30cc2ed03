"""Carrier tracking over the HTTP API (issue 5), on SQLite and PostgreSQL: signed pushes
(OrderHub JSON and SF's form route push), unknown waybills, unknown carrier codes (stored,
counted, alerted once, replayed once an override maps them), the tracking poller, and stall
levels on a fixed clock with their webhook events.

Completion after the after-sale window and planning: ``test_fulfillment_planning_api.py``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient

from orderhub.adapters.carriers.base import CarrierEvent
from orderhub.adapters.carriers.push import FORM_CONTENT_TYPE, build_sf_route_push, sf_route_of
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.domain.time import FixedClock
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.simulation.fake_carrier import FakeCarrier
from orderhub.workers.fulfillment import TrackingPoller
from tests.integration.fulfillment.helpers import (
    PUSH_SECRET,
    alerts,
    carrier_event,
    ok,
    order_status,
    outbox_topics,
    problem,
    push,
    ready_shipment,
    scan_steps,
    set_policy,
    setup_tenant,
    shipment,
)


@pytest.fixture(autouse=True)
def _tenant_ready(api: TestClient, carrier: FakeCarrier) -> None:
    """Warehouse, stock, carrier accounts and policy for every test here."""
    setup_tenant(api, carrier)


def _handed_over(hub: OrderHub, api: TestClient, external_id: str) -> dict[str, Any]:
    parcel = ready_shipment(hub, api, external_id)
    done: dict[str, Any] = scan_steps(api, parcel["id"])["shipment"]
    assert done["status"] == "handed_over"
    return shipment(api, parcel["id"])


def _route_all_to_usps(api: TestClient) -> None:
    current = ok(api.get("/api/v1/rules/carrier_routing"))["body"]
    rules = [{"name": "everything_usps", "when": "true", "carrier": "usps"}, *current["rules"]]
    ok(api.put("/api/v1/rules/carrier_routing", json={**current, "rules": rules}))


def _unknown_codes(api: TestClient) -> list[tuple[str, str, int]]:
    items = ok(api.get("/api/v1/tracking/unknown-codes"))["items"]
    return [(i["carrier"], i["code"], i["events"]) for i in items]


# ---------------------------------------------------------------------------- pushes
def test_bad_signature_is_401_and_stores_nothing(hub: OrderHub, api: TestClient, clock: FixedClock) -> None:
    parcel = _handed_over(hub, api, "WEB-T1")
    events = [carrier_event(parcel["waybill_no"], "31", clock.now())]
    problem(push(api, "sf", events, secret="not-the-push-secret"), 401, "signature_invalid")
    unsigned = api.post("/webhooks/carriers/sf", json={"carrier": "sf", "events": events},
                        headers={"Authorization": ""})
    assert unsigned.status_code == 401, unsigned.text
    after = shipment(api, parcel["id"])
    assert after["tracking"] == [] and after["version"] == parcel["version"] and after["milestone"] is None
    # The right secret is then applied: nothing about the refused ones was remembered.
    assert ok(push(api, "sf", events))["counts"] == {"applied": 1}


def test_unknown_and_mixed_waybills(hub: OrderHub, api: TestClient, clock: FixedClock) -> None:
    parcel = _handed_over(hub, api, "WEB-T2")
    stranger = carrier_event("SF0000000000001", "31", clock.now())
    body = problem(push(api, "sf", [stranger]), 404, "unknown_waybill")
    assert body["waybills"] == ["SF0000000000001"]
    # The right waybill pushed under another carrier is unknown to that carrier.
    problem(push(api, "zto", [carrier_event(parcel["waybill_no"], "收件", clock.now())]), 404, "unknown_waybill")
    mixed = ok(push(api, "sf", [stranger, carrier_event(parcel["waybill_no"], "31", clock.now())]))
    assert mixed["counts"] == {"unknown_waybill": 1, "applied": 1}
    assert [i["outcome"] for i in mixed["items"]] == ["unknown_waybill", "applied"]
    assert "SF0000000000001" in mixed["items"][0]["error"]
    after = shipment(api, parcel["id"])
    assert (after["status"], after["milestone"]) == ("in_transit", "in_transit")
    assert [e["code"] for e in after["tracking"]] == ["31"]


def test_unknown_code_changes_nothing_until_an_override_replays_it(hub: OrderHub, api: TestClient,
                                                                   clock: FixedClock) -> None:
    _route_all_to_usps(api)
    parcel = _handed_over(hub, api, "WEB-T3")
    assert parcel["carrier"] == "usps" and parcel["routing_rule"] == "everything_usps"
    waybill = parcel["waybill_no"]
    first = ok(push(api, "usps", [carrier_event(waybill, "DELIVERED", clock.now() - timedelta(minutes=5))]))
    assert [i["outcome"] for i in first["items"]] == ["unknown"]
    after = shipment(api, parcel["id"])
    assert (after["status"], after["milestone"], after["version"]) == ("handed_over", None, parcel["version"])
    assert after["tracking"][0]["outcome"] == "unknown"
    assert _unknown_codes(api) == [("usps", "DELIVERED", 1)]
    [alert] = alerts(api, "carrier_code_unknown")
    assert alert["subject"] == "carrier:usps:DELIVERED" and "PUT /api/v1/rules/carrier_codes" in alert["message"]
    # Another event with the same code: counted, but no second alert.
    clock.advance(minutes=10)
    ok(push(api, "usps", [carrier_event(waybill, "DELIVERED", clock.now())]))
    assert _unknown_codes(api) == [("usps", "DELIVERED", 2)]
    assert len(alerts(api, "carrier_code_unknown")) == 1
    assert order_status(api, parcel["order_id"]) == "shipped"

    ok(api.put("/api/v1/rules/carrier_codes", json={"overrides": {"usps": {"DELIVERED": {"milestone": "delivered"}}}}))
    delivered = shipment(api, parcel["id"])
    assert (delivered["status"], delivered["milestone"], delivered["sub_status"]) == (
        "delivered", "delivered", "Delivered_001")
    assert "unknown" not in [e["outcome"] for e in delivered["tracking"]]
    assert order_status(api, parcel["order_id"]) == "delivered"
    assert alerts(api, "carrier_code_unknown") == []
    [resolved] = alerts(api, "carrier_code_unknown", open_only=False)
    assert resolved["resolved_at"] is not None
    assert _unknown_codes(api) == []
    # From now on the code is understood as it arrives (the shipment is closed: ignored or unchanged).
    again = ok(push(api, "usps", [carrier_event(waybill, "DELIVERED", clock.now() + timedelta(minutes=1))]))
    assert again["items"][0]["milestone"] == "delivered"


def test_sf_route_push_form_works_end_to_end(hub: OrderHub, api: TestClient, clock: FixedClock) -> None:
    parcel = _handed_over(hub, api, "WEB-T4")
    waybill = parcel["waybill_no"]
    routes = [sf_route_of(CarrierEvent(waybill_no=waybill, code=code, description=text, occurred_at=at,
                                       location="杭州", raw={}))
              for code, text, at in (("50", "已揽收", clock.now() - timedelta(minutes=30)),
                                     ("80", "已签收", clock.now()))]
    stamp = int(clock.now().timestamp() * 1000)
    form = build_sf_route_push(PUSH_SECRET, routes, stamp)
    forged = build_sf_route_push("wrong-checkword", routes, stamp)
    headers = {"Content-Type": FORM_CONTENT_TYPE}
    problem(api.post("/webhooks/carriers/sf", content=urlencode(forged).encode(), headers=headers), 401,
            "signature_invalid")
    answer = ok(api.post("/webhooks/carriers/sf", content=urlencode(form).encode(), headers=headers))
    assert answer["counts"] == {"applied": 2}
    after = shipment(api, parcel["id"])
    assert after["status"] == "delivered"
    assert [(e["code"], e["location"], e["source"]) for e in after["tracking"]] == [
        ("50", "杭州", "push"), ("80", "杭州", "push")]
    assert order_status(api, parcel["order_id"]) == "delivered"
    # The same checkpoints in OrderHub's JSON format are duplicates.
    same = [carrier_event(waybill, "80", clock.now(), "已签收")]
    assert ok(push(api, "sf", same))["counts"] == {"duplicate": 1}


def test_poller_fetches_due_tracking_and_a_push_of_it_is_a_duplicate(hub: OrderHub, api: TestClient,
                                                                     carrier: FakeCarrier, clock: FixedClock) -> None:
    set_policy(api, tracking_poll_minutes=20)
    parcel = _handed_over(hub, api, "WEB-T5")
    waybill = parcel["waybill_no"]
    taken = clock.now() + timedelta(minutes=5)
    carrier.add_event(waybill, "50", occurred_at=taken, description="已揽收")
    with httpx.Client(timeout=5) as http:
        poller = TrackingPoller(hub, http_client=http)
        assert poller.run_once() == 0  # not due yet: the waybill was issued just now
        clock.advance(minutes=21)
        assert poller.run_once() == 1
        assert poller.run_once() == 0  # rescheduled tracking_poll_minutes ahead
        after = shipment(api, parcel["id"])
        assert (after["status"], after["milestone"]) == ("in_transit", "in_transit")
        assert [(e["code"], e["source"]) for e in after["tracking"]] == [("50", "poll")]
        assert ok(push(api, "sf", [carrier_event(waybill, "50", taken, "已揽收")]))["counts"] == {"duplicate": 1}

        carrier.add_event(waybill, "44", occurred_at=clock.now(), description="派送中")
        clock.advance(minutes=21)
        assert poller.run_once() == 1
    after = shipment(api, parcel["id"])
    assert after["milestone"] == "out_for_delivery"
    assert [e["code"] for e in after["tracking"]] == ["50", "44"]


# ---------------------------------------------------------------------------- stalls
def test_stall_levels_rise_with_time_and_reset_on_new_tracking(hub: OrderHub, api: TestClient, tenant: IssuedKey,
                                                               clock: FixedClock) -> None:
    actor = commands.Actor(tenant_id=tenant.tenant_id, actor="test", source="test")
    hub.bus.handle(commands.RegisterWebhookEndpoint(actor=actor, url="http://127.0.0.1:9/hook",
                                                    secret="whsec-test-123456", events=("shipment.*",)))
    parcel = _handed_over(hub, api, "WEB-T6")
    waybill = parcel["waybill_no"]
    ok(push(api, "sf", [carrier_event(waybill, "31", clock.now())]))
    assert hub.bus.handle(commands.CheckStalls()) == 0

    expected = [(2, 1, "shipment_stalled_buyer_notice"), (4, 2, "shipment_stalled_cs_task"),
                (18, 3, "shipment_stalled_compensation")]
    for hours, level, kind in expected:
        clock.advance(hours=hours - 0.1)
        assert hub.bus.handle(commands.CheckStalls()) == 0, f"level {level} came early"
        clock.advance(hours=0.1)
        assert hub.bus.handle(commands.CheckStalls()) == 1
        assert hub.bus.handle(commands.CheckStalls()) == 0  # once per level
        now = shipment(api, parcel["id"])
        assert now["stall_level"] == level and now["compensation_flag"] is (level == 3)
        [alert] = alerts(api, kind)
        assert alert["subject"] == f"shipment:{parcel['id']}" and alert["details"]["level"] == level
    assert outbox_topics(hub, tenant.tenant_id).count("shipment.stalled") == 3
    clock.advance(hours=48)
    assert hub.bus.handle(commands.CheckStalls()) == 0  # level 3 is the last

    ok(push(api, "sf", [carrier_event(waybill, "44", clock.now())]))
    moving = shipment(api, parcel["id"])
    assert moving["stall_level"] == 0 and moving["milestone"] == "out_for_delivery"
    assert hub.bus.handle(commands.CheckStalls()) == 0


def test_stall_thresholds_per_milestone_come_from_the_policy(hub: OrderHub, api: TestClient,
                                                             clock: FixedClock) -> None:
    set_policy(api, stall_hours={"in_transit": [1, 2, 3]})
    parcel = _handed_over(hub, api, "WEB-T7")
    ok(push(api, "sf", [carrier_event(parcel["waybill_no"], "31", clock.now())]))
    for level in (1, 2, 3):
        clock.advance(hours=1)
        assert hub.bus.handle(commands.CheckStalls()) == 1
        assert shipment(api, parcel["id"])["stall_level"] == level
    assert shipment(api, parcel["id"])["compensation_flag"] is True
    # A parcel at another milestone keeps the default thresholds.
    other = _handed_over(hub, api, "WEB-T8")
    ok(push(api, "sf", [carrier_event(other["waybill_no"], "44", clock.now())]))
    clock.advance(hours=1)
    assert hub.bus.handle(commands.CheckStalls()) == 0
    clock.advance(hours=1)
    assert hub.bus.handle(commands.CheckStalls()) == 1
    assert shipment(api, other["id"])["stall_level"] == 1
    body = problem(api.put("/api/v1/rules/fulfillment_policy", json={"stall_hours": {"in_transit": [3, 2, 1]}}),
                   422, "rule_invalid")
    assert body["field"] == "stall_hours.in_transit[1]"

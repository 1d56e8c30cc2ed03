"""SLA escalation of after-sale cases with a controllable clock (issue 6 §4): yellow at 12 h,
orange at 24 h, red at 36 h by default and per tenant; an alert and a webhook event per
level; the queue sorted by urgency; the buyer's turn stops the clock."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi.testclient import TestClient

from orderhub.bootstrap import OrderHub
from orderhub.domain.commands import CheckAfterSaleSla
from orderhub.domain.time import FixedClock
from tests.integration.aftersale.helpers import CASES, act, ok, open_case, order, outbox_rows


def _check(hub: OrderHub) -> int:
    raised: int = hub.bus.handle(CheckAfterSaleSla())
    return raised


def _sla_alerts(api: TestClient) -> list[tuple[str, str]]:
    items = ok(api.get("/api/v1/alerts"))["items"]
    return sorted((a["kind"], a["subject"]) for a in items if a["kind"].startswith("aftersale_sla_"))


def _review_case(api: TestClient, external_id: str) -> dict[str, Any]:
    created = order(api, external_id, stage="shipped")
    case = open_case(api, created["id"], reason="not_as_described", amount="10.00")
    assert case["status"] == "requested"
    return case


def test_cases_turn_yellow_orange_red_with_one_alert_and_event_per_level(
        api: TestClient, hub: OrderHub, clock: FixedClock) -> None:
    hub.settings = dataclasses.replace(hub.settings, webhooks_allow_private=True)
    ok(api.post("/api/v1/webhook-endpoints", json={"url": "https://hooks.example.com/orderhub",
                                                   "secret": "s3cret-s3cret-s3cret", "events": ["aftersale.*"]}), 201)
    first = _review_case(api, "SLA-1")
    assert first["sla"]["level"] == "none"
    assert first["sla"]["due"]["yellow"] == "2026-11-21T14:00:00.000000Z"
    clock.advance(hours=1)
    second = _review_case(api, "SLA-2")
    clock.advance(hours=10, minutes=59)  # 11:59 after the first
    assert _check(hub) == 0
    clock.advance(minutes=1)
    assert _check(hub) == 1
    assert _sla_alerts(api) == [("aftersale_sla_yellow", f"aftersale:{first['id']}")]
    assert _check(hub) == 0  # a level is raised once
    clock.advance(hours=12, minutes=30)  # first 24:30 (orange), second 23:30 (yellow)
    assert _check(hub) == 2
    queue = ok(api.get(CASES))["items"]
    assert [(c["id"], c["sla"]["level"]) for c in queue] == [(first["id"], "orange"), (second["id"], "yellow")]
    clock.advance(hours=12)  # first 36:30 (red), second 35:30 (orange)
    assert _check(hub) == 2
    levels = {c["id"]: c["sla"]["level"] for c in ok(api.get(CASES))["items"]}
    assert levels == {first["id"]: "red", second["id"]: "orange"}
    assert ok(api.get(CASES, params={"sla": "red"}))["items"][0]["id"] == first["id"]
    kinds = [k for k, _ in _sla_alerts(api)]
    assert kinds.count("aftersale_sla_yellow") == 2 and kinds.count("aftersale_sla_orange") == 2
    assert kinds.count("aftersale_sla_red") == 1
    escalations = [r for r in outbox_rows(hub, "webhook") if r.topic == "aftersale.escalated"]
    assert len(escalations) == 5
    assert sorted(e.payload["data"]["level"] for e in escalations[-2:]) == ["orange", "red"]
    detail = ok(api.get(f"{CASES}/{first['id']}"))
    assert [t["action"] for t in detail["timeline"]].count("aftersale.escalated") == 3
    # Decided at last: its alerts are resolved, the other case's stay open.
    act(api, first["id"], "reject", reason="outside the return window")
    assert {subject for _, subject in _sla_alerts(api)} == {f"aftersale:{second['id']}"}


def test_the_buyers_turn_stops_the_clock_and_tenants_set_their_own_hours(
        api: TestClient, hub: OrderHub, clock: FixedClock) -> None:
    policy = ok(api.get("/api/v1/rules/refund_policy"))
    body = policy.get("body", policy)
    body = {k: v for k, v in body.items() if k not in ("kind", "version", "updated_at", "created_at")}
    body["sla_hours"] = {"yellow": 1, "orange": 2, "red": 4}
    ok(api.put("/api/v1/rules/refund_policy", json=body))
    case = _review_case(api, "SLA-3")
    negotiating = act(api, case["id"], "negotiate", options=[{"id": "half", "kind": "partial_refund", "percent": 50}])
    assert negotiating["sla"]["next_at"] is None
    clock.advance(hours=5)
    assert _check(hub) == 0
    assert ok(api.get(f"{CASES}/{case['id']}"))["sla"]["level"] == "none"
    other = _review_case(api, "SLA-4")
    assert other["sla"]["due"]["red"] == "2026-11-21T11:00:00.000000Z"
    clock.advance(hours=2)
    assert _check(hub) == 1
    assert ok(api.get(f"{CASES}/{other['id']}"))["sla"]["level"] == "orange"

"""The refund policy sandbox (DESIGN.md §4) on SQLite and PostgreSQL: a proposed policy is
replayed on the facts stored cases were decided on; the report says, per rule, how many
decisions would change, with example cases, and nothing is stored or changed."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient

from orderhub.domain.time import FixedClock
from tests.integration.aftersale.helpers import CASES, ok, open_case, order, problem

SANDBOX = "/api/v1/rules/refund_policy/sandbox"


def _default_body(api: TestClient) -> dict[str, Any]:
    body: dict[str, Any] = ok(api.get("/api/v1/rules/refund_policy"))["body"]
    return body


def test_a_proposed_policy_is_replayed_on_the_stored_decisions(api: TestClient, clock: FixedClock) -> None:
    cheap = [open_case(api, order(api, f"WEB-P{n}")["id"], amount="10.00") for n in range(3)]  # unshipped_auto
    big = order(api, "WEB-BIG", lines=[{"sku": "TEA-009", "title": "礼盒", "quantity": 1, "unit_price": "500.00"}])
    over = open_case(api, big["id"])  # 500.00 unshipped: above the 300.00 threshold → default review
    delivered = order(api, "WEB-D1", stage="delivered")
    clock.advance(hours=1)
    quiet = open_case(api, delivered["id"], reason="changed_mind")  # within 24 h → negotiate
    assert [c["decision"]["rule"] for c in (*cheap, over, quiet)] == [
        "unshipped_auto"] * 3 + ["default", "quiet_period_after_delivery"]
    before = ok(api.get(CASES, params={"include_closed": True}))["items"]

    # The same policy changes nothing.
    same = ok(api.post(SANDBOX, json=_default_body(api)))
    assert (same["cases"], same["changed"], same["changes"]) == (5, 0, [])

    # Raise the threshold to 600.00 and drop the quiet period.
    proposed = copy.deepcopy(_default_body(api))
    proposed["params"]["auto_approve_max_minor"] = 60000
    proposed["rules"] = [r for r in proposed["rules"] if r["name"] != "quiet_period_after_delivery"]
    report = ok(api.post(SANDBOX, json=proposed))
    assert report["cases"] == 5 and report["changed"] == 2
    changes = {(c["from"]["rule"], c["to"]["rule"]): c for c in report["changes"]}
    assert changes[("default", "unshipped_auto")]["examples"] == [over["id"]]
    assert changes[("default", "unshipped_auto")]["to"]["action"] == "auto_approve"
    assert changes[("quiet_period_after_delivery", "default")]["examples"] == [quiet["id"]]
    rules = {r["rule"]: r for r in report["rules"]}
    assert rules["unshipped_auto"] == {"rule": "unshipped_auto", "before": 3, "after": 4, "difference": 1}
    assert ok(api.post(SANDBOX, params={"limit": 2}, json=proposed))["cases"] == 2

    # Nothing was stored or changed: same cases, same versions, the policy still version 0.
    assert ok(api.get(CASES, params={"include_closed": True}))["items"] == before
    assert ok(api.get("/api/v1/rules/refund_policy"))["version"] == 0


def test_a_broken_proposal_or_another_kind_is_refused(api: TestClient) -> None:
    proposed = _default_body(api)
    proposed["rules"][0]["when"] = "order.stage == "
    bad = problem(api.post(SANDBOX, json=proposed), 422, "rule_invalid")
    assert bad["field"] == "rules[0].when"
    problem(api.post("/api/v1/rules/order_filters/sandbox", json={"rules": []}), 422, "invalid_input")
    problem(api.post("/api/v1/rules/nope/sandbox", json={}), 404, "unknown_rule_kind")

"""After-sale over the API on SQLite and PostgreSQL (issue 6): every default policy branch
through a real case, partial and line-level amounts never above what was paid, refund-only
never expecting a parcel back, return → restock (sellable and damaged), negotiation, refund
execution through the outbox, the voucher ledger tying out, and the errors."""

from __future__ import annotations

import csv
import io
import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError

from orderhub.adapters.db.aftersale_tables import finance_vouchers
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.domain.errors import RefundExceedsRemaining
from orderhub.domain.time import FixedClock
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.workers.aftersale import RefundRelay
from tests.integration.aftersale.helpers import (
    CASES,
    START,
    act,
    ok,
    open_case,
    order,
    outbox_rows,
    problem,
    run_refunds,
    stock,
)


def test_unshipped_refund_only_is_auto_approved_cancels_the_order_and_posts_a_voucher(
        api: TestClient, hub: OrderHub, relay: RefundRelay) -> None:
    stock(api)
    created = order(api, "WEB-1")
    assert ok(api.get(f"/api/v1/orders/{created['id']}"))["reservations"]
    case = open_case(api, created["id"], amount="119.80")
    assert case["decision"]["action"] == "auto_approve"
    assert case["decision"]["rule"] == "unshipped_auto"
    assert case["status"] == "refunding"
    assert case["return_parcel"] is None  # refund-only: nothing comes back
    # Refunded before shipping: the order is cancelled and its stock released at once.
    detail = ok(api.get(f"/api/v1/orders/{created['id']}"))
    assert detail["status"] == "cancelled"
    assert [r for r in detail["reservations"] if r["status"] == "active"] == []
    assert ok(api.get("/api/v1/inventory/TEA-001/availability"))["totals"]["available"] == 20
    assert [c["id"] for c in detail["aftersales"]] == [case["id"]]
    # The refund leaves through the outbox, once per case.
    rows = outbox_rows(hub, "aftersale_refund")
    assert [r.message_id for r in rows] == [f"refund-{case['id']}"]
    assert run_refunds(relay) == 1
    done = ok(api.get(f"{CASES}/{case['id']}"))
    assert done["status"] == "refunded"
    assert done["refunded"] == {"amount": 11980, "currency": "CNY"}
    assert done["refund"]["ref"] == f"SIMPAY-RF-{case['id']}"
    assert len(done["vouchers"]) == 1
    voucher = done["vouchers"][0]
    assert voucher["debit"] == "sales_returns" and voucher["credit"] == "clearing:own_site"
    assert voucher["amount"] == {"amount": 11980, "currency": "CNY"}
    assert {"refund_only", "own-site", "auto-approved"} <= set(voucher["tags"])
    assert run_refunds(relay) == 0  # nothing left to send: no second refund
    assert ok(api.get("/api/v1/finance/tie-out"))["ties_out"] is True
    metrics = api.get("/metrics").text
    assert 'orderhub_aftersale_decisions_total{action="auto_approve",rule="unshipped_auto",type="refund_only"} 1.0' \
        in metrics
    assert 'orderhub_aftersale_refunds_total{channel="own_site",via="gateway"} 1.0' in metrics
    timeline = ok(api.get(f"/api/v1/orders/{created['id']}/timeline"))
    assert timeline["verified"] is True
    actions = [i["action"] for i in timeline["items"]]
    assert "aftersale.requested" in actions and "aftersale.refunded" in actions


def test_partial_and_line_level_refunds_never_exceed_what_was_paid(api: TestClient) -> None:
    created = order(api, "WEB-2", stage="delivered", lines=[
        {"sku": "TEA-001", "title": "龙井", "quantity": 2, "unit_price": "59.90"},
        {"sku": "TEA-002", "title": "碧螺春", "quantity": 1, "unit_price": "30.00"}])
    # Delivered, not a no-reason reason, not a trusted buyer: the default puts it in review.
    first = open_case(api, created["id"], reason="not_as_described", amount="50.00")
    assert first["decision"]["action"] == "manual_review" and first["decision"]["rule"] == "default"
    assert first["amount"]["amount"] == 5000
    line = open_case(api, created["id"], reason="not_as_described", lines=[{"sku": "TEA-001", "quantity": 1}])
    assert line["amount"]["amount"] == 5990
    assert line["lines"] == [{"line_no": 1, "sku": "TEA-001", "quantity": 1,
                              "amount": {"amount": 5990, "currency": "CNY"}}]
    # 149.80 paid, 50.00 + 59.90 claimed: 39.90 left.
    base = {"order_id": created["id"], "type": "refund_only", "reason": "not_as_described"}
    too_much = problem(api.post(CASES, json={**base, "amount": "39.91"}), 422, "refund_exceeds_remaining")
    assert too_much["remaining"] == 3990 and too_much["field"] == "amount"
    over_line = problem(api.post(CASES, json={**base, "lines": [{"sku": "TEA-002", "quantity": 2}]}), 422,
                        "invalid_aftersale")
    assert over_line["field"] == "lines[0].quantity"
    not_on_order = problem(api.post(CASES, json={**base, "lines": [{"sku": "NOPE", "quantity": 1}]}), 422,
                           "invalid_aftersale")
    assert not_on_order["field"] == "lines[0].sku"
    rest = open_case(api, created["id"], reason="not_as_described")  # no amount: what is left
    assert rest["amount"]["amount"] == 3990
    problem(api.post(CASES, json={"order_id": created["id"], "type": "refund_only", "reason": "not_as_described",
                                  "amount": "0.01"}), 422, "refund_exceeds_remaining")
    # A rejected case gives its amount back.
    act(api, first["id"], "reject", reason="photos show no damage")
    again = open_case(api, created["id"], reason="not_as_described", amount="50.00")
    assert again["amount"]["amount"] == 5000


def test_manual_review_approved_through_the_api(api: TestClient, relay: RefundRelay) -> None:
    created = order(api, "WEB-3", stage="shipped")
    case = open_case(api, created["id"], reason="not_as_described", amount="20.00")
    assert case["status"] == "requested" and case["queue"] == "after_sale"
    assert case["allowed_actions"] == ["approve", "reject", "negotiate", "cancel", "assign"]
    stale = problem(api.post(f"{CASES}/{case['id']}/actions", json={"action": "approve", "expected_version": 99}),
                    409, "aftersale_version_mismatch")
    assert stale["current_version"] == case["version"]
    approved = act(api, case["id"], "approve", amount="15.00", expected_version=case["version"])
    assert approved["status"] == "refunding" and approved["amount"]["amount"] == 1500
    run_refunds(relay)
    done = ok(api.get(f"{CASES}/{case['id']}"))
    assert done["status"] == "refunded"
    assert "manual-approved" in done["vouchers"][0]["tags"]
    refused = problem(api.post(f"{CASES}/{case['id']}/actions", json={"action": "approve"}), 409,
                      "action_not_allowed")
    assert refused["allowed"] == []
    unknown = problem(api.post(f"{CASES}/{case['id']}/actions", json={"action": "launch"}), 409,
                      "action_not_allowed")
    assert "approve" in unknown["allowed"]


def test_return_refund_restocks_sellable_units_and_counts_damaged_ones(
        api: TestClient, relay: RefundRelay) -> None:
    stock(api)
    created = order(api, "WEB-4", stage="delivered")
    case = open_case(api, created["id"], "return_refund", reason="wrong_size")
    assert case["status"] == "requested"
    approved = act(api, case["id"], "approve")
    assert approved["status"] == "awaiting_return"
    assert approved["return_parcel"]["status"] == "expected"
    assert approved["return_parcel"]["lines"][0]["sku"] == "TEA-001"
    shipped = act(api, case["id"], "return_shipped", carrier="sf", waybill_no="SF1234567890")
    assert shipped["return_parcel"]["waybill_no"] == "SF1234567890"
    before = ok(api.get("/api/v1/inventory/TEA-001/availability"))["totals"]["on_hand"]
    wrong = problem(api.post(f"{CASES}/{case['id']}/actions", json={
        "action": "receive_return", "warehouse": "HZ1", "received": [{"sku": "TEA-001", "quantity": 3}]}),
        422, "invalid_input")
    assert wrong["field"] == "received[0].quantity"
    received = act(api, case["id"], "receive_return", warehouse="HZ1", received=[
        {"sku": "TEA-001", "quantity": 1, "condition": "sellable"},
        {"sku": "TEA-001", "quantity": 1, "condition": "damaged"}])
    assert received["status"] == "refunding"
    after = ok(api.get("/api/v1/inventory/TEA-001/availability"))["totals"]["on_hand"]
    assert after == before + 1
    assert ok(api.get("/api/v1/inventory/damaged"))["items"] == [
        {"warehouse": "HZ1", "sku": "TEA-001", "quantity": 1, "updated_at": received["updated_at"]}]
    kinds = [m["kind"] for m in ok(api.get("/api/v1/inventory/HZ1/TEA-001/movements"))["items"]]
    assert "return" in kinds and "return_damaged" in kinds
    run_refunds(relay)
    assert ok(api.get(f"{CASES}/{case['id']}"))["status"] == "refunded"


def test_quiet_period_negotiates_and_the_buyers_choice_applies(api: TestClient, relay: RefundRelay,
                                                               clock: FixedClock) -> None:
    created = order(api, "WEB-5", stage="delivered")
    clock.advance(hours=2)
    case = open_case(api, created["id"], reason="changed_mind")
    assert case["decision"]["rule"] == "quiet_period_after_delivery"
    assert case["status"] == "negotiating"
    assert {o["id"] for o in case["options"]} == {"half", "reship", "points"}
    problem(api.post(f"{CASES}/{case['id']}/actions", json={"action": "choose", "option": "gold"}), 409,
            "action_not_allowed")
    chosen = act(api, case["id"], "choose", option="half")
    assert chosen["status"] == "refunding" and chosen["amount"]["amount"] == 5990
    run_refunds(relay)
    done = ok(api.get(f"{CASES}/{case['id']}"))
    assert "negotiated" in done["vouchers"][0]["tags"]
    # After the quiet period the same request from an unknown buyer goes to review.
    later = order(api, "WEB-6", stage="delivered")
    clock.advance(hours=25)
    assert open_case(api, later["id"], reason="changed_mind")["decision"]["rule"] == "default"


def test_refund_only_never_creates_a_return_parcel(api: TestClient, relay: RefundRelay) -> None:
    created = order(api, "WEB-7", stage="delivered")
    case = open_case(api, created["id"], reason="not_received")
    act(api, case["id"], "approve")
    run_refunds(relay)
    done = ok(api.get(f"{CASES}/{case['id']}"))
    assert done["status"] == "refunded" and done["return_parcel"] is None
    assert ok(api.get("/api/v1/shipments", params={"order_id": created["id"]}))["items"] == []
    assert "receive_return" not in done["allowed_actions"]


def test_bad_requests_are_refused_with_nothing_written(api: TestClient, relay: RefundRelay) -> None:
    problem(api.post(CASES, json={"order_id": "ord_missing", "type": "refund_only", "reason": "x"}), 404,
            "order_not_found")
    created = order(api, "WEB-8")
    bad_type = problem(api.post(CASES, json={"order_id": created["id"], "type": "gift", "reason": "x"}), 422,
                       "invalid_input")
    assert bad_type["field"] == "type"
    unpaid = order(api, "WEB-9", status="pending_payment", paid_at=None)
    problem(api.post(CASES, json={"order_id": unpaid["id"], "type": "refund_only", "reason": "x"}), 422,
            "invalid_aftersale")
    problem(api.post(CASES, json={"order_id": created["id"], "type": "price_protection", "reason": "price_drop"}),
            422, "invalid_aftersale")
    # Cancelled and refunded in full: nothing more to refund.
    open_case(api, created["id"], amount="119.80")
    run_refunds(relay)
    done = problem(api.post(CASES, json={"order_id": created["id"], "type": "refund_only", "reason": "x"}), 422,
                   "invalid_aftersale")
    assert "refunded in full" in done["detail"]
    assert len(ok(api.get(CASES, params={"include_closed": True}))["items"]) == 1


def test_vouchers_export_as_csv_and_tie_out_to_the_cases(api: TestClient, relay: RefundRelay) -> None:
    totals = 0
    for n, amount in enumerate(("10.00", "20.50", "7.25")):
        created = order(api, f"WEB-C{n}", stage="shipped")
        case = open_case(api, created["id"], reason="not_as_described", amount=amount)
        act(api, case["id"], "approve")
        totals += int(amount.replace(".", ""))
    run_refunds(relay)
    response = api.get("/api/v1/finance/vouchers", params={"format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 3
    assert sum(int(r["amount"].replace(".", "")) for r in rows) == totals
    assert {r["credit"] for r in rows} == {"clearing:own_site"}
    tie = ok(api.get("/api/v1/finance/tie-out"))
    assert tie["ties_out"] is True
    assert tie["currencies"] == [{"currency": "CNY", "vouchers": {"amount": totals, "currency": "CNY"},
                                  "voucher_count": 3, "refunded_cases": {"amount": totals, "currency": "CNY"},
                                  "case_count": 3, "difference": {"amount": 0, "currency": "CNY"}}]
    tagged = ok(api.get("/api/v1/finance/vouchers", params={"tag": "manual-approved"}))["items"]
    assert len(tagged) == 3


def test_the_voucher_ledger_is_append_only_in_the_database(api: TestClient, hub: OrderHub,
                                                           relay: RefundRelay) -> None:
    created = order(api, "WEB-L1", stage="shipped")
    act(api, open_case(api, created["id"], reason="not_as_described", amount="5.00")["id"], "approve")
    run_refunds(relay)
    for statement in (update(finance_vouchers).values(amount_minor=1), delete(finance_vouchers)):
        with hub.engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(statement)
    assert len(ok(api.get("/api/v1/finance/vouchers"))["items"]) == 1


def test_exchange_and_reship_send_a_zero_priced_replacement_through_fulfillment(api: TestClient) -> None:
    stock(api)
    created = order(api, "WEB-X1", stage="delivered")
    exchange = open_case(api, created["id"], "exchange", reason="wrong_size", lines=[{"sku": "TEA-001", "quantity": 1}])
    assert exchange["amount"]["amount"] == 0
    act(api, exchange["id"], "approve")
    received = act(api, exchange["id"], "receive_return", warehouse="HZ1",
                   received=[{"sku": "TEA-001", "quantity": 1, "condition": "sellable"}])
    assert (received["status"], received["allowed_actions"]) == ("return_received", ["send_replacement"])
    resolved = act(api, exchange["id"], "send_replacement")
    assert resolved["status"] == "resolved" and resolved["refunded"]["amount"] == 0
    [replacement] = [o for o in ok(api.get("/api/v1/orders", params={"q": f"RPL-{exchange['id']}"}))["items"]]
    detail = ok(api.get(f"/api/v1/orders/{replacement['id']}"))
    assert (detail["status"], detail["total"]["amount"]) == ("paid", 0)
    assert {"replacement", f"case:{exchange['id']}"} <= set(detail["tags"])
    assert [(r["sku"], r["quantity"], r["status"]) for r in detail["reservations"]] == [("TEA-001", 1, "active")]
    reship = open_case(api, created["id"], "reship", reason="missing_item", lines=[{"sku": "TEA-001", "quantity": 1}])
    approved = act(api, reship["id"], "approve")
    assert approved["status"] == "approved" and approved["return_parcel"] is None
    assert act(api, reship["id"], "send_replacement")["status"] == "resolved"
    refund = open_case(api, created["id"], reason="not_as_described", amount="1.00")
    act(api, refund["id"], "approve")
    problem(api.post(f"{CASES}/{refund['id']}/actions", json={"action": "send_replacement"}), 409,
            "action_not_allowed")


def test_trusted_buyers_are_refunded_at_once_and_a_dispute_ends_the_trust(api: TestClient) -> None:
    long_ago = (START - timedelta(days=200)).isoformat()
    buyer = {"name": "老顾客", "phone": "137****2468", "email": None}
    order(api, "WEB-T0", buyer=buyer, placed_at=long_ago, paid_at=long_ago)  # the first order, months ago
    for n in range(1, 60):  # a regular: 60 orders, no refund
        order(api, f"WEB-T{n}", buyer=buyer)
    delivered = order(api, "WEB-T60", stage="delivered", buyer=buyer,
                      lines=[{"sku": "TEA-009", "title": "大红袍礼盒", "quantity": 2, "unit_price": "999.00"}])
    trusted = open_case(api, delivered["id"], reason="not_as_described", amount="20.00")
    assert trusted["decision"]["rule"] == "trusted_customer_auto" and trusted["status"] == "refunding"
    # A stranger with the same request waits for review.
    stranger = order(api, "WEB-S1", stage="delivered", buyer={"name": "新买家", "phone": "136****0000"})
    assert open_case(api, stranger["id"], reason="not_as_described", amount="20.00")["decision"]["rule"] == "default"
    # Above the trusted limit (1,000.00) even a regular waits; refused, it becomes a dispute…
    refused = open_case(api, delivered["id"], reason="not_as_described", amount="1500.00")
    assert refused["decision"]["rule"] == "default"
    act(api, refused["id"], "reject", reason="already refunded for this")
    # …and a dispute ends the trust: the next small request waits too.
    again = open_case(api, delivered["id"], reason="not_as_described", amount="5.00")
    assert again["decision"]["rule"] == "default"


def test_concurrent_requests_on_one_order_never_refund_more_than_was_paid(api: TestClient, hub: OrderHub,
                                                                         tenant: IssuedKey) -> None:
    created = order(api, "WEB-RACE", stage="shipped")  # 119.80 paid
    actor = commands.Actor(tenant_id=tenant.tenant_id, actor="test", source="test")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def request() -> None:
        barrier.wait()
        try:
            hub.bus.handle(commands.RequestAfterSale(actor=actor, order_id=created["id"], type="refund_only",
                                                     reason="not_as_described", amount="50.00"))
            outcomes.append("opened")
        except RefundExceedsRemaining:
            outcomes.append("refused")

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["opened", "opened", "refused", "refused"]
    cases = ok(api.get(CASES, params={"order_id": created["id"]}))["items"]
    assert sum(c["amount"]["amount"] for c in cases) == 10000


def test_a_retried_request_with_its_idempotency_key_opens_one_case(api: TestClient) -> None:
    created = order(api, "WEB-IK", stage="shipped")
    body = {"order_id": created["id"], "type": "refund_only", "reason": "not_as_described", "amount": "30.00"}
    first = ok(api.post(CASES, json=body, headers={"Idempotency-Key": "rma-1"}), 201)
    again = ok(api.post(CASES, json=body, headers={"Idempotency-Key": "rma-1"}), 200)
    assert again["id"] == first["id"]
    reused = problem(api.post(CASES, json={**body, "amount": "31.00"}, headers={"Idempotency-Key": "rma-1"}),
                     409, "idempotency_key_reused")
    assert reused["case_id"] == first["id"]
    assert len(ok(api.get(CASES, params={"order_id": created["id"]}))["items"]) == 1
    # A refused request claims nothing: the key stays free for the corrected one.
    problem(api.post(CASES, json={**body, "amount": "500.00"}, headers={"Idempotency-Key": "rma-2"}), 422,
            "refund_exceeds_remaining")
    ok(api.post(CASES, json=body, headers={"Idempotency-Key": "rma-2"}), 201)

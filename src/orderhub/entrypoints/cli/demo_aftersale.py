"""The demo's third act: after-sale. Buyers ask for their money back on orders of the second
act and on a new one; the default refund policy decides each at once (the rule that fired
is on the case), the workers execute the refunds through the outbox, a returned parcel is
scanned back into stock, one case waits in the review queue with its SLA clock running,
and every refund is a voucher that ties out to the cases.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

WAIT = 60.0


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url.path} answered "
                           f"{response.status_code}: {response.text[:300]}")
    return response.json()


def _wait_status(client: httpx.Client, case_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while True:
        case: dict[str, Any] = _ok(client.get(f"/api/v1/aftersales/{case_id}"))
        if case["status"] == status:
            return case
        if time.monotonic() > deadline:
            raise RuntimeError(f"case {case_id} did not become {status} within {WAIT:.0f} s (it is "
                               f"{case['status']}); see `orderhub outbox status`")
        time.sleep(0.2)


def _new_paid_order(client: httpx.Client, sku: str, title: str, price: str) -> str:
    now = datetime.now(UTC)
    external_id = f"DEMO-R{now.strftime('%H%M%S%f')}"
    created = _ok(client.post("/api/v1/orders", headers={"Idempotency-Key": external_id}, json={
        "external_id": external_id, "channel": "own_site", "shop": "main", "currency": "CNY", "status": "paid",
        "placed_at": (now - timedelta(minutes=3)).isoformat(), "paid_at": (now - timedelta(minutes=2)).isoformat(),
        "buyer": {"name": "退款演示买家", "phone": "139****1111"},
        "shipping_address": {"country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
                             "detail": "演示路 99 号", "name": "退款演示买家", "phone": "139****1111"},
        "lines": [{"sku": sku, "title": title, "quantity": 1, "unit_price": price}]}))
    order_id: str = created["id"]
    return order_id


def run_aftersale(client: httpx.Client, fulfillment: dict[str, Any], warehouse: str) -> dict[str, Any]:
    """Open and settle after-sale cases against the running server; returns a summary read back from it."""
    cases: list[str] = []
    # 1. Changed their mind before it shipped: auto-approved, the order stops, the refund goes out.
    unshipped = _new_paid_order(client, "CUP-GLASS", "玻璃杯", "39.00")
    quick = _ok(client.post("/api/v1/aftersales", json={"order_id": unshipped, "type": "refund_only",
                                                        "reason": "changed_mind"}))
    cases.append(quick["id"])
    _wait_status(client, quick["id"], "refunded")
    # 2. A delivered parcel comes back: reviewed, approved, scanned in, refunded.
    delivered = [oid for oid in fulfillment["order_ids"]
                 if _ok(client.get(f"/api/v1/orders/{oid}"))["status"] == "delivered"]
    returned_id = None
    if delivered:
        ret = _ok(client.post("/api/v1/aftersales", json={
            "order_id": delivered[0], "type": "return_refund", "reason": "wrong_size",
            "lines": [{"sku": "CUP-GLASS", "quantity": 1}]}))
        returned_id = ret["id"]
        cases.append(ret["id"])
        if ret["status"] == "requested":
            _ok(client.post(f"/api/v1/aftersales/{ret['id']}/actions", json={"action": "approve"}))
        _ok(client.post(f"/api/v1/aftersales/{ret['id']}/actions", json={
            "action": "return_shipped", "carrier": "sf", "waybill_no": "SF-RETURN-0001"}))
        _ok(client.post(f"/api/v1/aftersales/{ret['id']}/actions", json={
            "action": "receive_return", "warehouse": warehouse,
            "received": [{"sku": "CUP-GLASS", "quantity": 1, "condition": "sellable"}]}))
        _wait_status(client, ret["id"], "refunded")
    # 3. "Never arrived" on a parcel still travelling: waits for a person, SLA clock running.
    travelling = [oid for oid in fulfillment["order_ids"]
                  if _ok(client.get(f"/api/v1/orders/{oid}"))["status"] == "shipped"]
    if travelling:
        review = _ok(client.post("/api/v1/aftersales", json={"order_id": travelling[0], "type": "refund_only",
                                                             "reason": "not_received", "amount": "20.00"}))
        cases.append(review["id"])
    final = [_ok(client.get(f"/api/v1/aftersales/{cid}")) for cid in cases]
    tie = _ok(client.get("/api/v1/finance/tie-out"))
    vouchers = _ok(client.get("/api/v1/finance/vouchers"))["items"]
    return {
        "cases": len(final),
        "statuses": dict(Counter(c["status"] for c in final)),
        "rules": {c["id"]: (c["decision"] or {}).get("rule") for c in final},
        "vouchers": len(vouchers),
        "refunded_minor": sum(v["amount"]["amount"] for v in vouchers),
        "ties_out": tie["ties_out"],
        "queue": len(_ok(client.get("/api/v1/aftersales"))["items"]),
        "returned_case": returned_id,
        "sample_case": cases[0],
    }


def aftersale_line(f: dict[str, Any]) -> str:
    """One summary line for the demo panel."""
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(f["statuses"].items()))
    tie = "ties out" if f["ties_out"] else "DOES NOT tie out"
    return (f"{f['cases']} cases ({statuses}); {f['vouchers']} vouchers, "
            f"{f['refunded_minor'] / 100:.2f} CNY refunded, ledger {tie}; {f['queue']} waiting in the queue")

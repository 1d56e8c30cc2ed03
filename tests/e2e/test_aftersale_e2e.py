"""End to end, issue 6: a real ``orderhub serve`` process (API + workers) on SQLite and on
PostgreSQL.

1. A Taobao buyer asks for a refund: the signed refund message arrives on the channel
   webhook over HTTP, the inbox worker opens the case, the default policy auto-approves it
   (unshipped, under the threshold), the refund relay agrees the refund on Taobao (the
   simulated channel over real HTTP) and the voucher is posted.
2. A request on a shipped order goes to manual review and is approved through the API;
   the refund goes out through the payment gateway and the ledger ties out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from orderhub.adapters.channels.signatures import sign
from orderhub.simulation.channel_payloads import RENDERERS, Line, Seed, aftersale_payload
from orderhub.simulation.fake_channel import FakeChannel
from tests.e2e.test_cli_and_server import Server
from tests.e2e.test_fulfillment_e2e import eventually, ok

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

APP_SECRET = "e2e-taobao-app-secret"
TID = "2231958349221032771"


@pytest.fixture
def taobao() -> Iterator[FakeChannel]:
    with FakeChannel(app_secret=APP_SECRET) as fake:
        yield fake


def _push_taobao(server: Server, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    raw = json.dumps(body, ensure_ascii=False).encode()
    signed = sign("top", body=raw, secret=APP_SECRET, url="") | headers
    answer: dict[str, Any] = ok(httpx.post(f"{server.url}/webhooks/taobao/tb-1", content=raw, headers=signed,
                                           timeout=10), 202)
    return answer


def _case_status(api: httpx.Client, case_id: str, status: str) -> dict[str, Any] | None:
    case: dict[str, Any] = ok(api.get(f"/api/v1/aftersales/{case_id}"))
    return case if case["status"] == status else None


def test_channel_refund_event_is_auto_approved_refunded_on_the_channel_and_booked(
        world: tuple[Server, httpx.Client], taobao: FakeChannel) -> None:
    server, api = world
    ok(api.post("/api/v1/shops", json={
        "code": "tb-1", "channel": "taobao", "name": "西湖茶社旗舰店", "secret": APP_SECRET,
        "timezone": "Asia/Shanghai",
        "settings": {"api_base_url": taobao.base_url, "access_token": taobao.access_token,
                     "app_key": taobao.app_key}}), 201)
    now = datetime.now(UTC).replace(microsecond=0)
    seed = Seed(channel="taobao", index=1, external_id=TID, placed=now - timedelta(minutes=20),
                paid=now - timedelta(minutes=19), lines=[Line("TEA-001", "龙井 250g", 2, Decimal("59.90"))],
                shipping=Decimal("0"), name="王小明", phone="138****5678", email=None,
                place=("浙江省", "杭州市", "西湖区", "310000"), street="文三路 90 号", payment="alipay")
    body, headers = RENDERERS["taobao"](seed, "paid", now - timedelta(minutes=18))
    _push_taobao(server, body, headers)

    def paid_order() -> dict[str, Any] | None:
        items = ok(api.get("/api/v1/orders", params={"q": TID}))["items"]
        return dict(items[0]) if items and items[0]["status"] == "paid" else None

    order = eventually(server, "the Taobao trade became a paid order", paid_order)

    # The buyer asks Taobao for 20.00 back; Taobao notifies the shop.
    taobao.open_refund("taobao", "88012345678", TID, 2000)
    body, headers = aftersale_payload("taobao", refund_id="88012345678", order_external_id=TID,
                                      state="requested", amount="20.00", reason="不想要了", updated=now)
    _push_taobao(server, body, headers)

    def opened() -> dict[str, Any] | None:
        items = ok(api.get("/api/v1/aftersales", params={"include_closed": True}))["items"]
        return dict(items[0]) if items else None

    case = eventually(server, "the refund message opened a case", opened)
    assert (case["source"], case["external_ref"], case["order_id"]) == ("channel", "88012345678", order["id"])
    assert case["decision"]["action"] == "auto_approve" and case["decision"]["rule"] == "unshipped_auto"
    done = eventually(server, "the refund was executed and confirmed",
                      lambda: _case_status(api, case["id"], "refunded"))
    assert done["refunded"] == {"amount": 2000, "currency": "CNY"}
    assert [(r["channel"], r["amount"]) for r in taobao.refunds] == [("taobao", 2000)]
    assert taobao.buyer_request("taobao", "88012345678")["status"] == "SUCCESS"  # type: ignore[index]
    [voucher] = done["vouchers"]
    assert voucher["amount"] == {"amount": 2000, "currency": "CNY"} and voucher["credit"] == "clearing:taobao"
    assert {"refund_only", "marketplace", "auto-approved"} <= set(voucher["tags"])
    assert ok(api.get(f"/api/v1/orders/{order['id']}"))["status"] == "paid"  # partial: the order goes on
    timeline = ok(api.get(f"/api/v1/orders/{order['id']}/timeline"))
    assert timeline["verified"] is True
    assert {"aftersale.requested", "aftersale.decided", "aftersale.refunded"} <= {
        i["action"] for i in timeline["items"]}


def test_manual_review_is_approved_through_the_api(world: tuple[Server, httpx.Client]) -> None:
    server, api = world
    now = datetime.now(UTC).replace(microsecond=0)
    created = ok(api.post("/api/v1/orders", json={
        "external_id": "WEB-AS-1", "channel": "own_site", "shop": "main", "currency": "CNY", "status": "paid",
        "placed_at": (now - timedelta(days=2)).isoformat(), "paid_at": (now - timedelta(days=2)).isoformat(),
        "buyer": {"name": "李雷", "phone": "139****0001"},
        "lines": [{"sku": "TEA-001", "title": "龙井 250g", "quantity": 2, "unit_price": "59.90"}]}), 201)
    ok(api.post(f"/api/v1/orders/{created['id']}/events", json={"type": "ship"}))
    case = ok(api.post("/api/v1/aftersales", json={"order_id": created["id"], "type": "refund_only",
                                                   "reason": "not_as_described", "amount": "30.00"}), 201)
    assert case["status"] == "requested" and case["decision"]["action"] == "manual_review"
    queue = ok(api.get("/api/v1/aftersales"))["items"]
    assert [c["id"] for c in queue] == [case["id"]]
    approved = ok(api.post(f"/api/v1/aftersales/{case['id']}/actions",
                           json={"action": "approve", "expected_version": case["version"]}))
    assert approved["status"] == "refunding"
    done = eventually(server, "the approved refund went out", lambda: _case_status(api, case["id"], "refunded"))
    assert done["refund"]["ref"] == f"SIMPAY-RF-{case['id']}"
    assert "manual-approved" in done["vouchers"][0]["tags"]
    assert ok(api.get("/api/v1/aftersales"))["items"] == []
    tie = ok(api.get("/api/v1/finance/tie-out"))
    assert tie["ties_out"] is True and tie["currencies"][0]["vouchers"]["amount"] == 3000
    csv_text = api.get("/api/v1/finance/vouchers", params={"format": "csv"}).text
    assert csv_text.splitlines()[1].split(",")[8] == "30.00"

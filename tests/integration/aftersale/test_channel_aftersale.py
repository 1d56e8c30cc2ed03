"""Channel after-sale notifications on SQLite and PostgreSQL (issue 6 §1): signed webhooks of
Taobao, Douyin, Pinduoduo and Shopify go through the inbox and the normalizer onto the same
AfterSaleCase; the refund OrderHub decides is executed on the channel (the simulated channel
over real HTTP), a refund the channel already executed is booked without sending another."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from orderhub.adapters.channels.signatures import sign
from orderhub.bootstrap import OrderHub
from orderhub.service_layer.normalizer import Normalizer
from orderhub.simulation.channel_payloads import RENDERERS, Line, Seed, aftersale_payload
from orderhub.simulation.fake_channel import FakeChannel
from orderhub.workers.aftersale import RefundRelay
from tests.integration.aftersale.helpers import CASES, START, ok, outbox_rows, run_refunds

APP_SECRET = "app-secret-0123456789"
SPEC_SIGNATURES = {"taobao": "top", "douyin": "douyin", "pinduoduo": "pinduoduo", "shopify": "shopify"}


@pytest.fixture
def fake() -> Iterator[FakeChannel]:
    with FakeChannel(app_secret=APP_SECRET) as server:
        yield server


@pytest.fixture
def channel_relay(hub: OrderHub) -> Iterator[RefundRelay]:
    with httpx.Client(timeout=10) as http:
        worker = RefundRelay(hub, http_client=http)
        yield worker


def _shop(api: TestClient, fake: FakeChannel, channel: str) -> None:
    ok(api.post("/api/v1/shops", json={
        "code": f"{channel}-1", "channel": channel, "name": channel, "secret": APP_SECRET,
        "timezone": "Asia/Shanghai" if channel != "shopify" else "America/New_York",
        "settings": {"api_base_url": fake.base_url, "access_token": fake.access_token, "app_key": fake.app_key}}),
       201)


def _push(api: TestClient, hub: OrderHub, channel: str, body: dict[str, Any], headers: dict[str, str],
          fake_app_key: str = "ck-fake") -> dict[str, Any]:
    import json  # noqa: PLC0415

    raw = json.dumps(body, ensure_ascii=False).encode()
    spec = hub.specs.get(channel)
    signed = sign(spec.signature, body=raw, secret=APP_SECRET, url="", app_key=fake_app_key,
                  header=spec.signature_header) | headers
    return ok(api.post(f"/webhooks/{channel}/{channel}-1", content=raw, headers=signed), 202)


def _drain(hub: OrderHub) -> Any:
    return Normalizer(hub.uow_factory, specs=hub.specs, clock=hub.clock, metrics=hub.metrics, worker_id="t",
                      refund_policies=hub.refund_policies).drain()


def _order(api: TestClient, hub: OrderHub, channel: str, external_id: str) -> dict[str, Any]:
    seed = Seed(channel=channel, index=1, external_id=external_id, placed=START - timedelta(hours=1),
                paid=START - timedelta(minutes=50), lines=[Line("TEA-001", "龙井", 2, Decimal("59.90"))],
                shipping=Decimal("0"), name="王小明", phone="138****5678", email=None,
                place=("浙江省", "杭州市", "西湖区", "310000"), street="文三路 90 号",
                payment="1" if channel == "douyin" else "alipay")
    body, headers = RENDERERS[channel](seed, "paid", START - timedelta(minutes=40))
    _push(api, hub, channel, body, headers)
    _drain(hub)
    items = ok(api.get("/api/v1/orders", params={"channel": channel}))["items"]
    [found] = [o for o in items if o["external_id"] == external_id]
    return dict(found)


def _case_by_ref(api: TestClient, ref: str) -> dict[str, Any]:
    [found] = [c for c in ok(api.get(CASES, params={"include_closed": True}))["items"] if c["external_ref"] == ref]
    return dict(found)


def test_taobao_refund_request_is_auto_approved_executed_on_taobao_and_booked_once(
        api: TestClient, hub: OrderHub, fake: FakeChannel, channel_relay: RefundRelay) -> None:
    _shop(api, fake, "taobao")
    order = _order(api, hub, "taobao", "2231958349221032771")
    assert order["status"] == "paid"
    fake.open_refund("taobao", "88012345678", "2231958349221032771", 1000)
    body, headers = aftersale_payload("taobao", refund_id="88012345678", order_external_id="2231958349221032771",
                                      state="requested", amount="10.00", updated=START)
    first = _push(api, hub, "taobao", body, headers)
    assert _push(api, hub, "taobao", body, headers)["duplicate"] is True  # a channel retry: stored once
    report = _drain(hub)
    assert report.applied == 1
    case = _case_by_ref(api, "88012345678")
    assert first["status"] == "accepted"
    assert (case["type"], case["status"], case["source"]) == ("refund_only", "refunding", "channel")
    assert case["decision"]["rule"] == "unshipped_auto"
    assert case["amount"] == {"amount": 1000, "currency": "CNY"}
    # A partial refund: the order goes on (only a refund of everything left stops it).
    assert ok(api.get(f"/api/v1/orders/{order['id']}"))["status"] == "paid"
    assert run_refunds(channel_relay) == 1
    assert [(r["channel"], r["amount"]) for r in fake.refunds] == [("taobao", 1000)]
    done = ok(api.get(f"{CASES}/{case['id']}"))
    assert done["status"] == "refunded" and done["refund"]["via"] == "gateway"
    assert {"marketplace", "auto-approved", "refund_only"} <= set(done["vouchers"][0]["tags"])
    # Taobao then reports the refund done: nothing more happens.
    body, headers = aftersale_payload("taobao", refund_id="88012345678", order_external_id="2231958349221032771",
                                      state="refunded", amount="10.00", updated=START + timedelta(minutes=1))
    _push(api, hub, "taobao", body, headers)
    _drain(hub)
    again = ok(api.get(f"{CASES}/{case['id']}"))
    assert again["status"] == "refunded" and len(again["vouchers"]) == 1
    assert len(fake.refunds) == 1
    assert ok(api.get("/api/v1/finance/tie-out"))["ties_out"] is True


def test_shopify_refund_already_executed_is_booked_without_sending_another(
        api: TestClient, hub: OrderHub, fake: FakeChannel) -> None:
    _shop(api, fake, "shopify")
    order = _order(api, hub, "shopify", "820982911946")
    body, headers = aftersale_payload("shopify", refund_id="509562969", order_external_id="820982911946",
                                      state="refunded", amount="25.00", type="return_refund",
                                      lines=[("TEA-001", 1)], currency=order["total"]["currency"], updated=START)
    _push(api, hub, "shopify", body, headers)
    _drain(hub)
    case = _case_by_ref(api, "509562969")
    assert (case["type"], case["status"]) == ("return_refund", "refunded")
    assert case["decision"]["rule"] == "channel"
    detail = ok(api.get(f"{CASES}/{case['id']}"))
    assert detail["vouchers"][0]["amount"]["amount"] == 2500
    assert "channel-settled" in detail["vouchers"][0]["tags"]
    assert outbox_rows(hub, "aftersale_refund") == []  # nothing to send: Shopify already refunded
    assert fake.refunds == []


def test_douyin_return_is_reviewed_the_buyer_ships_it_back_and_a_withdrawal_closes_another(
        api: TestClient, hub: OrderHub, fake: FakeChannel) -> None:
    _shop(api, fake, "douyin")
    _order(api, hub, "douyin", "4962234567890123456")
    body, headers = aftersale_payload("douyin", refund_id="7301234567890", order_external_id="4962234567890123456",
                                      state="requested", amount="59.90", type="return_refund",
                                      reason="尺码不合适", updated=START)
    _push(api, hub, "douyin", body, headers)
    _drain(hub)
    case = _case_by_ref(api, "7301234567890")
    assert case["status"] == "awaiting_return"  # unshipped and under the threshold: approved, goods expected
    body, headers = aftersale_payload("douyin", refund_id="7301234567890", order_external_id="4962234567890123456",
                                      state="return_shipped", amount="59.90", type="return_refund",
                                      return_carrier="中通", return_waybill="ZT7788990011",
                                      updated=START + timedelta(hours=1))
    _push(api, hub, "douyin", body, headers)
    _drain(hub)
    assert _case_by_ref(api, "7301234567890")["return_parcel"]["waybill_no"] == "ZT7788990011"
    body, headers = aftersale_payload("douyin", refund_id="7301234567891", order_external_id="4962234567890123456",
                                      state="requested", amount="5.00", updated=START + timedelta(hours=2))
    _push(api, hub, "douyin", body, headers)
    body, headers = aftersale_payload("douyin", refund_id="7301234567891", order_external_id="4962234567890123456",
                                      state="cancelled", amount="5.00", updated=START + timedelta(hours=3))
    _push(api, hub, "douyin", body, headers)
    _drain(hub)
    # That one was approved at once: the buyer's late withdrawal can't stop a refund in flight.
    assert _case_by_ref(api, "7301234567891")["status"] == "refunding"
    # The return the buyer withdraws is closed.
    body, headers = aftersale_payload("douyin", refund_id="7301234567890", order_external_id="4962234567890123456",
                                      state="cancelled", amount="59.90", type="return_refund",
                                      updated=START + timedelta(hours=4))
    _push(api, hub, "douyin", body, headers)
    _drain(hub)
    withdrawn = _case_by_ref(api, "7301234567890")
    assert withdrawn["status"] == "cancelled" and withdrawn["channel_status"]


def test_pinduoduo_request_above_what_is_left_is_dead_lettered_with_the_reason(
        api: TestClient, hub: OrderHub, fake: FakeChannel) -> None:
    _shop(api, fake, "pinduoduo")
    _order(api, hub, "pinduoduo", "241121-123456789012345")
    body, headers = aftersale_payload("pinduoduo", refund_id="9100001", order_external_id="241121-123456789012345",
                                      state="requested", amount="500.00", updated=START)
    accepted = _push(api, hub, "pinduoduo", body, headers)
    report = _drain(hub)
    assert report.dead == 1
    dead = ok(api.get(f"/api/v1/inbox/{accepted['message_id']}"))
    assert dead["status"] == "dead" and dead["kind"] == "aftersale"
    assert dead["error"]["code"] == "refund_exceeds_remaining" and dead["error"]["field"] == "amount"
    assert "only 119.80 CNY is left" in dead["error"]["detail"]
    assert ok(api.get(CASES, params={"include_closed": True}))["items"] == []

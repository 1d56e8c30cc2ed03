"""Refund execution per channel (``orderhub.adapters.channels.refunds``) against the real
:class:`FakeChannel` over HTTP: one contract every channel with a refund call passes, then
what is particular to each channel.

The contract: a refund is executed and answered with the channel's ref; executing the same
case again (also after the first answer was lost) returns the same ref and never a second
refund; a shop missing a credential can't build the call; 429/503/network are retryable,
a 4xx or the channel's in-body refusal is permanent; amounts are rendered exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest

from orderhub.adapters.channels.refunds import (
    REFUND_CHANNELS,
    RefundAnswer,
    RefundOrder,
    decimal_amount,
    execute_refund,
    read_refund_answer,
    read_refund_lookup,
    refund_lookup_request,
    refund_request,
    simulated_payment_refund,
)
from orderhub.adapters.channels.writeback import ChannelCredentials, ChannelRequest, WriteBackError
from orderhub.domain.errors import InvalidMoney, UnknownCurrency
from orderhub.simulation.fake_channel import FakeChannel

NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
APP_SECRET = "app-secret-0123456789"
CHANNELS = sorted(REFUND_CHANNELS)
SHOPIFY_ORDER_ID = 820982911946


@pytest.fixture
def fake() -> Iterator[FakeChannel]:
    with FakeChannel(app_secret=APP_SECRET) as server:
        yield server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def credentials(fake: FakeChannel, **changes: str) -> ChannelCredentials:
    base = ChannelCredentials(api_base_url=fake.base_url, access_token=fake.access_token, app_key=fake.app_key,
                              secret=APP_SECRET)
    return replace(base, **changes)  # type: ignore[arg-type]


def refund_for(fake: FakeChannel, channel: str, *, amount: int = 1230, asked: int | None = None,
               case_id: str = "as_01J0CASE0001") -> RefundOrder:
    """The channel's refund of ``amount`` CNY/USD minor units, with what the channel needs to
    exist first (the buyer's request of ``asked`` on Taobao and Pinduoduo)."""
    if channel in ("taobao", "pinduoduo"):
        order, ref = (("2231958349221032771", "88012345678") if channel == "taobao"
                      else ("241121-123456789012345", "9100001"))
        fake.open_refund(channel, ref, order, asked if asked is not None else amount)
        return RefundOrder(channel=channel, shop_code="s1", order_external_id=order, case_id=case_id,
                           external_ref=ref, amount=amount, currency="CNY", reason="damaged in transit",
                           lines=(("TEA-001", 1, amount),), return_goods=True)
    order = str(SHOPIFY_ORDER_ID) if channel == "shopify" else "WEB-1001"
    return RefundOrder(channel=channel, shop_code="s1", order_external_id=order, case_id=case_id,
                       external_ref=None, amount=amount, currency="USD", reason="damaged in transit",
                       lines=(("TEA-001", 1, amount),))


def prepare(fake: FakeChannel, http: httpx.Client, refund: RefundOrder) -> ChannelRequest:
    """The refund call, after the read the channel needs (if any) was made."""
    cred = credentials(fake)
    data = None
    lookup = refund_lookup_request(refund, cred, now=NOW)
    if lookup is not None:
        found = read_refund_lookup(refund, lookup.send(http, timeout=5))
        assert found.answer is None
        data = found.data
    request = refund_request(refund, cred, now=NOW, lookup=data)
    assert request is not None
    return request


# --------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("channel", CHANNELS)
def test_refund_is_executed_once_per_case(fake: FakeChannel, http: httpx.Client, channel: str) -> None:
    refund = refund_for(fake, channel)
    first = execute_refund(refund, credentials(fake), http, now=NOW)
    assert first.error is None and first.ref
    assert [(r["channel"], r["order"], r["amount"], r["ref"]) for r in fake.refunds] == [
        (channel, refund.order_external_id, 1230, first.ref)]

    again = execute_refund(refund, credentials(fake), http, now=NOW)
    assert again == first
    assert len(fake.refunds) == 1


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_lost_answer_is_retried_without_a_second_refund(fake: FakeChannel, http: httpx.Client,
                                                          channel: str) -> None:
    refund = refund_for(fake, channel)
    assert prepare(fake, http, refund).send(http, timeout=5).is_success  # executed; pretend the answer never arrived
    retried = execute_refund(refund, credentials(fake), http, now=NOW)
    assert retried.error is None
    assert retried.ref == fake.refunds[0]["ref"]
    assert len(fake.refunds) == 1


@pytest.mark.parametrize(("channel", "blank"), [
    ("shopify", "access_token"), ("shopify", "api_base_url"), ("own_site", "secret"),
    ("taobao", "secret"), ("taobao", "access_token"), ("pinduoduo", "app_key"), ("pinduoduo", "secret"),
])
def test_a_shop_missing_a_credential_cannot_refund(fake: FakeChannel, http: httpx.Client, channel: str,
                                                    blank: str) -> None:
    refund = refund_for(fake, channel)
    cred = credentials(fake, **{blank: ""})
    with pytest.raises(WriteBackError, match=blank):
        execute_refund(refund, cred, http, now=NOW)
    with pytest.raises(WriteBackError, match=blank):
        refund_request(refund, cred, now=NOW, lookup={"order": {}, "refund_version": 1})
    assert fake.refunds == []


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("script", ["fail", "throttle"])
def test_unavailable_and_throttled_are_retryable(fake: FakeChannel, http: httpx.Client, channel: str,
                                                 script: str) -> None:
    refund = refund_for(fake, channel)
    request = prepare(fake, http, refund)
    if script == "fail":
        fake.fail()
    else:
        fake.throttle()

    answer = read_refund_answer(refund, request.send(http, timeout=5))
    assert answer.ref is None and answer.error is not None and not answer.permanent
    assert answer.error.startswith("HTTP 503" if script == "fail" else "HTTP 429")
    assert fake.refunds == []
    # The retry goes through.
    assert execute_refund(refund, credentials(fake), http, now=NOW).error is None
    assert len(fake.refunds) == 1


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_failing_read_is_retryable_too(fake: FakeChannel, http: httpx.Client, channel: str) -> None:
    refund = refund_for(fake, channel)
    fake.fail()
    answer = execute_refund(refund, credentials(fake), http, now=NOW)
    assert answer.error is not None and not answer.permanent
    assert fake.refunds == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_client_error_is_permanent(fake: FakeChannel, http: httpx.Client, channel: str) -> None:
    refund = refund_for(fake, channel)
    request = prepare(fake, http, refund)
    fake.fail(status=400)
    answer = read_refund_answer(refund, request.send(http, timeout=5))
    assert answer == RefundAnswer(None, "HTTP 400: scripted 400", permanent=True)
    assert fake.refunds == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_channels_refusal_is_permanent_with_its_message(fake: FakeChannel, http: httpx.Client,
                                                            channel: str) -> None:
    refund = refund_for(fake, channel)
    fake.refuse_refunds(message="order is under dispute")
    answer = execute_refund(refund, credentials(fake), http, now=NOW)
    assert answer.ref is None and answer.permanent
    assert answer.error is not None and "order is under dispute" in answer.error
    assert fake.refunds == []


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_wrong_secret_or_token_is_refused(fake: FakeChannel, http: httpx.Client, channel: str) -> None:
    refund = refund_for(fake, channel)
    wrong = {"shopify": {"access_token": "stolen"}, "own_site": {"secret": "not-the-secret"},
             "taobao": {"secret": "not-the-secret"}, "pinduoduo": {"secret": "not-the-secret"}}[channel]
    answer = execute_refund(refund, credentials(fake, **wrong), http, now=NOW)
    assert answer.permanent and answer.error
    assert fake.refunds == []


def test_a_network_error_is_retryable(http: httpx.Client) -> None:
    # Nothing listens on port 9 of localhost (discard); the connection is refused.
    cred = ChannelCredentials(api_base_url="http://127.0.0.1:9", access_token="t", secret="s")
    refund = RefundOrder(channel="own_site", shop_code="s1", order_external_id="WEB-1", case_id="as_1",
                         external_ref=None, amount=100, currency="USD", reason="r")
    answer = execute_refund(refund, cred, http, now=NOW, timeout=2)
    assert answer.ref is None and answer.error and not answer.permanent


# --------------------------------------------------------------------------- amounts
@pytest.mark.parametrize(("amount", "currency", "text"), [
    (1230, "USD", "12.30"), (5, "USD", "0.05"), (1230, "JPY", "1230"), (12345, "KWD", "12.345"),
    (100000000001, "CNY", "1000000000.01"),
])
def test_amounts_are_rendered_exactly(amount: int, currency: str, text: str) -> None:
    assert decimal_amount(amount, currency) == text
    refund = RefundOrder(channel="own_site", shop_code="s1", order_external_id="WEB-1", case_id="as_1",
                         external_ref=None, amount=amount, currency=currency, reason="r",
                         lines=(("TEA-001", 2, amount),))
    cred = ChannelCredentials(api_base_url="https://shop.example", secret="s")
    request = refund_request(refund, cred, now=NOW)
    assert request is not None
    body = request.json()
    assert (body["amount"], body["lines"][0]["amount"]) == (text, text)
    shopify = refund_request(replace(refund, channel="shopify"), replace(cred, access_token="t"), now=NOW,
                             lookup={"order": {"id": 1}})
    assert shopify is not None
    assert shopify.json()["refund"]["transactions"][0]["amount"] == text


def test_a_jpy_refund_reaches_shopify_without_decimals(fake: FakeChannel, http: httpx.Client) -> None:
    fake.upsert(SHOPIFY_ORDER_ID, NOW, currency="JPY", total="5000")
    refund = replace(refund_for(fake, "shopify"), currency="JPY", amount=1230)
    answer = execute_refund(refund, credentials(fake), http, now=NOW)
    assert answer.error is None
    assert (fake.refunds[0]["amount"], fake.refunds[0]["currency"]) == (1230, "JPY")
    (posted,) = [r for r in fake.requests if r.method == "POST"]
    assert posted.body["refund"]["transactions"][0]["amount"] == "1230"


@pytest.mark.parametrize("channel", ["taobao", "pinduoduo"])
def test_chinese_channels_take_fen(fake: FakeChannel, http: httpx.Client, channel: str) -> None:
    refund = refund_for(fake, channel, amount=1230)
    execute_refund(refund, credentials(fake), http, now=NOW)
    (posted,) = [r for r in fake.requests if r.body and r.body.get("method", r.body.get("type")) in
                 ("taobao.rp.refunds.agree", "pdd.refund.agree")]
    if channel == "taobao":
        assert posted.body["refund_infos"] == "88012345678|1230|1732150000000|aftersale"
    else:
        assert posted.body["refund_amount"] == "1230"
    assert fake.refunds[0]["amount"] == 1230
    with pytest.raises(WriteBackError, match="CNY"):
        refund_request(replace(refund, currency="USD"), credentials(fake), now=NOW,
                       lookup={"refund_version": 1})


@pytest.mark.parametrize("amount", [0, -100, 12.3, True])
def test_a_refund_amount_is_positive_integer_minor_units(amount: object) -> None:
    with pytest.raises(InvalidMoney):
        RefundOrder(channel="own_site", shop_code="s1", order_external_id="1", case_id="c", external_ref=None,
                    amount=amount, currency="USD", reason="r")  # type: ignore[arg-type]
    with pytest.raises(UnknownCurrency):
        RefundOrder(channel="own_site", shop_code="s1", order_external_id="1", case_id="c", external_ref=None,
                    amount=100, currency="usd", reason="r")


# --------------------------------------------------------------------------- per channel
@pytest.mark.parametrize("channel", ["taobao", "pinduoduo"])
def test_a_case_without_the_buyers_request_cannot_be_agreed(fake: FakeChannel, http: httpx.Client,
                                                             channel: str) -> None:
    refund = replace(refund_for(fake, channel), external_ref=None)
    with pytest.raises(WriteBackError, match="can only agree to a buyer's"):
        execute_refund(refund, credentials(fake), http, now=NOW)
    with pytest.raises(WriteBackError, match="can only agree to a buyer's"):
        refund_request(refund, credentials(fake), now=NOW, lookup={"refund_version": 1})
    assert fake.requests == [] and fake.refunds == []


@pytest.mark.parametrize("channel", ["taobao", "pinduoduo"])
def test_more_than_the_buyer_asked_for_is_refused(fake: FakeChannel, http: httpx.Client, channel: str) -> None:
    refund = refund_for(fake, channel, amount=1500, asked=1230)
    answer = execute_refund(refund, credentials(fake), http, now=NOW)
    assert answer.permanent and answer.error and "more than the buyer asked for" in answer.error
    assert fake.refunds == []


def test_taobao_reads_the_refund_and_agrees_with_its_version(fake: FakeChannel, http: httpx.Client) -> None:
    refund = refund_for(fake, "taobao")
    assert execute_refund(refund, credentials(fake), http, now=NOW) == RefundAnswer("88012345678", None)
    assert [r.body["method"] for r in fake.requests] == ["taobao.refund.get", "taobao.rp.refunds.agree"]
    assert fake.buyer_request("taobao", "88012345678")["status"] == "SUCCESS"  # type: ignore[index]
    # Executing again only reads: the refund is SUCCESS already.
    execute_refund(refund, credentials(fake), http, now=NOW)
    assert [r.body["method"] for r in fake.requests][2:] == ["taobao.refund.get"]
    # Beijing time, as TOP wants it.
    assert fake.requests[0].body["timestamp"] == "2026-11-21 10:00:00"


def test_taobao_refund_the_buyer_closed_or_that_is_unknown_is_permanent(fake: FakeChannel,
                                                                       http: httpx.Client) -> None:
    refund = refund_for(fake, "taobao")
    fake.open_refund("taobao", "88012345678", refund.order_external_id, refund.amount, status="CLOSED")
    answer = execute_refund(refund, credentials(fake), http, now=NOW)
    assert answer.permanent and answer.error and "closed" in answer.error
    unknown = execute_refund(replace(refund, external_ref="404"), credentials(fake), http, now=NOW)
    assert unknown.permanent and unknown.error and "isv.refund-not-exist" in unknown.error
    assert fake.refunds == []


def test_taobao_needs_the_read_before_agreeing(fake: FakeChannel) -> None:
    with pytest.raises(WriteBackError, match="version"):
        refund_request(refund_for(fake, "taobao"), credentials(fake), now=NOW)


def test_taobao_refusal_of_our_refund_inside_a_successful_call_is_permanent() -> None:
    refund = RefundOrder(channel="taobao", shop_code="s1", order_external_id="1", case_id="as_1",
                         external_ref="77", amount=100, currency="CNY", reason="r")
    body = {"rp_refunds_agree_response": {"succ": True, "msg": "ok", "results": {"refund_mapping_result": [
        {"refund_id": 77, "succ": False, "message": "refund is being arbitrated"}]}}}
    answer = read_refund_answer(refund, httpx.Response(200, json=body))
    assert answer == RefundAnswer(None, "taobao refused the refund: refund is being arbitrated", permanent=True)


def test_shopify_refund_carries_the_case_marker_and_maps_skus_to_line_items(fake: FakeChannel,
                                                                            http: httpx.Client) -> None:
    fake.upsert(SHOPIFY_ORDER_ID, NOW, total="59.90")  # its one line: SKU-<id>, line id <id>*10
    refund = replace(refund_for(fake, "shopify"), lines=((f"SKU-{SHOPIFY_ORDER_ID}", 1, 1230),), return_goods=True)
    answer = execute_refund(refund, credentials(fake), http, now=NOW)
    assert answer.error is None
    read, posted = fake.requests
    assert (read.method, read.path) == ("GET", f"/admin/api/2024-10/orders/{SHOPIFY_ORDER_ID}.json")
    assert posted.headers["x-shopify-access-token"] == fake.access_token
    assert posted.body == {"refund": {
        "currency": "USD", "notify": True, "note": "damaged in transit [orderhub:as_01J0CASE0001]",
        "transactions": [{"kind": "refund", "gateway": "manual", "amount": "12.30"}],
        "refund_line_items": [{"line_item_id": SHOPIFY_ORDER_ID * 10, "quantity": 1, "restock_type": "return"}]}}


def test_shopify_leaves_out_line_items_it_cannot_map(fake: FakeChannel, http: httpx.Client) -> None:
    refund = refund_for(fake, "shopify")  # TEA-001: not a SKU of the (unknown) order
    execute_refund(refund, credentials(fake), http, now=NOW)
    (posted,) = [r for r in fake.requests if r.method == "POST"]
    assert "refund_line_items" not in posted.body["refund"]


def test_shopify_finds_only_its_own_case(fake: FakeChannel, http: httpx.Client) -> None:
    first = refund_for(fake, "shopify", case_id="as_1")
    second = refund_for(fake, "shopify", case_id="as_10")
    a = execute_refund(first, credentials(fake), http, now=NOW)
    b = execute_refund(second, credentials(fake), http, now=NOW)
    assert a.ref != b.ref and len(fake.refunds) == 2


def test_shopify_refuses_more_than_the_refundable_amount(fake: FakeChannel, http: httpx.Client) -> None:
    fake.upsert(SHOPIFY_ORDER_ID, NOW, total="19.90")
    assert execute_refund(refund_for(fake, "shopify", case_id="as_1"), credentials(fake), http,
                          now=NOW).error is None
    answer = execute_refund(refund_for(fake, "shopify", case_id="as_2"), credentials(fake), http, now=NOW)
    assert answer.permanent and answer.error and "refundable amount" in answer.error
    assert len(fake.refunds) == 1


def test_shopify_order_in_another_currency_is_not_refunded(fake: FakeChannel, http: httpx.Client) -> None:
    fake.upsert(SHOPIFY_ORDER_ID, NOW, currency="EUR")
    with pytest.raises(WriteBackError, match="EUR"):
        execute_refund(refund_for(fake, "shopify"), credentials(fake), http, now=NOW)


def test_own_site_request_is_signed_and_keyed_by_the_case(fake: FakeChannel, http: httpx.Client) -> None:
    refund = refund_for(fake, "own_site")
    execute_refund(refund, credentials(fake), http, now=NOW)
    (posted,) = fake.requests
    assert posted.path == "/orderhub/refunds"
    assert posted.headers["idempotency-key"] == refund.case_id
    assert posted.headers["x-orderhub-timestamp"] == str(int(NOW.timestamp()))
    assert posted.body["refund_id"] == refund.case_id and posted.body["order_id"] == "WEB-1001"
    assert fake.refunds[0]["key"] == refund.case_id


def test_own_site_refuses_a_case_key_reused_for_another_amount(fake: FakeChannel, http: httpx.Client) -> None:
    refund = refund_for(fake, "own_site")
    execute_refund(refund, credentials(fake), http, now=NOW)
    answer = execute_refund(replace(refund, amount=999), credentials(fake), http, now=NOW)
    assert answer.permanent and answer.error and "different refund" in answer.error
    assert len(fake.refunds) == 1


# --------------------------------------------------------------------------- simulated gateway
@pytest.mark.parametrize("channel", ["woocommerce", "tiktok_shop", "douyin", "jd", "csv"])
def test_channels_without_a_refund_call_use_the_simulated_gateway(fake: FakeChannel, http: httpx.Client,
                                                                  channel: str) -> None:
    refund = RefundOrder(channel=channel, shop_code="s1", order_external_id="1", case_id="as_7",
                         external_ref=None, amount=100, currency="CNY", reason="r")
    assert channel not in REFUND_CHANNELS
    assert refund_request(refund, credentials(fake), now=NOW) is None
    answer = execute_refund(refund, credentials(fake), http, now=NOW)
    assert answer == simulated_payment_refund(refund) == RefundAnswer("SIMPAY-RF-as_7", None)
    assert fake.requests == []


def test_the_simulated_gateway_is_deterministic() -> None:
    def make(amount: int) -> RefundOrder:
        return RefundOrder(channel="csv", shop_code="s1", order_external_id="1", case_id="as_42",
                           external_ref=None, amount=amount, currency="USD", reason="r")

    assert simulated_payment_refund(make(100)) == simulated_payment_refund(make(100))
    assert simulated_payment_refund(make(100)).ref == "SIMPAY-RF-as_42"
    assert simulated_payment_refund(make(100)).error is None

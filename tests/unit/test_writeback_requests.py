"""The per-channel tracking write-back requests: URLs, auth, signatures (recomputed here from
the channels' documented schemes), carrier codes, and the answers' verdicts."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from orderhub.adapters.channels.writeback import (
    CARRIERS,
    ChannelCredentials,
    TrackingWriteBack,
    WriteBackError,
    build_request,
    carrier_code,
    judge,
    lookup_request,
)
from orderhub.domain.channels.shop import Shop

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SECRET = "app-secret-123"
BASE = "https://api.example.test"


def write_back(channel: str, carrier: str = "sf", external_id: str = "1001") -> TrackingWriteBack:
    return TrackingWriteBack(channel=channel, shop_code="s1", external_id=external_id, carrier=carrier,
                             waybill_no="SF1234567890123", shipment_id="shp_1", shipped_at=NOW,
                             line_skus=(("TEA-001", 2), ("CUP-9", 1)))


def creds(**codes: str) -> ChannelCredentials:
    return ChannelCredentials(api_base_url=BASE, access_token="tok-1", app_key="key-1", secret=SECRET,
                              carrier_codes=codes)


def md5_upper(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest().upper()


def test_shopify_looks_up_fulfillment_orders_then_fulfills_the_open_ones() -> None:
    lookup = lookup_request(write_back("shopify"), creds())
    assert lookup is not None
    assert (lookup.method, lookup.url) == ("GET", f"{BASE}/admin/api/2024-10/orders/1001/fulfillment_orders.json")
    assert lookup.headers["X-Shopify-Access-Token"] == "tok-1"

    answer = {"fulfillment_orders": [{"id": 11, "status": "open"}, {"id": 12, "status": "closed"},
                                     {"id": 13, "status": "in_progress"}]}
    request = build_request(write_back("shopify"), creds(), now=NOW, lookup=answer)
    assert (request.method, request.url) == ("POST", f"{BASE}/admin/api/2024-10/fulfillments.json")
    assert request.headers["X-Shopify-Access-Token"] == "tok-1"
    assert request.json() == {"fulfillment": {
        "line_items_by_fulfillment_order": [{"fulfillment_order_id": 11}, {"fulfillment_order_id": 13}],
        "tracking_info": {"company": "SF Express", "number": "SF1234567890123"}, "notify_customer": False}}


def test_shopify_without_an_open_fulfillment_order_is_refused() -> None:
    with pytest.raises(WriteBackError, match="no open fulfillment order"):
        build_request(write_back("shopify"), creds(), now=NOW,
                      lookup={"fulfillment_orders": [{"id": 1, "status": "closed"}]})


def test_woocommerce_adds_a_customer_note_with_consumer_credentials() -> None:
    request = build_request(write_back("woocommerce", carrier="ups"), creds(), now=NOW)
    assert (request.method, request.url) == ("POST", f"{BASE}/wp-json/wc/v3/orders/1001/notes")
    assert request.params == {"consumer_key": "key-1", "consumer_secret": "tok-1"}
    assert request.json() == {"note": "Shipped with UPS, tracking number SF1234567890123", "customer_note": True}
    assert lookup_request(write_back("woocommerce"), creds()) is None


def test_tiktok_request_is_signed_with_hmac_sha256_over_path_params_and_body() -> None:
    request = build_request(write_back("tiktok_shop"), creds(sf="7117858858072016686"), now=NOW)
    path = "/fulfillment/202309/orders/1001/packages"
    assert (request.method, request.url) == ("POST", BASE + path)
    assert request.headers["x-tts-access-token"] == "tok-1"
    assert request.json() == {"tracking_number": "SF1234567890123", "shipping_provider_id": "7117858858072016686"}
    params = dict(request.params)
    given = params.pop("sign")
    assert params == {"app_key": "key-1", "timestamp": str(int(NOW.timestamp()))}
    assert request.content is not None
    plain = f"{SECRET}{path}app_keykey-1timestamp{int(NOW.timestamp())}".encode() + request.content + SECRET.encode()
    assert given == hmac.new(SECRET.encode(), plain, hashlib.sha256).hexdigest()


def test_taobao_offline_send_is_md5_signed_over_sorted_params() -> None:
    request = build_request(write_back("taobao", carrier="jdl"), creds(), now=NOW)
    assert (request.method, request.url) == ("POST", f"{BASE}/router/rest")
    assert request.form is not None
    form = dict(request.form)
    given = form.pop("sign")
    assert form["method"] == "taobao.logistics.offline.send"
    assert (form["tid"], form["out_sid"], form["company_code"]) == ("1001", "SF1234567890123", "JD")
    assert (form["app_key"], form["session"], form["sign_method"]) == ("key-1", "tok-1", "md5")
    assert form["timestamp"] == "2026-03-01 20:00:00"  # Beijing time
    assert given == md5_upper(SECRET + "".join(k + v for k, v in sorted(form.items())) + SECRET)


def test_pinduoduo_online_send_is_md5_signed_and_needs_a_configured_logistics_id() -> None:
    with pytest.raises(WriteBackError, match=r"carrier_codes\.zto"):
        build_request(write_back("pinduoduo", carrier="zto"), creds(), now=NOW)
    request = build_request(write_back("pinduoduo", carrier="zto"), creds(zto="115"), now=NOW)
    assert (request.method, request.url) == ("POST", f"{BASE}/api/router")
    assert request.form is not None
    form = dict(request.form)
    given = form.pop("sign")
    assert form == {"type": "pdd.logistics.online.send", "client_id": "key-1", "access_token": "tok-1",
                    "timestamp": str(int(NOW.timestamp())), "data_type": "JSON", "order_sn": "1001",
                    "logistics_id": "115", "tracking_number": "SF1234567890123"}
    assert given == md5_upper(SECRET + "".join(k + v for k, v in sorted(form.items())) + SECRET)


def test_own_site_gets_signed_json_like_orderhub_webhooks() -> None:
    request = build_request(write_back("own_site", external_id="WEB/7"), creds(), now=NOW, delivery_id="msg_1")
    assert (request.method, request.url) == ("POST", f"{BASE}/orders/WEB%2F7/tracking")
    assert request.content is not None
    timestamp = request.headers["X-OrderHub-Timestamp"]
    assert timestamp == str(int(NOW.timestamp()))
    mac = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.content, hashlib.sha256).hexdigest()
    assert request.headers["X-OrderHub-Signature"] == "sha256=" + mac
    assert request.headers["X-OrderHub-Delivery"] == "msg_1"
    assert request.json() == {"external_id": "WEB/7", "carrier": "sf", "waybill_no": "SF1234567890123",
                              "shipment_id": "shp_1", "shipped_at": NOW.isoformat(),
                              "lines": [{"sku": "TEA-001", "quantity": 2}, {"sku": "CUP-9", "quantity": 1}]}


@pytest.mark.parametrize(("channel", "expected"), [
    ("shopify", {"sf": "SF Express", "zto": "ZTO Express", "dhl": "DHL Express", "usps": "USPS"}),
    ("taobao", {"sf": "SF", "zto": "ZTO", "yto": "YTO", "sto": "STO", "yunda": "YUNDA", "jdl": "JD", "ems": "EMS"}),
    ("own_site", {c: c for c in CARRIERS}),
])
def test_default_carrier_codes(channel: str, expected: dict[str, str]) -> None:
    assert {c: carrier_code(channel, c, creds()) for c in expected} == expected


def test_shop_carrier_codes_override_the_defaults() -> None:
    shop = Shop(id="shop_1", tenant_id="t", code="s1", channel="taobao", name="T", secret=SECRET, timezone=None,
                settings={"api_base_url": BASE + "/", "access_token": "tok-1", "app_key": "key-1",
                          "carrier_codes": {"sf": "SFEXPRESS"}})
    credentials = ChannelCredentials.from_shop(shop)
    assert credentials.api_base_url == BASE
    assert carrier_code("taobao", "sf", credentials) == "SFEXPRESS"
    assert carrier_code("taobao", "zto", credentials) == "ZTO"
    with pytest.raises(WriteBackError, match="taobao has no carrier code for 'cainiao'"):
        carrier_code("taobao", "cainiao", credentials)


def test_unknown_channel_and_missing_credentials_are_clear_errors() -> None:
    with pytest.raises(WriteBackError, match="channel 'amazon' has no tracking write-back"):
        build_request(write_back("amazon"), creds(), now=NOW)
    with pytest.raises(WriteBackError, match=r"settings\.access_token"):
        build_request(write_back("taobao"), ChannelCredentials(api_base_url=BASE, app_key="k", secret=SECRET),
                      now=NOW)


def answer(status: int, body: Any) -> httpx.Response:
    """A channel's answer: JSON, or plain text when ``body`` is a str."""
    if isinstance(body, str):
        return httpx.Response(status, text=body)
    return httpx.Response(status, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(("channel", "status", "body", "error", "permanent"), [
    ("shopify", 201, {"fulfillment": {}}, None, False),
    ("shopify", 422, {"errors": ["Fulfillment order 1 has an unfulfillable status= closed."]},
     "HTTP 422: Fulfillment order 1 has an unfulfillable status= closed.", True),
    ("woocommerce", 400, {"code": "x", "message": "Invalid order ID."}, "HTTP 400: Invalid order ID.", True),
    ("own_site", 429, {"error": "slow down"}, "HTTP 429: slow down", False),
    ("own_site", 503, "  service\n down ", "HTTP 503: service down", False),
    ("tiktok_shop", 200, {"code": 0, "message": "Success"}, None, False),
    ("tiktok_shop", 200, {"code": 21011001, "message": "order not found"},
     "tiktok_shop code 21011001: order not found", True),
    ("taobao", 200, {"error_response": {"code": 15, "sub_code": "isv.logistics-offline-service-error",
                                        "sub_msg": "already shipped"}},
     "taobao 15 isv.logistics-offline-service-error: already shipped", True),
    ("taobao", 200, {"error_response": {"code": 15, "sub_code": "isp.top-remote-connection-timeout", "msg": "t"}},
     "taobao 15 isp.top-remote-connection-timeout: t", False),
    ("pinduoduo", 200, {"error_response": {"error_code": 70031, "error_msg": "busy"}}, "pinduoduo 70031: busy", False),
])
def test_answers_are_judged_per_channel(channel: str, status: int, body: Any, error: str | None,
                                        permanent: bool) -> None:
    verdict = judge(channel, answer(status, body))
    assert (verdict.error, verdict.permanent) == (error, permanent)

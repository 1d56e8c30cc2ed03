"""Tracking write-back: the HTTP call that tells a sales channel an order shipped, per channel.

:func:`build_request` turns a :class:`TrackingWriteBack` (what OrderHub knows about the
shipment) and the shop's :class:`ChannelCredentials` into a :class:`ChannelRequest` ready
for httpx; :func:`judge` reads the channel's answer (several channels answer errors with
HTTP 200 and an error object). Shopify needs one read first (:func:`lookup_request`): its
fulfillments are created against the order's fulfillment orders, whose ids we don't store.

Channels and calls (see ``docs/channels.md`` "Write-back"; [unverified] marks what was not
checked against the channel's own documentation):

* shopify — ``GET /admin/api/2024-10/orders/{id}/fulfillment_orders.json`` then
  ``POST /admin/api/2024-10/fulfillments.json`` (``X-Shopify-Access-Token``);
* woocommerce — ``POST /wp-json/wc/v3/orders/{id}/notes`` (a customer note with the
  carrier and tracking number; core REST API, no extension needed);
* tiktok_shop — ``POST /fulfillment/202309/orders/{id}/packages`` ("mark package as
  shipped"), HMAC-SHA256 request signature [unverified call shape];
* taobao — ``taobao.logistics.offline.send`` through the TOP router, MD5 signature;
* pinduoduo — ``pdd.logistics.online.send`` through the PDD router, MD5 signature;
* own_site — ``POST {api_base_url}/orders/{id}/tracking`` JSON, signed like OrderHub's webhooks.

Carrier codes: each channel names carriers its own way. Defaults are below; a shop's
``settings.carrier_codes`` (``{"sf": "..."}``) overrides them, and is the only source for
TikTok Shop and Pinduoduo, whose numeric carrier ids we don't know.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from orderhub.domain.channels.shop import Shop

SHANGHAI = ZoneInfo("Asia/Shanghai")
TOP_TIME = "%Y-%m-%d %H:%M:%S"
SHOPIFY_VERSION = "2024-10"
ERROR_EXCERPT = 300
CARRIERS = ("sf", "zto", "yto", "sto", "yunda", "jdl", "ems", "cainiao", "usps", "ups", "fedex", "dhl")

# Shopify matches ``tracking_info.company`` against its list of supported carriers to build a
# tracking link; an unknown name is still accepted as free text. The Chinese carriers' exact
# spellings in that list are [unverified].
SHOPIFY_CARRIERS = {
    "sf": "SF Express", "zto": "ZTO Express", "yto": "YTO Express", "sto": "STO Express",
    "yunda": "Yunda Express", "jdl": "JD Logistics", "ems": "China EMS", "cainiao": "Cainiao",
    "usps": "USPS", "ups": "UPS", "fedex": "FedEx", "dhl": "DHL Express",
}
# Taobao's ``company_code`` values for the domestic carriers (taobao.logistics.companies.get
# lists them); the international ones are [unverified] guesses in the same style.
TAOBAO_CARRIERS = {
    "sf": "SF", "zto": "ZTO", "yto": "YTO", "sto": "STO", "yunda": "YUNDA", "jdl": "JD", "ems": "EMS",
    "usps": "USPS", "ups": "UPS", "fedex": "FEDEX", "dhl": "DHL",
}
# Human names for the WooCommerce order note and anything else read by people.
CARRIER_NAMES = {
    "sf": "SF Express", "zto": "ZTO Express", "yto": "YTO Express", "sto": "STO Express",
    "yunda": "Yunda Express", "jdl": "JD Logistics", "ems": "China Post EMS", "cainiao": "Cainiao",
    "usps": "USPS", "ups": "UPS", "fedex": "FedEx", "dhl": "DHL",
}


class WriteBackError(Exception):
    """Raised when a write-back can't be built for the shop at all (channel without write-back,
    missing credentials, a carrier the channel has no code for): retrying won't help, the
    shop's settings must change first."""


@dataclass(frozen=True, slots=True)
class TrackingWriteBack:
    """What the channel is told: order ``external_id`` of shop ``shop_code`` left with ``carrier``
    (an OrderHub carrier id, see ``CARRIERS``) under ``waybill_no``; ``line_skus`` are the
    shipped (sku, quantity) pairs."""

    channel: str
    shop_code: str
    external_id: str
    carrier: str
    waybill_no: str
    shipment_id: str
    shipped_at: datetime
    line_skus: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class ChannelCredentials:
    """A shop's API access as the write-back needs it: from its ``settings`` and ``secret``.

    ``secret`` is the app secret (TOP, PDD, TikTok Shop sign requests with it) or the shared
    secret of an own site; Shopify and WooCommerce don't use it.
    """

    api_base_url: str
    access_token: str = ""
    app_key: str = ""
    secret: str = ""
    carrier_codes: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_shop(cls, shop: Shop) -> ChannelCredentials:
        """The credentials stored with ``shop`` (``settings.api_base_url`` etc.)."""
        settings = shop.settings or {}
        codes = settings.get("carrier_codes") or {}
        return cls(api_base_url=str(settings.get("api_base_url") or "").rstrip("/"),
                   access_token=str(settings.get("access_token") or ""),
                   app_key=str(settings.get("app_key") or ""), secret=shop.secret,
                   carrier_codes={str(k): str(v) for k, v in dict(codes).items()}, extra=settings)


@dataclass(frozen=True, slots=True)
class ChannelRequest:
    """An HTTP request described for httpx: ``content`` is the exact body (what was signed),
    ``form`` a form body; at most one of them is set."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    form: dict[str, str] | None = None

    def json(self) -> Any:
        """The JSON body, decoded (None without one)."""
        return None if self.content is None else json.loads(self.content)

    def send(self, client: httpx.Client, *, timeout: float) -> httpx.Response:
        """Send with ``client``; network errors propagate as httpx exceptions."""
        return client.request(self.method, self.url, headers=self.headers, params=self.params or None,
                              content=self.content, data=self.form, timeout=timeout)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a channel's answer means: ``error`` None when the write-back was accepted;
    ``permanent`` when the channel refused it (retrying the same request can't succeed)."""

    error: str | None
    permanent: bool = False


# --------------------------------------------------------------------------- signatures
def top_sign(params: Mapping[str, str], secret: str) -> str:
    """TOP (Taobao) ``sign_method=md5``: upper(md5(secret + k1v1k2v2… + secret)), keys sorted,
    ``sign`` and empty values left out."""
    text = "".join(f"{k}{v}" for k, v in sorted(params.items()) if k != "sign" and v != "")
    return hashlib.md5(f"{secret}{text}{secret}".encode(), usedforsecurity=False).hexdigest().upper()


def pdd_sign(params: Mapping[str, str], secret: str) -> str:
    """Pinduoduo: upper(md5(client_secret + k1v1k2v2… + client_secret)), keys sorted, ``sign`` left out."""
    text = "".join(f"{k}{v}" for k, v in sorted(params.items()) if k != "sign")
    return hashlib.md5(f"{secret}{text}{secret}".encode(), usedforsecurity=False).hexdigest().upper()


def tiktok_sign(path: str, params: Mapping[str, str], body: bytes, secret: str) -> str:
    """TikTok Shop API request signature: hex HMAC-SHA256(app_secret, secret + path +
    k1v1… (sorted, without ``sign`` and ``access_token``) + body + secret)."""
    text = path + "".join(f"{k}{v}" for k, v in sorted(params.items()) if k not in ("sign", "access_token"))
    message = secret.encode() + text.encode() + body + secret.encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def orderhub_sign(secret: str, timestamp: int, body: bytes) -> str:
    """``X-OrderHub-Signature``: ``sha256=`` + hex HMAC-SHA256(secret, "<timestamp>." + body),
    the scheme of OrderHub's outgoing webhooks."""
    return "sha256=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- building
def carrier_code(channel: str, carrier: str, credentials: ChannelCredentials) -> str:
    """The channel's code for OrderHub carrier ``carrier``: the shop's ``carrier_codes`` first,
    then the channel's defaults; raises WriteBackError when neither knows it."""
    if carrier in credentials.carrier_codes:
        return credentials.carrier_codes[carrier]
    defaults = {"shopify": SHOPIFY_CARRIERS, "taobao": TAOBAO_CARRIERS, "woocommerce": CARRIER_NAMES,
                "own_site": {c: c for c in CARRIERS}}.get(channel, {})
    if carrier in defaults:
        return defaults[carrier]
    raise WriteBackError(f"{channel} has no carrier code for {carrier!r}: set settings.carrier_codes."
                         f"{carrier} on shop to the channel's code for it")


def lookup_request(write_back: TrackingWriteBack, credentials: ChannelCredentials) -> ChannelRequest | None:
    """The read a channel needs before the write-back (Shopify: the order's fulfillment
    orders), or None; its decoded JSON answer goes to :func:`build_request` as ``lookup``."""
    if write_back.channel != "shopify":
        return None
    _require(credentials, "api_base_url", "access_token")
    return ChannelRequest("GET", f"{credentials.api_base_url}/admin/api/{SHOPIFY_VERSION}/orders/"
                                 f"{_segment(write_back.external_id)}/fulfillment_orders.json",
                          headers={"X-Shopify-Access-Token": credentials.access_token, "Accept": "application/json"})


def build_request(write_back: TrackingWriteBack, credentials: ChannelCredentials, *, now: datetime,
                  delivery_id: str = "", lookup: Any = None) -> ChannelRequest:
    """The write-back call for ``write_back``'s channel. ``now`` stamps signed requests,
    ``delivery_id`` (the outbox message id) lets an own site deduplicate, ``lookup`` is the
    answer to :func:`lookup_request`. Raises WriteBackError for a channel without write-back
    or a shop missing what the call needs."""
    builder = BUILDERS.get(write_back.channel)
    if builder is None:
        raise WriteBackError(f"channel {write_back.channel!r} has no tracking write-back (supported: "
                             f"{', '.join(sorted(BUILDERS))}); the tracking number was not sent")
    return builder(write_back, credentials, now, delivery_id, lookup)


def _shopify(wb: TrackingWriteBack, cred: ChannelCredentials, now: datetime, delivery_id: str,
             lookup: Any) -> ChannelRequest:
    _require(cred, "api_base_url", "access_token")
    orders = lookup.get("fulfillment_orders") if isinstance(lookup, dict) else None
    if not isinstance(orders, list):
        raise WriteBackError("shopify write-back needs the order's fulfillment orders (lookup_request first)")
    # Only fulfillment orders that accept a fulfillment; closed/cancelled ones are done already.
    open_ids = [o["id"] for o in orders if isinstance(o, dict) and o.get("status") in ("open", "in_progress")]
    if not open_ids:
        raise WriteBackError(f"shopify order {wb.external_id} has no open fulfillment order "
                             "(already fulfilled or cancelled on Shopify)")
    # Without fulfillment_order_line_items each fulfillment order is fulfilled in full: our
    # lines carry SKUs, Shopify wants its line ids, so a split shipment closes the whole order.
    body = {"fulfillment": {
        "line_items_by_fulfillment_order": [{"fulfillment_order_id": i} for i in open_ids],
        "tracking_info": {"company": carrier_code("shopify", wb.carrier, cred), "number": wb.waybill_no},
        "notify_customer": bool(cred.extra.get("notify_customer", False)),
    }}
    return ChannelRequest("POST", f"{cred.api_base_url}/admin/api/{SHOPIFY_VERSION}/fulfillments.json",
                          headers={"X-Shopify-Access-Token": cred.access_token, **_JSON}, content=_dump(body))


def _woocommerce(wb: TrackingWriteBack, cred: ChannelCredentials, now: datetime, delivery_id: str,
                 lookup: Any) -> ChannelRequest:
    _require(cred, "api_base_url", "app_key", "access_token")
    note = f"Shipped with {carrier_code('woocommerce', wb.carrier, cred)}, tracking number {wb.waybill_no}"
    # customer_note: WooCommerce e-mails the buyer and shows the note on their order page.
    body = {"note": note, "customer_note": True}
    # Consumer key/secret as query parameters, as the poller sends them (HTTPS sites accept it).
    return ChannelRequest("POST", f"{cred.api_base_url}/wp-json/wc/v3/orders/{_segment(wb.external_id)}/notes",
                          headers=dict(_JSON), params={"consumer_key": cred.app_key,
                                                       "consumer_secret": cred.access_token},
                          content=_dump(body))


def _tiktok_shop(wb: TrackingWriteBack, cred: ChannelCredentials, now: datetime, delivery_id: str,
                 lookup: Any) -> ChannelRequest:
    _require(cred, "api_base_url", "app_key", "access_token", "secret")
    path = f"/fulfillment/202309/orders/{_segment(wb.external_id)}/packages"
    # [unverified] body of "mark package as shipped": without order_line_item_ids the whole
    # order is one package (TikTok line ids are not SKUs, and we keep only SKUs).
    body = _dump({"tracking_number": wb.waybill_no,
                  "shipping_provider_id": carrier_code("tiktok_shop", wb.carrier, cred)})
    params = {"app_key": cred.app_key, "timestamp": str(int(now.timestamp()))}
    if cred.extra.get("shop_cipher"):
        params["shop_cipher"] = str(cred.extra["shop_cipher"])
    params["sign"] = tiktok_sign(path, params, body, cred.secret)
    return ChannelRequest("POST", cred.api_base_url + path, params=params, content=body,
                          headers={"x-tts-access-token": cred.access_token, **_JSON})


def _taobao(wb: TrackingWriteBack, cred: ChannelCredentials, now: datetime, delivery_id: str,
            lookup: Any) -> ChannelRequest:
    _require(cred, "api_base_url", "app_key", "access_token", "secret")
    form = {"method": "taobao.logistics.offline.send", "app_key": cred.app_key, "session": cred.access_token,
            "timestamp": now.astimezone(SHANGHAI).strftime(TOP_TIME), "format": "json", "v": "2.0",
            "sign_method": "md5", "tid": wb.external_id, "out_sid": wb.waybill_no,
            "company_code": carrier_code("taobao", wb.carrier, cred)}
    form["sign"] = top_sign(form, cred.secret)
    return ChannelRequest("POST", f"{cred.api_base_url}/router/rest", form=form)


def _pinduoduo(wb: TrackingWriteBack, cred: ChannelCredentials, now: datetime, delivery_id: str,
               lookup: Any) -> ChannelRequest:
    _require(cred, "api_base_url", "app_key", "access_token", "secret")
    form = {"type": "pdd.logistics.online.send", "client_id": cred.app_key, "access_token": cred.access_token,
            "timestamp": str(int(now.timestamp())), "data_type": "JSON", "order_sn": wb.external_id,
            "logistics_id": carrier_code("pinduoduo", wb.carrier, cred), "tracking_number": wb.waybill_no}
    form["sign"] = pdd_sign(form, cred.secret)
    return ChannelRequest("POST", f"{cred.api_base_url}/api/router", form=form)


def _own_site(wb: TrackingWriteBack, cred: ChannelCredentials, now: datetime, delivery_id: str,
              lookup: Any) -> ChannelRequest:
    _require(cred, "api_base_url", "secret")
    body = _dump({"external_id": wb.external_id, "carrier": carrier_code("own_site", wb.carrier, cred),
                  "waybill_no": wb.waybill_no, "shipment_id": wb.shipment_id,
                  "shipped_at": wb.shipped_at.isoformat(),
                  "lines": [{"sku": sku, "quantity": qty} for sku, qty in wb.line_skus]})
    timestamp = int(now.timestamp())
    headers = {**_JSON, "X-OrderHub-Event": "channel.tracking", "X-OrderHub-Timestamp": str(timestamp),
               "X-OrderHub-Signature": orderhub_sign(cred.secret, timestamp, body)}
    if delivery_id:
        headers["X-OrderHub-Delivery"] = delivery_id
    return ChannelRequest("POST", f"{cred.api_base_url}/orders/{_segment(wb.external_id)}/tracking",
                          headers=headers, content=body)


Builder = Callable[[TrackingWriteBack, ChannelCredentials, datetime, str, Any], ChannelRequest]
BUILDERS: dict[str, Builder] = {
    "shopify": _shopify, "woocommerce": _woocommerce, "tiktok_shop": _tiktok_shop, "taobao": _taobao,
    "pinduoduo": _pinduoduo, "own_site": _own_site,
}


# --------------------------------------------------------------------------- answers
def judge(channel: str, response: httpx.Response) -> Verdict:
    """Read the channel's answer to a write-back (or lookup): 429 and 5xx are retried, any
    other non-2xx is a refusal (permanent) with the channel's message; a 2xx carrying the
    channel's error object is judged per channel."""
    body = json_or_none(response)
    if response.status_code == 429 or response.status_code >= 500:
        return Verdict(_http_text(response, body), permanent=False)
    if not response.is_success:
        return Verdict(_http_text(response, body), permanent=True)
    if not isinstance(body, dict):
        return Verdict(None)
    if channel == "tiktok_shop" and body.get("code") not in (None, 0):
        # [unverified] TikTok answers rate limits with HTTP 429; a non-zero code on a 200 is
        # taken as a refusal of this request.
        return Verdict(excerpt(f"tiktok_shop code {body.get('code')}: {body.get('message')}"), permanent=True)
    error = body.get("error_response")
    if channel == "taobao" and isinstance(error, dict):
        # TOP convention: isp.* sub-codes are platform-side (transient); code 7 is the call
        # limit; isv.* and the rest are the caller's fault.
        sub_code = str(error.get("sub_code") or "")
        transient = str(error.get("code")) == "7" or sub_code.startswith("isp.")
        return Verdict(excerpt(f"taobao {error.get('code')} {sub_code}: {error.get('sub_msg') or error.get('msg')}"),
                       permanent=not transient)
    if channel == "pinduoduo" and isinstance(error, dict):
        # PDD's error codes are not known to us [unverified]: every error is retried until
        # the attempts run out, so a throttled call is not lost.
        return Verdict(excerpt(f"pinduoduo {error.get('error_code')}: {error.get('error_msg')}"), permanent=False)
    return Verdict(None)


def _http_text(response: httpx.Response, body: Any) -> str:
    message: Any = response.text
    if isinstance(body, dict):
        for key in ("errors", "message", "error", "msg"):
            if body.get(key):
                message = body[key]
                break
    if isinstance(message, list):
        # Shopify lists its errors: ["Fulfillment order … is closed.", …].
        message = "; ".join(str(m) for m in message)
    elif not isinstance(message, str):
        message = json.dumps(message, ensure_ascii=False)
    excerpt = " ".join(message[:ERROR_EXCERPT].split())
    return f"HTTP {response.status_code}: {excerpt}" if excerpt else f"HTTP {response.status_code}"


# --------------------------------------------------------------------------- helpers
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def _dump(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _segment(value: str) -> str:
    # Ids go into URL paths: a '/' or '?' in one must not change the path.
    return quote(value, safe="")


def _require(cred: ChannelCredentials, *names: str) -> None:
    missing = [n for n in names if not getattr(cred, n)]
    if missing:
        where = ["shop secret" if n == "secret" else f"settings.{n}" for n in missing]
        raise WriteBackError(f"the shop lacks {', '.join(where)} needed for the write-back")


def json_or_none(response: httpx.Response) -> Any:
    """A channel's answer decoded as JSON, or None when it isn't JSON (write-back and refund calls)."""
    try:
        return response.json()
    except ValueError:
        return None


def excerpt(text: str) -> str:
    """An error message cut to what an outbox row and an alert keep."""
    return text[:ERROR_EXCERPT]

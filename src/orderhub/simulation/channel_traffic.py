"""Simulated channel traffic: native payloads from several sales channels, for the demo.

:func:`plan_traffic` turns a seed, a ``now`` and an order count into a :class:`TrafficPlan`:
the webhook pushes a set of shops on Shopify, WooCommerce, TikTok Shop, Taobao, JD,
Pinduoduo, Douyin and an own site would send, each in the channel's own format (money in
the channel's unit, times in its zone and format), in three phases:

0. new orders (one of them a Shopify ``test: true`` order, one own-site order paid with an
   unusual method, tagged ``unusual_payment``), a WooCommerce ping, and a couple of payloads
   with a required field missing (dead-lettered, the field path shown in channel health);
1. later versions (paid → shipped, pending → paid, some cancelled), a TikTok Shop status-only
   push (type 1), and exact re-sends of earlier pushes (a channel retrying);
2. deliveries, and a few late versions: an older "paid" version arriving after the order
   shipped (status jumping: recorded as ignored-stale).

Everything is derived from the seed and ``now`` (never the wall clock), so the same arguments
give the same bytes. Signatures are not part of the plan: :func:`signature_headers` signs a
message for a shop at send time.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from typing import Any

from orderhub.adapters.channels.mapping import ChannelSpec
from orderhub.adapters.channels.signatures import sign
from orderhub.simulation.orders import CN_NAMES, CN_PLACES, PRODUCTS_CN, PRODUCTS_INTL, STREETS, US_NAMES, US_PLACES

CHANNELS: tuple[str, ...] = ("shopify", "woocommerce", "tiktok_shop", "taobao", "jd", "pinduoduo", "douyin",
                             "own_site")
CN_CHANNELS = frozenset({"taobao", "jd", "pinduoduo", "douyin", "own_site"})
# Channels whose signature scheme needs the shop's app key (kept in the shop's settings).
APP_KEY_CHANNELS = frozenset({"tiktok_shop", "douyin"})
SHOP_TIMEZONES = {"shopify": "America/New_York", "woocommerce": "Europe/Berlin", "tiktok_shop": "UTC",
                  "taobao": "Asia/Shanghai", "jd": "Asia/Shanghai", "pinduoduo": "Asia/Shanghai",
                  "douyin": "Asia/Shanghai", "own_site": "Asia/Shanghai"}

# Message kinds (PlannedMessage.kind).
NEW, UPDATE, DUPLICATE, STALE, STATUS_PUSH, BROKEN, PING = (
    "new", "update", "duplicate", "stale", "status_push", "broken", "ping")

CENT = Decimal("0.01")
CHINA = timezone(timedelta(hours=8), "CST")       # China has no DST: a fixed +08:00 is exact
NEW_YORK = timezone(timedelta(hours=-5), "EST")   # the simulated Shopify store's offset
BERLIN = timezone(timedelta(hours=1), "CET")      # the simulated WooCommerce site's local time
EU_PLACES = [("DE", "BE", "Berlin", "10115", "Hauptstraße"), ("DE", "BY", "München", "80331", "Marienplatz"),
             ("FR", "", "Paris", "75002", "Rue de la Paix"), ("NL", "", "Amsterdam", "1012 JS", "Damrak")]
EU_NAMES = [("Anna", "Schmidt"), ("Lukas", "Müller"), ("Chloé", "Martin"), ("Daan", "de Vries")]
# (province id, city id, district id) for the simulated Douyin addresses: any stable digits do.
_PAY_CN = {"taobao": "alipay", "jd": "4-在线支付"}


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    """One push a channel would send: the raw body, non-signature headers, and what it is."""

    channel: str
    body: bytes
    headers: dict[str, str]
    note: str
    kind: str = NEW
    phase: int = 0
    external_id: str | None = None
    # For kind == "broken": the payload field the mapping names when it fails.
    expect_field: str | None = None


@dataclass(frozen=True, slots=True)
class TrafficPlan:
    """The pushes to send, in order (phase by phase), with what was planned per channel."""

    messages: list[PlannedMessage]
    orders: dict[str, int]          # new orders planned per channel (broken payloads excluded)

    def phase(self, number: int) -> list[PlannedMessage]:
        """The messages of one phase, in sending order."""
        return [m for m in self.messages if m.phase == number]

    @property
    def phases(self) -> list[int]:
        """The phase numbers, ascending."""
        return sorted({m.phase for m in self.messages})

    def counts(self) -> dict[str, int]:
        """How many messages of each kind."""
        return dict(sorted(Counter(m.kind for m in self.messages).items()))


@dataclass(slots=True)
class _Line:
    sku: str
    title: str
    quantity: int
    price: Decimal
    unit_discount: Decimal = Decimal(0)

    @property
    def gross(self) -> Decimal:
        return self.price * self.quantity

    @property
    def discount(self) -> Decimal:
        return self.unit_discount * self.quantity


@dataclass(slots=True)
class _Seed:
    """A channel-neutral simulated order that each channel renders in its own format."""

    channel: str
    index: int
    external_id: str
    placed: datetime
    paid: datetime | None
    lines: list[_Line]
    shipping: Decimal
    name: str
    phone: str
    email: str | None
    place: tuple[str, ...]
    street: str
    payment: str
    tags: list[str] = field(default_factory=list)
    test: bool = False

    @property
    def goods(self) -> Decimal:
        return sum((ln.gross for ln in self.lines), Decimal(0))

    @property
    def discount(self) -> Decimal:
        return sum((ln.discount for ln in self.lines), Decimal(0))

    @property
    def status(self) -> str:
        return "paid" if self.paid else "pending_payment"


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def _fen(value: Decimal) -> int:
    return int((value * 100).to_integral_value())


def _unix(when: datetime) -> int:
    return int(when.timestamp())


def _cn_time(when: datetime) -> str:
    return when.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def _iso(when: datetime, zone: timezone) -> str:
    return when.astimezone(zone).isoformat()


def _naive(when: datetime, zone: timezone) -> str:
    return when.astimezone(zone).replace(tzinfo=None).isoformat()


def _mask_cn_phone(rng: random.Random) -> str:
    return f"1{rng.choice('3578')}{rng.randint(0, 9)}****{rng.randint(1000, 9999)}"


def _mask_name(name: str) -> str:
    return name[0] + "**"


def _masked_street(street: str) -> str:
    return street.split(" ", maxsplit=1)[0] + "***号"


def _dump(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# ------------------------------------------------------------------------------------------- seeds


def _external_id(channel: str, index: int, placed: datetime, base: int) -> str:
    n = base + index
    return {
        "shopify": str(5_940_139_000_000 + n * 7),
        "woocommerce": str(7_000 + n),
        "tiktok_shop": str(578_124_693_000_000_000 + n * 13),
        "taobao": str(4_123_456_789_000_000_000 + n * 11),
        "jd": str(298_765_000_000 + n * 3),
        "pinduoduo": f"{placed.astimezone(CHINA):%y%m%d}-{384_756_102_000_000 + n * 17}",
        "douyin": str(6_921_234_567_000_000_000 + n * 10),
        "own_site": f"WEB-{200_000 + n}",
    }[channel]


def _seed(rng: random.Random, channel: str, index: int, now: datetime, base: int) -> _Seed:
    domestic = channel in CN_CHANNELS
    placed = now - timedelta(seconds=rng.randint(6 * 3600, 72 * 3600))
    catalogue = PRODUCTS_CN if domestic else PRODUCTS_INTL
    picked = rng.sample(catalogue, k=rng.choice([1, 1, 2, 2, 3]))
    lines = [_Line(sku, title, rng.choice([1, 1, 2, 3]), Decimal(price)) for sku, title, price in picked]
    if rng.random() < 0.3:  # a promotion on the first line: 10% off each unit
        lines[0].unit_discount = (lines[0].price / 10).quantize(CENT, rounding=ROUND_DOWN)
    # JD POP returns orders once paid (or COD), so every simulated JD order is paid.
    paid = placed + timedelta(seconds=rng.randint(5, 600)) if channel == "jd" or rng.random() < 0.8 else None
    place: tuple[str, ...]
    email: str | None = None
    if domestic:
        place = rng.choice(CN_PLACES)
        name, phone, street = rng.choice(CN_NAMES), _mask_cn_phone(rng), rng.choice(STREETS)
        shipping = Decimal(rng.choice(["0.00", "0.00", "8.00", "12.00"]))
        payment = {"pinduoduo": rng.choice(["WEIXIN", "ALIPAY"]), "douyin": rng.choice(["1", "2"]),
                   "own_site": rng.choice(["wechat_pay", "alipay"])}.get(channel, _PAY_CN.get(channel, ""))
    elif channel == "woocommerce":
        country, state, city, postcode, road = rng.choice(EU_PLACES)
        first, last = rng.choice(EU_NAMES)
        place, name = (country, state, city, postcode), f"{first} {last}"
        phone = f"+49 30 {rng.randint(10**6, 10**7 - 1)}"
        street, email = f"{road} {rng.randint(1, 120)}", f"{first.lower()}@example.de"
        shipping, payment = Decimal(rng.choice(["0.00", "4.90"])), rng.choice(["stripe", "paypal"])
    else:
        state, city, postcode = rng.choice(US_PLACES)
        name = rng.choice(US_NAMES)
        place, phone = ("US", state, city, postcode), f"+1 212-555-{rng.randint(1000, 9999)}"
        street, email = f"{rng.randint(1, 999)} Market St", f"{name.split()[0].lower()}@example.com"
        shipping = Decimal(rng.choice(["0.00", "5.99"]))
        payment = "shopify_payments" if channel == "shopify" else rng.choice(["PayPal", "Credit card"])
    return _Seed(channel=channel, index=index, external_id=_external_id(channel, index, placed, base), placed=placed,
                 paid=paid, lines=lines, shipping=shipping, name=name, phone=phone, email=email, place=place,
                 street=street, payment=payment)


# ------------------------------------------------------------------------------- channel formats
# Each renderer: (seed, status, updated) -> (payload, headers). Status is one of
# pending_payment, paid, shipped, delivered, cancelled.


def _shopify(s: _Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    country, state, city, postcode = s.place
    first, _, last = s.name.partition(" ")
    address = {"first_name": first, "last_name": last, "name": s.name, "company": None, "address1": s.street,
               "address2": None, "city": city, "province": state, "province_code": state, "country": "United States",
               "country_code": country, "zip": postcode, "phone": s.phone}
    financial = {"pending_payment": "pending", "cancelled": "refunded" if s.paid else "voided"}.get(status, "paid")
    items, subtotal, tax_total = [], Decimal(0), Decimal(0)
    for i, ln in enumerate(s.lines):
        tax = ((ln.gross - ln.discount) * Decimal("0.08")).quantize(CENT)
        subtotal, tax_total = subtotal + ln.gross - ln.discount, tax_total + tax
        items.append({"id": int(s.external_id) * 10 + i, "variant_id": 44_000 + i, "sku": ln.sku, "title": ln.title,
                      "variant_title": None, "quantity": ln.quantity, "current_quantity": ln.quantity,
                      "price": _money(ln.price), "total_discount": "0.00",
                      "fulfillment_status": "fulfilled" if status in ("shipped", "delivered") else None,
                      "requires_shipping": True, "taxable": True,
                      "tax_lines": [{"title": f"{state} State Tax", "price": _money(tax), "rate": 0.08}],
                      "discount_allocations": ([{"amount": _money(ln.discount), "discount_application_index": 0}]
                                               if ln.discount else [])})
    payload: dict[str, Any] = {
        "id": int(s.external_id), "admin_graphql_api_id": f"gid://shopify/Order/{s.external_id}",
        "name": f"#{1001 + s.index}", "order_number": 1001 + s.index, "email": s.email, "phone": None,
        "contact_email": s.email, "created_at": _iso(s.placed, NEW_YORK), "updated_at": _iso(updated, NEW_YORK),
        "processed_at": _iso(s.paid or s.placed, NEW_YORK),
        "cancelled_at": _iso(updated, NEW_YORK) if status == "cancelled" else None,
        "cancel_reason": "customer" if status == "cancelled" else None, "closed_at": None, "currency": "USD",
        "presentment_currency": "USD", "financial_status": financial,
        "fulfillment_status": "fulfilled" if status in ("shipped", "delivered") else None, "test": s.test,
        "source_name": "web", "tags": ", ".join(s.tags), "note": None, "taxes_included": False,
        "payment_gateway_names": ["bogus" if s.test else s.payment],
        "subtotal_price": _money(subtotal), "total_discounts": _money(s.discount),
        "total_line_items_price": _money(s.goods), "total_tax": _money(tax_total),
        "total_price": _money(subtotal + tax_total + s.shipping),
        "customer": {"id": 7000 + s.index, "email": s.email, "first_name": first, "last_name": last,
                     "phone": s.phone},
        "billing_address": address, "shipping_address": address, "line_items": items,
        "shipping_lines": [{"title": "Standard", "code": "standard", "price": _money(s.shipping),
                            "source": "shopify"}],
        "fulfillments": [], "refunds": [],
    }
    return payload, {"content-type": "application/json", "x-shopify-topic": "orders/updated",
                     "x-shopify-shop-domain": "orderhub-demo.myshopify.com", "x-shopify-api-version": "2026-07"}


def _woocommerce(s: _Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    country, state, city, postcode = s.place
    first, _, last = s.name.partition(" ")
    native = {"pending_payment": "pending", "paid": "processing", "shipped": "completed", "delivered": "completed",
              "cancelled": "cancelled"}[status]
    completed = updated if native == "completed" else None
    items, line_tax = [], Decimal(0)
    for i, ln in enumerate(s.lines):
        tax = ((ln.gross - ln.discount) * Decimal("0.19")).quantize(CENT)
        line_tax += tax
        items.append({"id": 300 + i, "name": ln.title, "product_id": 90 + i, "variation_id": 0,
                      "quantity": ln.quantity, "tax_class": "", "subtotal": _money(ln.gross),
                      "subtotal_tax": _money((ln.gross * Decimal("0.19")).quantize(CENT)),
                      "total": _money(ln.gross - ln.discount), "total_tax": _money(tax), "taxes": [],
                      "meta_data": [], "sku": ln.sku, "price": float(ln.price)})
    number = int(s.external_id)
    payload: dict[str, Any] = {
        "id": number, "parent_id": 0, "number": str(number), "order_key": f"wc_order_{number:x}",
        "created_via": "checkout", "version": "9.4.1", "status": native, "currency": "EUR",
        "date_created": _naive(s.placed, BERLIN), "date_created_gmt": _naive(s.placed, UTC),
        "date_modified": _naive(updated, BERLIN), "date_modified_gmt": _naive(updated, UTC),
        "date_paid": _naive(s.paid, BERLIN) if s.paid else None,
        "date_paid_gmt": _naive(s.paid, UTC) if s.paid else None,
        "date_completed": _naive(completed, BERLIN) if completed else None,
        "date_completed_gmt": _naive(completed, UTC) if completed else None,
        "discount_total": _money(s.discount), "discount_tax": "0.00", "shipping_total": _money(s.shipping),
        "shipping_tax": "0.00", "cart_tax": _money(line_tax),
        "total": _money(s.goods - s.discount + line_tax + s.shipping), "total_tax": _money(line_tax),
        "prices_include_tax": False, "customer_id": 20 + s.index, "customer_note": "",
        "billing": {"first_name": first, "last_name": last, "company": "", "address_1": s.street, "address_2": "",
                    "city": city, "state": state, "postcode": postcode, "country": country, "email": s.email,
                    "phone": s.phone},
        "shipping": {"first_name": first, "last_name": last, "company": "", "address_1": s.street, "address_2": "",
                     "city": city, "state": state, "postcode": postcode, "country": country, "phone": ""},
        "payment_method": s.payment, "payment_method_title": "Credit card" if s.payment == "stripe" else "PayPal",
        "transaction_id": f"ch_{number:x}" if s.paid else "", "line_items": items, "tax_lines": [],
        "shipping_lines": [{"id": 400, "method_title": "Flat rate", "method_id": "flat_rate",
                            "total": _money(s.shipping), "total_tax": "0.00"}],
        "fee_lines": [], "refunds": [], "meta_data": [],
        "coupon_lines": ([{"id": 500, "code": "tea10", "discount": _money(s.discount), "discount_tax": "0.00"}]
                         if s.discount else []),
    }
    return payload, {"content-type": "application/json", "x-wc-webhook-source": "https://shop.example.de/",
                     "x-wc-webhook-topic": "order.updated", "x-wc-webhook-resource": "order",
                     "x-wc-webhook-event": "updated", "x-wc-webhook-id": "7"}


_TIKTOK_STATUS = {"pending_payment": "UNPAID", "paid": "AWAITING_SHIPMENT", "shipped": "IN_TRANSIT",
                  "delivered": "DELIVERED", "cancelled": "CANCELLED"}


def _tiktok(s: _Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    country, state, city, postcode = s.place
    native = _TIKTOK_STATUS[status]
    items = []
    for i, ln in enumerate(s.lines):
        for unit in range(ln.quantity):  # TikTok sends one line item per unit
            items.append({"id": f"{s.external_id[:-3]}{i}{unit:02d}", "product_id": f"17293847561{i:05d}",
                          "product_name": ln.title, "sku_id": f"172938475610{i:04d}", "sku_name": "Default",
                          "seller_sku": ln.sku, "sku_type": "NORMAL", "original_price": _money(ln.price),
                          "sale_price": _money(ln.price - ln.unit_discount),
                          "seller_discount": _money(ln.unit_discount),
                          "platform_discount": "0.00", "currency": "USD", "display_status": native, "is_gift": False,
                          "package_id": "", "package_status": "TO_FULFILL", "tracking_number": "", "rts_time": 0,
                          "cancel_reason": ""})
    released = s.paid is not None  # the address is not released while UNPAID
    payload: dict[str, Any] = {
        "id": s.external_id, "status": native, "user_id": f"74940415287634{s.index:05d}",
        "buyer_email": f"buyer{s.index}@scs.tiktokw.us", "buyer_message": "", "create_time": _unix(s.placed),
        "paid_time": _unix(s.paid) if s.paid else 0, "update_time": _unix(updated),
        "fulfillment_type": "FULFILLMENT_BY_SELLER", "delivery_option_name": "Standard shipping",
        "is_on_hold_order": False, "is_cod": False, "payment_method_name": s.payment,
        "cancel_reason": "Buyer changed mind" if status == "cancelled" else "",
        "cancellation_initiator": "BUYER" if status == "cancelled" else "",
        "payment": {"currency": "USD", "original_total_product_price": _money(s.goods),
                    "sub_total": _money(s.goods - s.discount), "seller_discount": _money(s.discount),
                    "platform_discount": "0.00", "original_shipping_fee": _money(s.shipping),
                    "shipping_fee": _money(s.shipping), "tax": "0.00",
                    "total_amount": _money(s.goods - s.discount + s.shipping)},
        "recipient_address": {
            "name": s.name, "phone_number": "(+1)212***" + s.phone[-3:], "address_detail": s.street,
            "full_address": f"{s.street}, {city}, {state}, United States", "postal_code": postcode,
            "region_code": country,
            "district_info": [{"address_level_name": "Country", "address_name": "United States", "address_level": "L0"},
                              {"address_level_name": "State", "address_name": state, "address_level": "L1"},
                              {"address_level_name": "County", "address_name": f"{city} County",
                               "address_level": "L2"},
                              {"address_level_name": "City", "address_name": city, "address_level": "L3"}],
        } if released else None,
        "line_items": items, "packages": [],
    }
    return payload, {"content-type": "application/json"}


def _tiktok_status_push(s: _Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    payload = {"type": 1, "tts_notification_id": f"73271123930573{s.index:05d}", "shop_id": "7494726673780148744",
               "timestamp": _unix(updated) + 5,
               "data": {"order_id": s.external_id, "order_status": _TIKTOK_STATUS[status], "is_on_hold_order": False,
                        "update_time": _unix(updated)}}
    return payload, {"content-type": "application/json"}


def _taobao(s: _Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    province, city, district, postcode = s.place
    native = {"pending_payment": "WAIT_BUYER_PAY", "paid": "WAIT_SELLER_SEND_GOODS",
              "shipped": "WAIT_BUYER_CONFIRM_GOODS", "delivered": "TRADE_FINISHED",
              "cancelled": "TRADE_CLOSED" if s.paid else "TRADE_CLOSED_BY_TAOBAO"}[status]
    subs = [{"oid": int(s.external_id) + 1 + i, "num_iid": 712_345_678_900 + i, "sku_id": 5_123_456_789_000 + i,
             "outer_iid": ln.sku.rsplit("-", 1)[0], "outer_sku_id": ln.sku, "title": ln.title,
             "price": _money(ln.price), "num": ln.quantity, "discount_fee": _money(ln.discount), "adjust_fee": "0.00",
             "total_fee": _money(ln.gross - ln.discount), "payment": _money(ln.gross - ln.discount),
             "status": native, "refund_status": "NO_REFUND", "is_oversold": False}
            for i, ln in enumerate(s.lines)]
    payload: dict[str, Any] = {
        "tid": s.external_id, "tid_str": s.external_id, "status": native, "type": "fixed", "trade_from": "WAP,WAP",
        "created": _cn_time(s.placed), "modified": _cn_time(updated),
        "total_fee": _money(s.goods), "post_fee": _money(s.shipping), "discount_fee": _money(s.discount),
        "adjust_fee": "0.00", "payment": _money(s.goods - s.discount + s.shipping), "point_fee": 0,
        "buyer_nick": f"t**{s.index % 10}", "seller_nick": "西湖茶社旗舰店", "shipping_type": "express",
        "receiver_name": _mask_name(s.name), "receiver_state": province, "receiver_city": city,
        "receiver_district": district, "receiver_town": "", "receiver_address": _masked_street(s.street),
        "receiver_zip": postcode, "receiver_mobile": s.phone, "receiver_phone": "", "buyer_message": "",
        "seller_memo": "", "seller_flag": 0, "orders": {"order": subs},
    }
    if s.paid:
        payload["pay_time"] = _cn_time(s.paid)
    if status in ("shipped", "delivered"):
        payload["consign_time"] = _cn_time(updated)
    return payload, {"content-type": "application/json"}


def _jd(s: _Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    province, city, district, _ = s.place
    native = {"paid": "WAIT_SELLER_STOCK_OUT", "shipped": "WAIT_GOODS_RECEIVE_CONFIRM", "delivered": "FINISHED_L",
              "cancelled": "TRADE_CANCELED", "pending_payment": "WAIT_SELLER_STOCK_OUT"}[status]
    short = province.removesuffix("省").removesuffix("市")
    payload: dict[str, Any] = {
        "order_id": s.external_id, "vender_id": "10086123", "order_type": "22", "pay_type": s.payment,
        "order_total_price": _money(s.goods), "order_seller_price": _money(s.goods - s.discount),
        "order_payment": _money(s.goods - s.discount + s.shipping), "freight_price": _money(s.shipping),
        "seller_discount": _money(s.discount), "balance_used": "0.00", "order_state": native,
        "order_state_remark": {"WAIT_SELLER_STOCK_OUT": "等待出库", "WAIT_GOODS_RECEIVE_CONFIRM": "等待确认收货",
                               "FINISHED_L": "完成", "TRADE_CANCELED": "已取消"}[native],
        "delivery_type": "任意时间", "invoice_info": "不需要开具发票", "order_remark": "", "vender_remark": "",
        "order_start_time": _cn_time(s.placed),
        "payment_confirm_time": _cn_time(s.paid) if s.paid else "0001-01-01 00:00:00",
        "order_end_time": _cn_time(updated) if native in ("FINISHED_L", "TRADE_CANCELED") else "0001-01-01 00:00:00",
        "modified": _cn_time(updated),
        "consignee_info": {"fullname": _mask_name(s.name), "telephone": "", "mobile": s.phone,
                           "full_address": f"{short}{city}{district}{_masked_street(s.street)}", "province": short,
                           "city": city, "county": district, "town": ""},
        "item_info_list": [{"sku_id": str(100_012_345_600 + i), "outer_sku_id": ln.sku, "sku_name": ln.title,
                            "jd_price": _money(ln.price), "item_total": str(ln.quantity),
                            "ware_id": str(100_000_123_400 + i), "gift_point": "0", "new_store_id": "0"}
                           for i, ln in enumerate(s.lines)],
        "waybill": f"JDVA{s.external_id[-8:]}" if status in ("shipped", "delivered") else "", "logistics_id": "",
        "return_order": "0", "store_order": "", "pin": f"jd_{s.index:03d}****b2a",
    }
    return payload, {"content-type": "application/json"}


def _pinduoduo(s: _Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    province, city, district, _ = s.place
    order_status = {"shipped": 2, "delivered": 3}.get(status, 1)
    confirm = 0 if s.paid is None else 1
    refund = 1
    if status == "cancelled":
        if s.paid:
            refund = 4           # refunded before shipping
        else:
            confirm = 2          # 已取消
    payload: dict[str, Any] = {
        "order_sn": s.external_id, "order_status": order_status, "refund_status": refund, "confirm_status": confirm,
        "group_status": 1, "after_sales_status": 0, "trade_type": 0, "risk_control_status": 0,
        "pay_type": s.payment if s.paid else "", "pay_no": f"42000023452026{s.index:012d}" if s.paid else "",
        "created_time": _cn_time(s.placed), "confirm_time": _cn_time(s.paid) if s.paid else "",
        "pay_time": _cn_time(s.paid) if s.paid else "", "updated_at": _cn_time(updated),
        "shipping_time": _cn_time(updated) if status in ("shipped", "delivered") else "", "receive_time": "",
        "goods_amount": _money(s.goods), "discount_amount": _money(s.discount), "platform_discount": "0.00",
        "seller_discount": _money(s.discount), "capital_free_discount": "0.00", "postage": _money(s.shipping),
        "pay_amount": _money(s.goods - s.discount + s.shipping), "country": "中国", "country_id": 1,
        "province": province, "city": city, "town": district, "address": _masked_street(s.street),
        "receiver_address": f"{province}{city}{district}{_masked_street(s.street)}",
        "receiver_name": _mask_name(s.name), "receiver_phone": s.phone, "logistics_id": 0, "tracking_number": "",
        "buyer_memo": "", "remark": "", "is_lucky_flag": 1, "is_pre_sale": 0, "free_sf": 0,
        "item_list": [{"goods_id": 489_123_456_700 + i, "sku_id": 1_234_567_890_100 + i, "outer_id": ln.sku,
                       "goods_name": ln.title, "goods_spec": "默认", "goods_price": _money(ln.price),
                       "goods_count": ln.quantity} for i, ln in enumerate(s.lines)],
    }
    return payload, {"content-type": "application/json"}


def _douyin(s: _Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    province, city, district, _ = s.place
    native = {"pending_payment": 1, "paid": 2, "shipped": 3, "delivered": 5, "cancelled": 4}[status]
    desc = {1: "待支付", 2: "备货中", 3: "已发货", 4: "已取消", 5: "已完成"}[native]
    subs = [{"order_id": str(int(s.external_id) + 1 + i), "parent_order_id": s.external_id, "order_level": 3,
             "product_name": ln.title, "sku_id": 1_759_876_543_210_000 + i, "out_sku_id": "", "code": ln.sku,
             "item_num": ln.quantity, "goods_price": _fen(ln.price), "origin_amount": _fen(ln.gross),
             "order_amount": _fen(ln.gross - ln.discount), "pay_amount": _fen(ln.gross - ln.discount),
             "post_amount": 0, "order_status": native, "create_time": _unix(s.placed), "update_time": _unix(updated)}
            for i, ln in enumerate(s.lines)]
    address = {"province": {"name": province, "id": "44"}, "city": {"name": city, "id": "4401"},
               "town": {"name": district, "id": "440106"}, "street": {"name": "", "id": ""},
               "detail": _masked_street(s.street)}
    payload: dict[str, Any] = {
        "shop_id": 12345678, "shop_name": "西湖茶社抖音小店", "order_id": s.external_id, "order_level": 2,
        "order_status": native, "order_status_desc": desc, "main_status": native, "main_status_desc": desc,
        "order_type": 0, "b_type": 2, "biz": 2, "create_time": _unix(s.placed),
        "pay_time": _unix(s.paid) if s.paid else 0, "update_time": _unix(updated),
        "finish_time": _unix(updated) if native in (4, 5) else 0,
        "ship_time": _unix(updated) if native in (3, 5) else 0,
        "order_amount": _fen(s.goods - s.discount + s.shipping), "pay_amount": _fen(s.goods - s.discount + s.shipping),
        "post_amount": _fen(s.shipping), "promotion_amount": _fen(s.discount), "modify_amount": 0,
        "pay_type": int(s.payment) if s.paid else 0, "buyer_words": "", "seller_words": "",
        "mask_post_receiver": _mask_name(s.name), "mask_post_tel": s.phone[:3] + "******" + s.phone[-2:],
        "mask_post_addr": address, "sku_order_list": subs,
    }
    return payload, {"content-type": "application/json"}


def _own_site(s: _Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    province, city, district, postcode = s.place
    payload: dict[str, Any] = {
        "external_id": s.external_id, "channel": "own_site", "shop": "demo-own_site", "currency": "CNY",
        "source": "wechat_mini_program" if s.index % 2 else "web", "status": status,
        "placed_at": _iso(s.placed, CHINA), "paid_at": _iso(s.paid, CHINA) if s.paid else None,
        "updated_at": _iso(updated, CHINA),
        "buyer": {"name": s.name, "phone": s.phone, "email": None},
        "shipping_address": {"country": "CN", "province": province, "city": city, "district": district,
                             "detail": s.street, "postcode": postcode, "name": s.name, "phone": s.phone},
        "lines": [{"sku": ln.sku, "title": ln.title, "quantity": ln.quantity, "unit_price": _money(ln.price),
                   "discount": _money(ln.discount)} for ln in s.lines],
        "shipping_fee": _money(s.shipping), "discount": "0.00", "tags": s.tags, "payment_method": s.payment,
    }
    return payload, {"content-type": "application/json"}


_Renderer = Callable[[_Seed, str, datetime], tuple[dict[str, Any], dict[str, str]]]
RENDERERS: dict[str, _Renderer] = {
    "shopify": _shopify, "woocommerce": _woocommerce, "tiktok_shop": _tiktok, "taobao": _taobao, "jd": _jd,
    "pinduoduo": _pinduoduo, "douyin": _douyin, "own_site": _own_site,
}
# Channels that report a delivered / completed order (Shopify and WooCommerce stop at fulfilled).
DELIVERS = frozenset({"tiktok_shop", "taobao", "jd", "pinduoduo", "douyin", "own_site"})


# ------------------------------------------------------------------------------------- the plan


def split_orders(orders: int, channels: Iterable[str] = CHANNELS) -> dict[str, int]:
    """``orders`` new orders spread over ``channels`` as evenly as possible (earlier ones get the rest)."""
    names = list(channels)
    if orders < 0:
        raise ValueError("orders must be >= 0")
    base, rest = divmod(orders, len(names))
    return {c: base + (1 if i < rest else 0) for i, c in enumerate(names)}


def _topic(channel: str, kind: str, status: str) -> dict[str, str]:
    """The topic headers of Shopify and WooCommerce pushes (which event fired the webhook)."""
    if channel == "shopify":
        topics = {"paid": "orders/paid", "shipped": "orders/fulfilled", "cancelled": "orders/cancelled"}
        topic = "orders/create" if kind == NEW else topics.get(status) if kind == UPDATE else None
        return {"x-shopify-topic": topic or "orders/updated"}
    if channel == "woocommerce":
        event = "created" if kind == NEW else "updated"
        return {"x-wc-webhook-topic": f"order.{event}", "x-wc-webhook-event": event}
    return {}


class _Builder:
    def __init__(self) -> None:
        self.messages: list[PlannedMessage] = []

    def add(self, seed: _Seed, status: str, updated: datetime, *, kind: str, phase: int, note: str,
            renderer: _Renderer | None = None) -> PlannedMessage:
        payload, headers = (renderer or RENDERERS[seed.channel])(seed, status, updated)
        headers.update(_topic(seed.channel, kind, status))
        message = PlannedMessage(channel=seed.channel, body=_dump(payload), headers=headers, note=note, kind=kind,
                                 phase=phase, external_id=seed.external_id)
        self.messages.append(message)
        return message


def plan_traffic(orders: int, *, seed: int, now: datetime, channels: Iterable[str] = CHANNELS,
                 duplicate_rate: float = 0.1, broken: bool = True) -> TrafficPlan:
    """The pushes ``orders`` simulated orders cause across ``channels`` (see the module docstring).

    ``now`` must be timezone-aware; every time in the payloads lies before it.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC).replace(microsecond=0)
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not security
    per_channel = split_orders(orders, channels)
    base = rng.randrange(1_000, 9_000) * 100
    story = _Story(rng, now)
    for channel, count in per_channel.items():
        for index in range(count):
            story.order(_seed(rng, channel, index, now, base))
    story.late_versions()
    out = story.out
    # The channel retrying: exact re-sends of earlier pushes.
    candidates = [m for m in out.messages if m.kind in (NEW, UPDATE)]
    retries = [m for m in candidates if rng.random() < duplicate_rate] or candidates[:1]
    for m in retries:
        out.messages.append(PlannedMessage(channel=m.channel, body=m.body, headers=m.headers, kind=DUPLICATE,
                                           phase=max(m.phase, 1), external_id=m.external_id,
                                           note=f"retry of: {m.note}"))
    names = set(per_channel)
    if broken:
        out.messages.extend(_broken(rng, now, base, names))
    if "woocommerce" in names:
        out.messages.append(PlannedMessage(channel="woocommerce", body=b"webhook_id=7", kind=PING, phase=0,
                                           headers={"content-type": "application/x-www-form-urlencoded"},
                                           note="WooCommerce ping sent when the webhook was created"))
    ordered = sorted(out.messages, key=lambda m: m.phase)  # stable: keeps the order within a phase
    return TrafficPlan(messages=ordered, orders=dict(per_channel))


class _Story:
    """What happens to each simulated order after it is placed, as pushes."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng, self.now = rng, now
        self.out = _Builder()
        self.shipped: list[_Seed] = []
        self.status_pushed = False

    def order(self, s: _Seed) -> None:
        special = ""
        if s.channel == "shopify" and s.index == 0:
            s.test, s.tags, special = True, ["test"], "test order (held by the test_order filter rule)"
        elif s.channel == "own_site" and s.index == 0:
            s.payment, s.tags = "usdt_wallet", ["unusual_payment"]
            special = "paid with an unusual method, tagged unusual_payment"
        if special:
            s.paid = s.paid or s.placed + timedelta(seconds=30)
        self.out.add(s, s.status, s.paid or s.placed, kind=NEW, phase=0, note=special or f"new {s.status} order")
        if not special:
            self._later(s)

    def _later(self, s: _Seed) -> None:
        rng, out = self.rng, self.out
        roll = rng.random()
        step = s.placed + timedelta(seconds=rng.randint(3600, 5 * 3600))
        if s.paid is None:
            if roll < 0.25:
                out.add(s, "cancelled", step, kind=UPDATE, phase=1, note="cancelled before payment")
            elif roll < 0.75:
                s.paid = s.placed + timedelta(seconds=rng.randint(600, 3000))
                out.add(s, "paid", s.paid, kind=UPDATE, phase=1, note="paid later")
        elif roll < 0.08:
            out.add(s, "cancelled", step, kind=UPDATE, phase=1, note="cancelled after payment")
        elif roll < 0.55:
            if s.channel == "tiktok_shop" and not self.status_pushed:
                # A status-only push (webhook type 1): names the order, doesn't carry it.
                self.status_pushed = True
                out.add(s, "shipped", step, kind=STATUS_PUSH, phase=1, renderer=_tiktok_status_push,
                        note="status-only push (type 1): IN_TRANSIT")
                return
            out.add(s, "shipped", step, kind=UPDATE, phase=1, note="shipped")
            self.shipped.append(s)
            if s.channel in DELIVERS and rng.random() < 0.4:
                delivered = step + timedelta(seconds=rng.randint(3600, 3 * 3600))
                out.add(s, "delivered", min(delivered, self.now - timedelta(minutes=1)), kind=UPDATE, phase=2,
                        note="delivered / completed")

    def late_versions(self, limit: int = 3) -> None:
        """Status jumping: an older "paid" version arriving after the order shipped (at most one
        per channel, ``limit`` in all, so the channel circuit breaker stays closed)."""
        late: set[str] = set()
        shipped = list(self.shipped)
        self.rng.shuffle(shipped)
        for s in shipped:
            if len(late) >= limit:
                break
            if s.channel in late or s.paid is None:
                continue
            late.add(s.channel)
            self.out.add(s, "paid", s.paid + timedelta(seconds=30), kind=STALE, phase=2,
                         note="late 'paid' version arriving after the order shipped (status jumping)")


def _broken(rng: random.Random, now: datetime, base: int, channels: set[str]) -> list[PlannedMessage]:
    """Payloads with a required field missing: dead-lettered, the field named in channel health."""
    found: list[PlannedMessage] = []
    if "douyin" in channels:
        s = _seed(rng, "douyin", 99_999, now, base)
        if len(s.lines) < 2:
            s.lines.append(_Line(*PRODUCTS_CN[0][:2], 1, Decimal(PRODUCTS_CN[0][2])))
        s.paid = s.paid or s.placed + timedelta(seconds=20)
        payload, headers = _douyin(s, "paid", s.paid)
        del payload["sku_order_list"][1]["item_num"]
        found.append(PlannedMessage(channel="douyin", body=_dump(payload), headers=headers, kind=BROKEN, phase=0,
                                    external_id=s.external_id, expect_field="sku_order_list[1].item_num",
                                    note="sub-order without item_num"))
    if "jd" in channels:
        s = _seed(rng, "jd", 99_999, now, base)
        payload, headers = _jd(s, "paid", s.paid or s.placed)
        del payload["order_start_time"]
        found.append(PlannedMessage(channel="jd", body=_dump(payload), headers=headers, kind=BROKEN, phase=0,
                                    external_id=s.external_id, expect_field="order_start_time",
                                    note="order without order_start_time"))
    return found


# ---------------------------------------------------------------------------------- signatures


def shop_app_key(channel: str) -> str | None:
    """The app key a simulated shop of ``channel`` is registered with (None: the scheme needs none)."""
    return f"demo-{channel}-app" if channel in APP_KEY_CHANNELS else None


def signature_headers(spec: ChannelSpec, message: PlannedMessage, *, secret: str, url: str,
                      app_key: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    """``message``'s headers plus the signature its channel would send to ``url`` with ``secret``."""
    signed = sign(spec.signature, body=message.body, secret=secret, url=url, app_key=app_key,
                  header=spec.signature_header, timestamp=timestamp)
    return {**message.headers, **signed}

"""Simulated channel payloads: what each sales channel's order push looks like, for the demo.

A :class:`Seed` is a channel-neutral simulated order; :data:`RENDERERS` holds, per channel, the
function that writes it in the channel's native format (money in the channel's unit, times
in its zone and format, statuses in its vocabulary) together with the push's non-signature
headers. :mod:`orderhub.simulation.channel_traffic` decides which orders and versions are
pushed, and when.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")
CHINA = timezone(timedelta(hours=8), "CST")       # China has no DST: a fixed +08:00 is exact
NEW_YORK = timezone(timedelta(hours=-5), "EST")   # the simulated Shopify store's offset
BERLIN = timezone(timedelta(hours=1), "CET")      # the simulated WooCommerce site's local time


@dataclass(slots=True)
class Line:
    """One line of a simulated order: a product, how many, and the per-unit price and discount."""

    sku: str
    title: str
    quantity: int
    price: Decimal
    unit_discount: Decimal = Decimal(0)

    @property
    def gross(self) -> Decimal:
        """The line's price before discounts."""
        return self.price * self.quantity

    @property
    def discount(self) -> Decimal:
        """The line's discount (every unit's)."""
        return self.unit_discount * self.quantity


@dataclass(slots=True)
class Seed:
    """A channel-neutral simulated order that each channel renders in its own format."""

    channel: str
    index: int
    external_id: str
    placed: datetime
    paid: datetime | None
    lines: list[Line]
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
        """The lines' price before discounts."""
        return sum((ln.gross for ln in self.lines), Decimal(0))

    @property
    def discount(self) -> Decimal:
        """The lines' discounts."""
        return sum((ln.discount for ln in self.lines), Decimal(0))

    @property
    def status(self) -> str:
        """paid once the order is paid, else pending_payment."""
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


def _mask_name(name: str) -> str:
    return name[0] + "**"


def _masked_street(street: str) -> str:
    return street.split(" ", maxsplit=1)[0] + "***号"


# ------------------------------------------------------------------------------- channel formats
# Each renderer: (seed, status, updated) -> (payload, headers). Status is one of
# pending_payment, paid, shipped, delivered, cancelled.


def _shopify(s: Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
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


def _woocommerce(s: Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
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


def _tiktok(s: Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
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


def tiktok_status_push(s: Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    """A TikTok Shop status-only push (webhook type 1): names the order and its status, doesn't carry it."""
    payload = {"type": 1, "tts_notification_id": f"73271123930573{s.index:05d}", "shop_id": "7494726673780148744",
               "timestamp": _unix(updated) + 5,
               "data": {"order_id": s.external_id, "order_status": _TIKTOK_STATUS[status], "is_on_hold_order": False,
                        "update_time": _unix(updated)}}
    return payload, {"content-type": "application/json"}


def _taobao(s: Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
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


def _jd(s: Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
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


def _pinduoduo(s: Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
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


def _douyin(s: Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
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


def _own_site(s: Seed, status: str, updated: datetime) -> tuple[dict[str, Any], dict[str, str]]:
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


Renderer = Callable[[Seed, str, datetime], tuple[dict[str, Any], dict[str, str]]]
RENDERERS: dict[str, Renderer] = {
    "shopify": _shopify, "woocommerce": _woocommerce, "tiktok_shop": _tiktok, "taobao": _taobao, "jd": _jd,
    "pinduoduo": _pinduoduo, "douyin": _douyin, "own_site": _own_site,
}
# Channels that report a delivered / completed order (Shopify and WooCommerce stop at fulfilled).
DELIVERS = frozenset({"tiktok_shop", "taobao", "jd", "pinduoduo", "douyin", "own_site"})


# ------------------------------------------------------------------------------- after-sale pushes
# What each channel sends when a buyer asks for (or gets) a refund / return, in the shapes the
# built-in specs' `aftersale:` sections read (docs/channels.md §10). Canonical type and state in,
# the channel's own codes out.

_TAOBAO_REFUND = {  # state -> (TMC topic, refund status)
    "requested": ("taobao_refund_RefundCreated", "WAIT_SELLER_AGREE"),
    "return_shipped": ("taobao_refund_RefundBuyerReturnGoods", "WAIT_SELLER_CONFIRM_GOODS"),
    "refunded": ("taobao_refund_RefundSuccess", "SUCCESS"),
    "cancelled": ("taobao_refund_RefundClosed", "CLOSED"),
    "rejected": ("taobao_refund_RefundSellerRefuseAgreement", "SELLER_REFUSE_BUYER"),
}
_DOUYIN_AFTERSALE_STATE = {"requested": 6, "return_shipped": 11, "refunded": 12, "cancelled": 28, "rejected": 27}
_DOUYIN_AFTERSALE_TYPE = {"return_refund": 0, "refund_only": 1, "exchange": 3, "price_protection": 6, "reship": 7}
_PDD_AFTERSALE_STATE = {"requested": 2, "return_shipped": 3, "refunded": 10, "cancelled": 11, "rejected": 9}
_PDD_AFTERSALE_TYPE = {"refund_only": 2, "return_refund": 3, "exchange": 4, "reship": 5}
_TIKTOK_RETURN_STATE = {"requested": "RETURN_OR_REFUND_REQUEST_PENDING", "return_shipped": "BUYER_SHIPPED_ITEM",
                        "refunded": "RETURN_OR_REFUND_REQUEST_COMPLETE", "cancelled": "RETURN_OR_REFUND_REQUEST_CANCEL",
                        "rejected": "REFUND_OR_RETURN_REQUEST_REJECT"}
_TIKTOK_RETURN_TYPE = {"refund_only": "REFUND", "return_refund": "RETURN_AND_REFUND", "exchange": "REPLACEMENT"}


def _next_id(text: str) -> str:
    # A sibling id (sub-order of an order): the next number, or the id itself when not numeric.
    return str(int(text) + 1) if text.isdigit() else text


def _shares(total: Decimal, parts: int) -> list[Decimal]:
    # ``total`` split into ``parts`` cent amounts that add up exactly (remainder on the first).
    cents = _fen(total)
    base, rest = divmod(cents, parts)
    return [Decimal(base + (rest if i == 0 else 0)) / 100 for i in range(parts)]


def _native(table: dict[str, Any], value: str, channel: str, what: str) -> Any:
    if value not in table:
        raise ValueError(f"{channel} has no after-sale {what} for {value!r}; known: {', '.join(table)}")
    return table[value]


@dataclass(frozen=True, slots=True)
class _Case:
    """An after-sale push being rendered: the helper's arguments, checked and defaulted."""

    refund_id: str
    order_id: str
    state: str
    type: str
    money: Decimal | None
    reason: str
    lines: Sequence[tuple[str, int]]
    carrier: str | None
    waybill: str | None
    when: datetime
    currency: str


_JSON = {"content-type": "application/json"}


def _taobao_refund(c: _Case) -> tuple[dict[str, Any], dict[str, str]]:
    topic, status = _native(_TAOBAO_REFUND, c.state, "taobao", "state")
    if c.type not in ("refund_only", "return_refund"):
        raise ValueError("taobao refunds are refund_only or return_refund")
    content: dict[str, Any] = {
        "refund_id": c.refund_id, "tid": c.order_id, "oid": _next_id(c.order_id), "buyer_nick": "t**1",
        "seller_nick": "西湖茶社旗舰店", "refund_phase": "onsale", "has_good_return": c.type == "return_refund",
        "reason": c.reason, "status": status, "modified": _cn_time(c.when),
    }
    if c.money is not None:
        content["refund_fee"] = _money(c.money)
    if c.lines:
        content.update(outer_sku_id=c.lines[0][0], num=c.lines[0][1])
    if c.waybill:
        content.update(company_name=c.carrier or "", sid=c.waybill)
    return {"topic": topic, "content": content}, dict(_JSON)


def _douyin_aftersale(c: _Case) -> tuple[dict[str, Any], dict[str, str]]:
    data: dict[str, Any] = {
        "aftersale_id": c.refund_id, "p_id": c.order_id, "s_id": _next_id(c.order_id), "shop_id": 12345678,
        "aftersale_status": _native(_DOUYIN_AFTERSALE_STATE, c.state, "douyin", "state"),
        "aftersale_type": _native(_DOUYIN_AFTERSALE_TYPE, c.type, "douyin", "type"),
        "reason": c.reason, "reason_code": 7, "apply_time": _unix(c.when), "update_time": _unix(c.when),
    }
    if c.money is not None:
        data["refund_amount"] = _fen(c.money)
    if c.waybill:
        data.update(logistics_company_name=c.carrier or "", logistics_code=c.waybill)
    return {"tag": "200", "msg_id": f"{c.refund_id}:{_unix(c.when)}", "data": data}, dict(_JSON)


def _pinduoduo_refund(c: _Case) -> tuple[dict[str, Any], dict[str, str]]:
    if c.state == "return_shipped" and (c.type != "return_refund" or not c.waybill):
        raise ValueError("a pinduoduo return_shipped case is a return_refund with a return_waybill")
    refund: dict[str, Any] = {
        "id": c.refund_id, "order_sn": c.order_id,
        "after_sales_status": _native(_PDD_AFTERSALE_STATE, c.state, "pinduoduo", "state"),
        "after_sales_type": _native(_PDD_AFTERSALE_TYPE, c.type, "pinduoduo", "type"),
        "after_sale_reason": c.reason, "created_time": _cn_time(c.when), "updated_time": _cn_time(c.when),
        "tracking_number": "",
    }
    if c.state == "requested" and c.type == "return_refund":
        refund["after_sales_status"] = 3      # 退货退款, 待商家处理 (no return parcel yet)
    if c.money is not None:
        refund["refund_amount"] = _fen(c.money)
    if c.waybill and c.state != "requested":
        refund.update(shipping_name=c.carrier or "", tracking_number=c.waybill)
    if c.lines:
        refund.update(outer_id=c.lines[0][0], goods_number=c.lines[0][1])
    kind = "pdd_refund_RefundCreated" if c.state == "requested" else "pdd_refund_RefundUpdated"
    return {"type": kind, "refund": refund}, dict(_JSON)


def _shopify_refund(c: _Case) -> tuple[dict[str, Any], dict[str, str]]:
    if c.state != "refunded":
        raise ValueError("a Shopify refunds/create webhook is always a done refund: state 'refunded'")
    if c.type not in ("refund_only", "return_refund"):
        raise ValueError("Shopify refunds are refund_only or return_refund")
    restock = "return" if c.type == "return_refund" else "no_restock"
    refund_no, order_no = int(c.refund_id), int(c.order_id)   # Shopify ids are numbers
    shares = _shares(c.money, len(c.lines)) if c.money is not None and c.lines else [Decimal(0)] * len(c.lines)
    items = [{"id": refund_no * 10 + i, "line_item_id": order_no * 10 + i, "quantity": qty,
              "restock_type": restock, "location_id": None, "subtotal": _money(share), "total_tax": "0.00",
              "line_item": {"id": order_no * 10 + i, "sku": sku, "quantity": qty}}
             for i, ((sku, qty), share) in enumerate(zip(c.lines, shares, strict=True))]
    transactions = [] if c.money is None else [
        {"id": refund_no + 1, "order_id": order_no, "kind": "refund", "gateway": "shopify_payments",
         "status": "success", "amount": _money(c.money), "currency": c.currency,
         "created_at": _iso(c.when, NEW_YORK), "parent_id": order_no + 7}]
    body: dict[str, Any] = {
        "id": refund_no, "order_id": order_no, "created_at": _iso(c.when, NEW_YORK),
        "processed_at": _iso(c.when, NEW_YORK), "note": c.reason, "restock": restock == "return", "user_id": None,
        "admin_graphql_api_id": f"gid://shopify/Refund/{c.refund_id}", "refund_line_items": items,
        "transactions": transactions, "order_adjustments": [],
    }
    return body, {**_JSON, "x-shopify-topic": "refunds/create",
                  "x-shopify-shop-domain": "orderhub-demo.myshopify.com", "x-shopify-api-version": "2026-07"}


def _tiktok_return(c: _Case) -> tuple[dict[str, Any], dict[str, str]]:
    push = {"type": 12, "tts_notification_id": f"7327{c.refund_id[-12:]}", "shop_id": "7494726673780148744",
            "timestamp": _unix(c.when) + 2,
            "data": {"order_id": c.order_id, "return_role": "BUYER",
                     "return_type": _native(_TIKTOK_RETURN_TYPE, c.type, "tiktok_shop", "type"),
                     "return_status": _native(_TIKTOK_RETURN_STATE, c.state, "tiktok_shop", "state"),
                     "return_id": c.refund_id, "create_time": _unix(c.when), "update_time": _unix(c.when)}}
    return push, dict(_JSON)


_AFTERSALE_RENDERERS: dict[str, Callable[[_Case], tuple[dict[str, Any], dict[str, str]]]] = {
    "taobao": _taobao_refund, "douyin": _douyin_aftersale, "pinduoduo": _pinduoduo_refund,
    "shopify": _shopify_refund, "tiktok_shop": _tiktok_return,
}
AFTERSALE_CHANNELS = tuple(_AFTERSALE_RENDERERS)


def aftersale_payload(
    channel: str, *, refund_id: str, order_external_id: str, state: str, amount: Decimal | str | None,
    type: str = "refund_only", reason: str | None = None, lines: Sequence[tuple[str, int]] = (),
    return_carrier: str | None = None, return_waybill: str | None = None, updated: datetime | None = None,
    currency: str = "USD",
) -> tuple[dict[str, Any], dict[str, str]]:
    """A realistic after-sale push of ``channel`` and its non-signature headers.

    ``state`` is one of requested, return_shipped, refunded, cancelled, rejected (Shopify:
    refunded only, a Shopify refund is already executed); ``type`` an after-sale type the
    channel has; ``amount`` in major units (``Decimal("59.90")``), None for none;
    ``lines`` (sku, quantity) pairs: Taobao and Pinduoduo refund one sub-order per case
    (at most one line), Douyin and TikTok Shop pushes carry no items (ignored).
    ``reason`` defaults to a typical buyer reason in the channel's language.
    ``currency`` is used by Shopify only (the Chinese channels are CNY, TikTok gives no amount).
    ``updated`` defaults to now (whole seconds); pass it for a stable dedup key.
    Sign the body with ``orderhub.adapters.channels.signatures.sign``. ValueError for a
    channel, type or state the channel can't express.
    """
    render = _AFTERSALE_RENDERERS.get(channel)
    if render is None:
        raise ValueError(f"no after-sale payload for channel {channel!r}; known: {', '.join(AFTERSALE_CHANNELS)}")
    if channel in ("taobao", "pinduoduo") and len(lines) > 1:
        raise ValueError(f"{channel} refunds one sub-order per case: give at most one line")
    if reason is None:
        reason = "Customer changed their mind" if channel in ("shopify", "tiktok_shop") else "不想要了"
    return render(_Case(refund_id=refund_id, order_id=order_external_id, state=state, type=type,
                        money=None if amount is None else Decimal(str(amount)), reason=reason, lines=tuple(lines),
                        carrier=return_carrier, waybill=return_waybill,
                        when=(updated or datetime.now(UTC)).replace(microsecond=0), currency=currency))

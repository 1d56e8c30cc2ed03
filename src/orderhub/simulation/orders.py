"""Simulated canonical orders for the demo and the benchmarks.

Deterministic for a given seed, so a re-run of ``orderhub demo`` produces the same orders
(and the API's idempotency turns the re-run into a no-op instead of duplicates).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

PRODUCTS_CN = [
    ("TEA-LJ-250", "西湖龙井 250g", "59.90"), ("TEA-PE-357", "普洱熟茶饼 357g", "128.00"),
    ("TEA-TGY-100", "安溪铁观音 100g", "45.50"), ("CUP-GLS-01", "双层玻璃杯 300ml", "39.00"),
    ("SET-GIFT-01", "茶具礼盒套装", "299.00"), ("SNK-NUT-500", "每日坚果 500g", "79.90"),
    ("HNY-ACA-1K", "洋槐蜂蜜 1kg", "88.00"), ("RCE-WCH-5K", "五常大米 5kg", "69.90"),
]
PRODUCTS_INTL = [
    ("TEA-MATCHA-100", "Ceremonial Matcha 100g", "24.99"), ("TEA-EARL-200", "Earl Grey Loose Leaf 200g", "12.50"),
    ("KTL-CAST-08", "Cast Iron Kettle 0.8L", "64.00"), ("CUP-PORC-02", "Porcelain Cup Pair", "18.75"),
]
CN_PLACES = [
    ("浙江省", "杭州市", "西湖区", "310000"), ("上海市", "上海市", "浦东新区", "200120"),
    ("广东省", "深圳市", "南山区", "518000"), ("北京市", "北京市", "朝阳区", "100020"),
    ("四川省", "成都市", "武侯区", "610041"), ("江苏省", "南京市", "鼓楼区", "210008"),
    ("湖北省", "武汉市", "洪山区", "430070"), ("福建省", "厦门市", "思明区", "361001"),
]
CN_NAMES = ["王小明", "李娜", "张伟", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴芳"]
US_PLACES = [("CA", "San Francisco", "94103"), ("NY", "New York", "10001"), ("WA", "Seattle", "98101"),
             ("TX", "Austin", "73301")]
US_NAMES = ["Alex Kim", "Jordan Lee", "Sam Patel", "Taylor Brooks", "Morgan Diaz"]
STREETS = ["文三路 90 号", "世纪大道 100 号", "科技园南路 18 号", "建国路 88 号", "人民南路四段 9 号"]


@dataclass(frozen=True, slots=True)
class ChannelProfile:
    """How one simulated channel's orders look."""

    channel: str
    shop: str
    currency: str
    prefix: str
    domestic: bool


CHANNELS = [
    ChannelProfile("own_site", "main", "CNY", "WEB", True),
    ChannelProfile("wechat_mini", "mp-tea", "CNY", "WX", True),
    ChannelProfile("own_site", "outlet", "CNY", "OUT", True),
    ChannelProfile("shopify", "us-store", "USD", "SH", False),
]


def _mask_phone(rng: random.Random) -> str:
    return f"1{rng.choice('3578')}{rng.randint(0, 9)}****{rng.randint(1000, 9999)}"


def sample_order(rng: random.Random, n: int, *, placed_at: datetime | None = None,
                 status: str | None = None) -> dict[str, Any]:
    """The ``n``-th simulated order as a ``POST /api/v1/orders`` body."""
    profile = CHANNELS[n % len(CHANNELS)] if n % 7 else CHANNELS[0]
    # Spread over 300 days of 2025 (wrapping for large n): always in the past, deterministic.
    offset = (31 * n) % (300 * 86_400) + rng.randint(0, 30)
    placed = placed_at or datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=offset)
    catalogue = PRODUCTS_CN if profile.domestic else PRODUCTS_INTL
    picked = rng.sample(catalogue, k=rng.choice([1, 1, 1, 2, 2, 3]))
    lines = [{"sku": sku, "title": title, "quantity": rng.choice([1, 1, 2, 3]), "unit_price": price}
             for sku, title, price in picked]
    if profile.domestic:
        province, city, district, postcode = rng.choice(CN_PLACES)
        name = rng.choice(CN_NAMES)
        phone = _mask_phone(rng)
        address: dict[str, str | None] = {"country": "CN", "province": province, "city": city, "district": district,
                   "detail": rng.choice(STREETS), "postcode": postcode, "name": name, "phone": phone}
        buyer: dict[str, str | None] = {"name": name, "phone": phone, "email": None}
        shipping_fee = rng.choice(["0.00", "0.00", "8.00", "12.00"])
    else:
        state, city, postcode = rng.choice(US_PLACES)
        name = rng.choice(US_NAMES)
        address = {"country": "US", "province": state, "city": city, "district": None,
                   "detail": f"{rng.randint(1, 999)} Market St", "postcode": postcode, "name": name, "phone": None}
        buyer = {"name": name, "phone": None, "email": f"{name.split()[0].lower()}***@example.com"}
        shipping_fee = rng.choice(["0.00", "5.99"])
    tags = [t for t, p in (("express", 0.2), ("gift", 0.1), ("vip", 0.1)) if rng.random() < p]
    chosen_status = status or ("paid" if rng.random() < 0.8 else "pending_payment")
    body: dict[str, Any] = {
        "external_id": f"{profile.prefix}-{100000 + n}", "channel": profile.channel, "shop": profile.shop,
        "currency": profile.currency, "status": chosen_status, "placed_at": placed.isoformat(),
        "buyer": buyer, "shipping_address": address, "lines": lines, "shipping_fee": shipping_fee,
        "discount": "0.00", "tags": tags,
    }
    if chosen_status == "paid":
        body["paid_at"] = (placed + timedelta(seconds=rng.randint(5, 600))).isoformat()
    return body


def lifecycle(rng: random.Random, status: str) -> list[str]:
    """A plausible sequence of order events for an order created in ``status``."""
    roll = rng.random()
    steps: list[str] = []
    if status == "pending_payment":
        if roll < 0.25:
            return ["cancel"]
        if roll < 0.35:
            return []
        steps.append("mark_paid")
        roll = rng.random()
    if roll < 0.05:
        return [*steps, "hold"]
    if roll < 0.10:
        return [*steps, "cancel"]
    if roll < 0.30:
        return steps
    steps.append("ready_to_ship")
    if roll < 0.45:
        return steps
    steps.append("ship")
    if roll < 0.70:
        return steps
    steps.append("deliver")
    if roll < 0.85:
        return steps
    return [*steps, "complete"]

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
give the same bytes. The payloads themselves are written by
:mod:`orderhub.simulation.channel_payloads`. Signatures are not part of the plan:
:func:`signature_headers` signs a message for a shop at send time.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from orderhub.adapters.channels.mapping import ChannelSpec
from orderhub.adapters.channels.signatures import sign
from orderhub.simulation.channel_payloads import (
    CENT,
    CHINA,
    DELIVERS,
    RENDERERS,
    Line,
    Renderer,
    Seed,
    tiktok_status_push,
)
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


def _mask_cn_phone(rng: random.Random) -> str:
    return f"1{rng.choice('3578')}{rng.randint(0, 9)}****{rng.randint(1000, 9999)}"


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


def _seed(rng: random.Random, channel: str, index: int, now: datetime, base: int) -> Seed:
    domestic = channel in CN_CHANNELS
    placed = now - timedelta(seconds=rng.randint(6 * 3600, 72 * 3600))
    catalogue = PRODUCTS_CN if domestic else PRODUCTS_INTL
    picked = rng.sample(catalogue, k=rng.choice([1, 1, 2, 2, 3]))
    lines = [Line(sku, title, rng.choice([1, 1, 2, 3]), Decimal(price)) for sku, title, price in picked]
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
    return Seed(channel=channel, index=index, external_id=_external_id(channel, index, placed, base), placed=placed,
                paid=paid, lines=lines, shipping=shipping, name=name, phone=phone, email=email, place=place,
                street=street, payment=payment)


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

    def add(self, seed: Seed, status: str, updated: datetime, *, kind: str, phase: int, note: str,
            renderer: Renderer | None = None) -> PlannedMessage:
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
        self.shipped: list[Seed] = []
        self.status_pushed = False

    def order(self, s: Seed) -> None:
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

    def _later(self, s: Seed) -> None:
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
                out.add(s, "shipped", step, kind=STATUS_PUSH, phase=1, renderer=tiktok_status_push,
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
            s.lines.append(Line(*PRODUCTS_CN[0][:2], 1, Decimal(PRODUCTS_CN[0][2])))
        s.paid = s.paid or s.placed + timedelta(seconds=20)
        payload, headers = RENDERERS["douyin"](s, "paid", s.paid)
        del payload["sku_order_list"][1]["item_num"]
        found.append(PlannedMessage(channel="douyin", body=_dump(payload), headers=headers, kind=BROKEN, phase=0,
                                    external_id=s.external_id, expect_field="sku_order_list[1].item_num",
                                    note="sub-order without item_num"))
    if "jd" in channels:
        s = _seed(rng, "jd", 99_999, now, base)
        payload, headers = RENDERERS["jd"](s, "paid", s.paid or s.placed)
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

"""The simulated channel traffic behind ``orderhub demo``: native payloads that map through the specs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orderhub.adapters.channels.mapping import SpecRegistry, load_registry
from orderhub.adapters.channels.signatures import verify_signature
from orderhub.domain.channels.model import Ignored, MappedOrder, MappedStatus
from orderhub.domain.errors import MappingFailed, SignatureInvalid
from orderhub.domain.orders.states import OrderStatus
from orderhub.simulation.channel_traffic import (
    BROKEN,
    CHANNELS,
    CN_CHANNELS,
    DUPLICATE,
    NEW,
    PING,
    STALE,
    STATUS_PUSH,
    UPDATE,
    PlannedMessage,
    TrafficPlan,
    plan_traffic,
    shop_app_key,
    signature_headers,
    split_orders,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def specs() -> SpecRegistry:
    return load_registry()


@pytest.fixture(scope="module")
def plan() -> TrafficPlan:
    return plan_traffic(160, seed=7, now=NOW)


def _map(specs: SpecRegistry, m: PlannedMessage) -> MappedOrder | MappedStatus | Ignored:
    spec = specs.get(m.channel)
    return spec.map(spec.parse_body(m.body, m.headers), m.headers)


def _order(specs: SpecRegistry, m: PlannedMessage) -> MappedOrder:
    mapped = _map(specs, m)
    assert isinstance(mapped, MappedOrder), (m.channel, m.note, mapped)
    return mapped


def test_same_seed_and_now_give_the_same_bytes() -> None:
    first = plan_traffic(50, seed=3, now=NOW)
    again = plan_traffic(50, seed=3, now=NOW)
    assert [(m.channel, m.body, m.headers, m.kind, m.phase) for m in first.messages] == \
           [(m.channel, m.body, m.headers, m.kind, m.phase) for m in again.messages]
    other = plan_traffic(50, seed=4, now=NOW)
    assert [m.body for m in other.messages] != [m.body for m in first.messages]
    later = plan_traffic(50, seed=3, now=NOW + timedelta(hours=1))
    assert [m.body for m in later.messages] != [m.body for m in first.messages]


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_traffic(5, seed=1, now=datetime(2026, 11, 21, 12, 0))


def test_orders_split_across_every_channel(plan: TrafficPlan) -> None:
    assert split_orders(10, ["a", "b", "c"]) == {"a": 4, "b": 3, "c": 3}
    assert sum(plan.orders.values()) == 160
    assert set(plan.orders) == set(CHANNELS)
    assert {"shopify", "woocommerce", "tiktok_shop", "taobao", "jd", "pinduoduo", "douyin", "own_site"} <= set(CHANNELS)
    new = [m for m in plan.messages if m.kind == NEW]
    assert len(new) == 160
    assert len({(m.channel, m.external_id) for m in new}) == 160  # one new message per order
    for channel, count in plan.orders.items():
        assert sum(1 for m in new if m.channel == channel) == count


def test_the_plan_holds_every_kind_of_message(plan: TrafficPlan) -> None:
    counts = plan.counts()
    for kind in (NEW, UPDATE, DUPLICATE, STALE, STATUS_PUSH, BROKEN, PING):
        assert counts.get(kind, 0) >= 1, kind
    assert counts[BROKEN] == 2
    assert 1 <= counts[STALE] <= 3  # few enough to keep the channel breaker closed
    assert plan.phases == [0, 1, 2]
    # Phases come in order, and every later version is about an order of an earlier phase.
    assert [m.phase for m in plan.messages] == sorted(m.phase for m in plan.messages)
    first_phase = {(m.channel, m.external_id) for m in plan.phase(0)}
    for m in plan.messages:
        if m.kind in (UPDATE, STALE, STATUS_PUSH):
            assert m.phase >= 1 and (m.channel, m.external_id) in first_phase


def test_every_order_payload_maps_through_its_spec(specs: SpecRegistry, plan: TrafficPlan) -> None:
    for m in plan.messages:
        if m.kind not in (NEW, UPDATE, STALE, DUPLICATE):
            continue
        order = _order(specs, m)
        assert order.external_id == m.external_id
        assert order.lines and all(line.quantity > 0 for line in order.lines)
        assert order.placed_at < NOW
        assert order.updated_at is None or order.updated_at < NOW
        total = sum(ln.unit_price.amount * ln.quantity - ln.discount.amount + ln.tax.amount for ln in order.lines)
        assert total + order.shipping_fee.amount - order.discount.amount > 0
        if m.channel in CN_CHANNELS:
            assert order.currency == "CNY"
            address = order.shipping_address
            if order.status is not OrderStatus.PENDING_PAYMENT or m.channel != "tiktok_shop":
                assert address is not None, (m.channel, m.note)
                assert address.country == "CN" and address.province and address.city and address.district
        else:
            assert order.currency in ("USD", "EUR")


def test_money_travels_in_each_channel_s_own_unit(specs: SpecRegistry, plan: TrafficPlan) -> None:
    def first(channel: str) -> tuple[dict[str, object], MappedOrder]:
        m = next(m for m in plan.messages if m.channel == channel and m.kind == NEW)
        return json.loads(m.body), _order(specs, m)

    douyin, mapped = first("douyin")
    line = douyin["sku_order_list"][0]  # type: ignore[index]
    assert isinstance(line["goods_price"], int)  # 分
    assert mapped.lines[0].unit_price.amount == line["goods_price"]
    paths: dict[str, tuple[str | int, ...]] = {
        "taobao": ("orders", "order", 0, "price"), "jd": ("item_info_list", 0, "jd_price"),
        "pinduoduo": ("item_list", 0, "goods_price"), "shopify": ("line_items", 0, "price"),
        "tiktok_shop": ("line_items", 0, "original_price")}
    for channel, path in paths.items():
        payload, mapped = first(channel)
        text: Any = payload
        for step in path:
            text = text[step]
        assert isinstance(text, str) and text.count(".") == 1 and len(text.split(".")[1]) == 2, (channel, text)
        assert mapped.lines[0].unit_price.amount == round(float(text) * 100)


def test_later_versions_follow_the_story(specs: SpecRegistry, plan: TrafficPlan) -> None:
    new = {(m.channel, m.external_id): m for m in plan.messages if m.kind == NEW}
    statuses = set()
    for m in plan.messages:
        if m.kind not in (UPDATE, STALE):
            continue
        first = new[(m.channel, m.external_id)]
        spec = specs.get(m.channel)
        key_new = spec.identify(spec.parse_body(first.body, first.headers), first.headers)
        key_later = spec.identify(spec.parse_body(m.body, m.headers), m.headers)
        assert key_later.external_id == key_new.external_id
        assert key_later.event_version != key_new.event_version  # a new version, not a duplicate
        later = _order(specs, m)
        assert later.updated_at is not None and _order(specs, first).updated_at is not None
        assert later.updated_at > _order(specs, first).updated_at  # type: ignore[operator]
        statuses.add(later.status)
    assert {OrderStatus.SHIPPED, OrderStatus.CANCELLED, OrderStatus.PAID} <= statuses


def test_stale_versions_are_older_than_the_shipped_one(specs: SpecRegistry, plan: TrafficPlan) -> None:
    stale = [m for m in plan.messages if m.kind == STALE]
    for m in stale:
        shipped = [_order(specs, u) for u in plan.messages
                   if u.kind == UPDATE and (u.channel, u.external_id) == (m.channel, m.external_id)
                   and _order(specs, u).status is OrderStatus.SHIPPED]
        assert len(shipped) == 1
        late = _order(specs, m)
        assert late.status is OrderStatus.PAID
        assert late.updated_at is not None and shipped[0].updated_at is not None
        assert late.updated_at < shipped[0].updated_at
    assert len({m.channel for m in stale}) == len(stale)  # at most one per channel


def test_duplicates_are_exact_resends(plan: TrafficPlan) -> None:
    originals = {(m.channel, m.body) for m in plan.messages if m.kind in (NEW, UPDATE)}
    duplicates = [m for m in plan.messages if m.kind == DUPLICATE]
    assert duplicates
    for m in duplicates:
        assert (m.channel, m.body) in originals
        assert m.phase >= 1


def test_status_push_is_a_tiktok_type_1_message(specs: SpecRegistry, plan: TrafficPlan) -> None:
    [push] = [m for m in plan.messages if m.kind == STATUS_PUSH]
    assert push.channel == "tiktok_shop"
    assert json.loads(push.body)["type"] == 1
    mapped = _map(specs, push)
    assert isinstance(mapped, MappedStatus)
    assert mapped.status is OrderStatus.SHIPPED
    assert (push.channel, push.external_id) in {(m.channel, m.external_id) for m in plan.phase(0)}


def test_broken_payloads_fail_on_the_expected_field(specs: SpecRegistry, plan: TrafficPlan) -> None:
    broken = {m.channel: m for m in plan.messages if m.kind == BROKEN}
    assert {c: m.expect_field for c, m in broken.items()} == {"douyin": "sku_order_list[1].item_num",
                                                              "jd": "order_start_time"}
    for m in broken.values():
        with pytest.raises(MappingFailed) as failure:
            _map(specs, m)
        assert failure.value.field == m.expect_field
        # The key can still be read, so the inbox keeps it under its order id.
        spec = specs.get(m.channel)
        assert spec.identify(spec.parse_body(m.body, m.headers), m.headers).external_id == m.external_id


def test_special_orders(specs: SpecRegistry, plan: TrafficPlan) -> None:
    shopify = next(m for m in plan.messages if m.channel == "shopify" and m.kind == NEW)
    test_order = _order(specs, shopify)
    assert json.loads(shopify.body)["test"] is True
    assert test_order.attributes["test"] is True and test_order.status is OrderStatus.PAID
    own = next(m for m in plan.messages if m.channel == "own_site" and m.kind == NEW)
    unusual = _order(specs, own)
    assert unusual.payment_method == "usdt_wallet" and "unusual_payment" in unusual.tags
    # Neither gets a later version: the story of each is the hold.
    for m in (shopify, own):
        assert [x.kind for x in plan.messages if (x.channel, x.external_id) == (m.channel, m.external_id)
                and x.kind != DUPLICATE] == [NEW]
    [ping] = [m for m in plan.messages if m.kind == PING]
    assert isinstance(_map(specs, ping), Ignored)


@pytest.mark.parametrize("channel", CHANNELS)
def test_signatures_verify(specs: SpecRegistry, plan: TrafficPlan, channel: str) -> None:
    spec = specs.get(channel)
    message = next(m for m in plan.messages if m.channel == channel)
    url = f"http://127.0.0.1:8000/webhooks/{channel}/demo-{channel}"
    app_key = shop_app_key(channel)
    headers = signature_headers(spec, message, secret="s3cret-demo", url=url, app_key=app_key, timestamp=1_800_000_000)
    assert set(message.headers) < set(headers)
    verify_signature(spec.signature, body=message.body, headers=headers, secret="s3cret-demo", url=url,
                     app_key=app_key, header=spec.signature_header)
    with pytest.raises(SignatureInvalid):
        verify_signature(spec.signature, body=message.body + b" ", headers=headers, secret="s3cret-demo", url=url,
                         app_key=app_key, header=spec.signature_header)
    with pytest.raises(SignatureInvalid):
        verify_signature(spec.signature, body=message.body, headers=headers, secret="another-secret", url=url,
                         app_key=app_key, header=spec.signature_header)


def test_small_volumes_still_plan_cleanly(specs: SpecRegistry) -> None:
    for orders in (0, 1, 8, 9):
        small = plan_traffic(orders, seed=11, now=NOW)
        assert sum(1 for m in small.messages if m.kind == NEW) == orders
        for m in small.messages:
            if m.kind == BROKEN:
                continue
            _map(specs, m)

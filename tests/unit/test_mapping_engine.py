"""The mapping engine's features, one spec fragment at a time (docs/channels.md)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from orderhub.adapters.channels.canonical import mapped_to_dict
from orderhub.adapters.channels.csv_messages import csv_rows_to_messages
from orderhub.adapters.channels.mapping import ChannelSpec, UnknownChannel, load_registry
from orderhub.adapters.channels.paths import InvalidPath, compile_path, read
from orderhub.adapters.channels.values import InvalidChannelSpec
from orderhub.domain.channels.model import Ignored, MappedOrder, MappedStatus
from orderhub.domain.errors import MappingFailed, UnreadableMessage
from orderhub.domain.money import Money
from orderhub.domain.orders.states import OrderStatus

BASE_ORDER: dict[str, Any] = {
    "external_id": {"path": "id", "as": "str"},
    "version": {"path": "updated", "as": "time"},
    "currency": "cur",
    "status": {"path": "st", "map": {"P": "paid", "U": "pending_payment", 105: "shipped"}},
    "placed_at": {"path": "created", "as": "time"},
    "lines": {"path": "items", "sku": "sku", "quantity": "qty", "unit_price": "price"},
}
PAYLOAD: dict[str, Any] = {
    "id": 42, "updated": "2026-11-21T10:00:00+08:00", "cur": "CNY", "st": "P", "created": "2026-11-21 09:00:00",
    "items": [{"sku": "A", "qty": 2, "price": "1.50"}, {"sku": "B", "qty": "1", "price": "10"}],
}


def make(order: dict[str, Any] | None = None, **top: Any) -> ChannelSpec:
    raw: dict[str, Any] = {"timezone": "Asia/Shanghai", "order": {**BASE_ORDER, **(order or {})}, **top}
    return ChannelSpec("test", raw, source="test.yaml")


def order_of(spec: ChannelSpec, payload: dict[str, Any], headers: dict[str, str] | None = None,
             **kwargs: Any) -> MappedOrder:
    mapped = spec.map(payload, headers or {}, **kwargs)
    assert isinstance(mapped, MappedOrder)
    return mapped


# -- paths ---------------------------------------------------------------------------------


def test_paths_read_keys_indexes_wildcards_and_quoted_keys() -> None:
    doc = {"a": {"b": [{"c": 1}, {"c": 2}, {"d": 3}]}, "x.y": {"z": "q"}}
    assert read(doc, compile_path("a.b[1].c")) == 2
    assert read(doc, compile_path("a.b[-1].d")) == 3
    assert read(doc, compile_path("a.b[*].c")) == [1, 2]
    assert read(doc, compile_path('"x.y".z')) == "q"
    assert read(doc, compile_path("a.b[7].c")) is None
    assert read(doc, compile_path("a.b.c")) is None  # a list where a dict was expected


@pytest.mark.parametrize("bad", ["", "a..b", "a.", ".a", "a[x]", "a.[0]", "a[0]b"])
def test_bad_paths_are_refused(bad: str) -> None:
    with pytest.raises(InvalidPath):
        compile_path(bad)


# -- a full order --------------------------------------------------------------------------


def test_basic_order_maps_with_naive_time_in_spec_zone() -> None:
    order = order_of(make(), PAYLOAD)
    assert order.external_id == "42"
    assert order.status is OrderStatus.PAID and order.channel_status == "P"
    assert order.placed_at == datetime(2026, 11, 21, 1, 0, tzinfo=UTC)  # 09:00 Shanghai
    assert [(li.sku, li.quantity, li.unit_price) for li in order.lines] == [
        ("A", 2, Money(150, "CNY")), ("B", 1, Money(1000, "CNY"))]
    assert order.shipping_fee == Money(0, "CNY") and order.shipping_address is None


def test_shop_timezone_overrides_the_spec_zone() -> None:
    order = order_of(make(), PAYLOAD, timezone="Europe/Berlin")
    assert order.placed_at == datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    with pytest.raises(MappingFailed) as failure:
        make().map(PAYLOAD, {}, timezone="Mars/Olympus")
    assert failure.value.field == "timezone"


def test_identify_normalises_the_version_to_utc() -> None:
    key = make().identify(PAYLOAD, {})
    assert (key.external_id, key.event_version, key.kind) == ("42", "2026-11-21T02:00:00+00:00", "order")
    same_instant = {**PAYLOAD, "updated": "2026-11-21T02:00:00Z"}
    assert make().identify(same_instant, {}) == key


def test_without_a_version_the_content_hash_is_the_version() -> None:
    spec = make({"version": {"path": "nope"}})
    first = spec.identify(PAYLOAD, {}).event_version
    assert first.startswith("sha256-")
    assert spec.identify(json.loads(json.dumps(PAYLOAD)), {}).event_version == first
    assert spec.identify({**PAYLOAD, "st": "U"}, {}).event_version != first


def test_content_hash_external_id_when_the_channel_gives_none() -> None:
    spec = make({"external_id": {"first": [{"path": "id", "as": "str"}, {"content_hash": True}]}})
    payload = {k: v for k, v in PAYLOAD.items() if k != "id"}
    one, two = spec.identify(payload, {}), spec.identify(dict(payload), {})
    assert one.external_id == two.external_id and one.external_id.startswith("sha256-")


@pytest.mark.parametrize(("field", "payload_change", "error_field"), [
    ("currency", {"cur": None}, "cur"),
    ("currency", {"cur": "XXY"}, "cur"),
    ("placed_at", {"created": None}, "created"),
    ("placed_at", {"created": "yesterday"}, "created"),
    ("lines", {"items": []}, "items"),
    ("price", {"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 1}]}, "items[0].price"),
    ("sku", {"items": [{"sku": "A", "qty": 1, "price": "1"}, {"qty": 1, "price": "1"}]}, "items[1].sku"),
    ("qty", {"items": [{"sku": "A", "qty": 0, "price": "1"}]}, "items[0].qty"),
    ("qty", {"items": [{"sku": "A", "qty": "1.5", "price": "1"}]}, "items[0].qty"),
    ("money", {"items": [{"sku": "A", "qty": 1, "price": "1.005"}]}, "items[0].price"),
    ("status", {"st": "Z"}, "st"),
    ("status", {"st": None}, "st"),
    ("id", {"id": None}, "id"),
])
def test_required_fields_fail_with_the_payload_path(field: str, payload_change: dict[str, Any],
                                                    error_field: str) -> None:
    with pytest.raises(MappingFailed) as failure:
        make().map({**PAYLOAD, **payload_change}, {})
    assert failure.value.field == error_field
    assert failure.value.code == "mapping_failed"


def test_status_rules_come_before_the_map_and_numeric_codes_match() -> None:
    spec = make({"status": {
        "path": "st", "map": {"P": "paid", 105: "shipped"},
        "rules": [{"when": {"path": "cancelled_at", "not_null": True}, "status": "cancelled"},
                  {"when": {"all": [{"path": "ful", "equals": "partial"}, {"path": "st", "in": ["P"]}]},
                   "status": "partially_shipped"}],
        "channel_status": {"join": ["st", "ful"], "sep": "/"}}})
    assert order_of(spec, {**PAYLOAD, "cancelled_at": "x"}).status is OrderStatus.CANCELLED
    partial = order_of(spec, {**PAYLOAD, "ful": "partial"})
    assert (partial.status, partial.channel_status) == (OrderStatus.PARTIALLY_SHIPPED, "P/partial")
    assert order_of(spec, {**PAYLOAD, "st": "105"}).status is OrderStatus.SHIPPED
    assert order_of(spec, {**PAYLOAD, "st": 105}).status is OrderStatus.SHIPPED


# -- converters ------------------------------------------------------------------------------


@pytest.mark.parametrize(("unit", "raw", "currency", "minor"), [
    ("decimal", "59.90", "CNY", 5990),
    ("decimal", 12, "USD", 1200),
    ("yuan", "200.07", "CNY", 20007),
    ("float", 12.9, "SGD", 1290),
    ("float", 0.07, "USD", 7),
    ("float", 48000, "VND", 48000),
    ("cents", 1290, "CNY", 1290),
    ("cents", "1290", "CNY", 1290),
    ("decimal", "1000", "JPY", 1000),
])
def test_money_units_convert_exactly(unit: str, raw: Any, currency: str, minor: int) -> None:
    spec = make({"lines": {**BASE_ORDER["lines"], "unit_price": {"path": "price", "unit": unit}}})
    payload = {**PAYLOAD, "cur": currency, "items": [{"sku": "A", "qty": 1, "price": raw}]}
    assert order_of(spec, payload).lines[0].unit_price == Money(minor, currency)


def test_money_never_rounds_and_cents_refuse_fractions() -> None:
    spec = make({"lines": {**BASE_ORDER["lines"], "unit_price": {"path": "price", "unit": "cents"}}})
    with pytest.raises(MappingFailed) as failure:
        spec.map({**PAYLOAD, "items": [{"sku": "A", "qty": 1, "price": 12.5}]}, {})
    assert failure.value.field == "items[0].price"
    with pytest.raises(MappingFailed):
        make().map({**PAYLOAD, "cur": "JPY", "items": [{"sku": "A", "qty": 1, "price": "10.5"}]}, {})


def test_divide_by_quantity_sum_and_negate() -> None:
    lines = {**BASE_ORDER["lines"],
             "unit_price": {"path": "line_price", "divide_by_quantity": True},
             "discount": {"sum": ["subtotal", {"path": "total", "negate": True}]},
             "tax": {"sum": ["taxes[*].amount"]}}
    spec = make({"lines": lines, "shipping_fee": {"sum": ["ship[*].fee"]}, "discount": "disc"})
    payload = {**PAYLOAD, "disc": "1.00", "ship": [{"fee": "3.00"}, {"fee": "2.50"}], "items": [
        {"sku": "A", "qty": 3, "line_price": "29.97", "subtotal": "29.97", "total": "26.97",
         "taxes": [{"amount": "1.10"}, {"amount": "0.20"}]}]}
    order = order_of(spec, payload)
    line = order.lines[0]
    assert (line.unit_price.amount, line.discount.amount, line.tax.amount) == (999, 300, 130)
    assert (order.shipping_fee.amount, order.discount.amount) == (550, 100)
    assert mapped_to_dict(order)["order"]["total"] == 2997 - 300 + 130 + 550 - 100
    with pytest.raises(MappingFailed, match="divide exactly") as failure:
        spec.map({**payload, "items": [{**payload["items"][0], "line_price": "10.00"}]}, {})
    assert failure.value.field == "items[0].line_price"


@pytest.mark.parametrize(("spec_value", "raw", "expected"), [
    ({"as": "time", "format": "unix_s"}, 1763712000, datetime(2025, 11, 21, 8, 0, tzinfo=UTC)),
    ({"as": "time", "format": "unix_s"}, "1763712000", datetime(2025, 11, 21, 8, 0, tzinfo=UTC)),
    ({"as": "time", "format": "unix_ms"}, 1763712000123, datetime(2025, 11, 21, 8, 0, 0, 123000, tzinfo=UTC)),
    ({"as": "time", "format": "%Y-%m-%d %H:%M:%S"}, "2026-11-21 08:00:00", datetime(2026, 11, 21, 0, 0, tzinfo=UTC)),
    ({"as": "time", "format": "%Y-%m-%d %H:%M:%S", "zone": "UTC"}, "2026-11-21 08:00:00",
     datetime(2026, 11, 21, 8, 0, tzinfo=UTC)),
    ({"as": "time"}, "2026-11-21T08:00:00-05:00", datetime(2026, 11, 21, 13, 0, tzinfo=UTC)),
    ({"as": "time", "null_if": ["0001-01-01 00:00:00"]}, "0001-01-01 00:00:00", None),
])
def test_time_formats(spec_value: dict[str, Any], raw: Any, expected: datetime | None) -> None:
    spec = make({"paid_at": {"path": "paid", **spec_value}})
    assert order_of(spec, {**PAYLOAD, "paid": raw}).paid_at == expected


def test_values_first_join_const_header_map_default_when() -> None:
    spec = make({
        "buyer": {"name": {"first": [{"join": ["c.first", "c.last"]}, "b.name"]},
                  "phone": {"path": ["phone", "c.phone"]},
                  "email": {"header": "x-email"}},
        "payment_method": {"path": "pay", "map": {7: "none", 16: "cashier"}, "map_unknown": "null",
                           "default": "unknown"},
        "tags": {"value": {"path": "tags", "as": "list", "split": ";"},
                 "add": [{"when": {"path": "items[*].sku", "in": ["B"]}, "tag": "has-b"},
                         {"when": {"not": {"path": "gift", "equals": True}}, "tag": "not-gift"}]},
        "attributes": {"test": {"path": "test", "as": "bool", "default": False}, "kind": {"const": "normal"},
                       "code": {"path": "code", "when": {"path": "st", "equals": "P"}}},
    })
    headers = {"x-email": "a***@example.com"}
    order = order_of(spec, {**PAYLOAD, "c": {"last": "Wang", "phone": "138****5678"}, "phone": "",
                            "pay": 16, "tags": " vip; ;vip ;gift", "test": "true", "code": 9}, headers)
    assert order.buyer.name == "Wang" and order.buyer.phone == "138****5678"
    assert order.buyer.email == "a***@example.com"
    assert order.payment_method == "cashier"
    assert order.tags == ("vip", "gift", "has-b", "not-gift")
    assert order.attributes == {"test": True, "kind": "normal", "code": 9}
    other = order_of(spec, {**PAYLOAD, "b": {"name": "Li"}, "pay": 99, "st": "U", "gift": True})
    assert (other.buyer.name, other.payment_method, other.tags) == ("Li", "unknown", ("has-b",))
    assert other.attributes == {"test": False, "kind": "normal", "code": None}


def test_address_when_and_required_country() -> None:
    spec = make({"shipping_address": {"when": {"path": "addr", "not_null": True}, "country": {"const": "CN"},
                                      "province": "addr.prov", "city": "addr.city", "district": "addr.dist",
                                      "detail": "addr.detail", "phone": "addr.phone"}})
    assert order_of(spec, PAYLOAD).shipping_address is None
    order = order_of(spec, {**PAYLOAD, "addr": {"prov": "浙江省", "city": "杭州市", "dist": "西湖区",
                                                "detail": "文三路 90 号", "phone": "138****5678"}})
    assert order.shipping_address is not None
    assert (order.shipping_address.country, order.shipping_address.district) == ("CN", "西湖区")
    assert order.shipping_address.phone == "138****5678"
    no_country = make({"shipping_address": {"country": "addr.country", "city": "addr.city"}})
    with pytest.raises(MappingFailed) as failure:
        no_country.map({**PAYLOAD, "addr": {"city": "Berlin"}}, {})
    assert failure.value.field == "addr.country"


def test_lines_skip_and_merge_one_line_per_unit() -> None:
    spec = make({"lines": {**BASE_ORDER["lines"], "quantity": {"const": 1}, "merge_same_sku": True,
                           "skip_when": {"path": "cancelled", "equals": True}}})
    items = [{"sku": "A", "price": "5"}, {"sku": "A", "price": "5"}, {"sku": "B", "price": "7"},
             {"sku": "A", "price": "5", "cancelled": True}]
    order = order_of(spec, {**PAYLOAD, "items": items})
    assert [(li.sku, li.quantity) for li in order.lines] == [("A", 2), ("B", 1)]
    with pytest.raises(MappingFailed) as failure:
        spec.map({**PAYLOAD, "items": [{"sku": "A", "price": "5", "cancelled": True}]}, {})
    assert failure.value.field == "items"


# -- message kinds -------------------------------------------------------------------------


def _kinds_spec() -> ChannelSpec:
    return make(
        messages=[{"when": {"header": "x-topic", "equals": "ping"}, "kind": "ignore", "reason": "ping"},
                  {"when": {"path": "type", "equals": 1}, "kind": "status", "root": "data"},
                  {"when": {"path": "type", "equals": 2}, "kind": "order", "root": "data"},
                  {"when": {"path": "type", "null": True}, "kind": "order"}],
        status_message={"external_id": "order_id", "version": {"path": "ts", "as": "time", "format": "unix_s"},
                        "updated_at": {"path": "ts", "as": "time", "format": "unix_s"},
                        "status": {"path": "status", "map": {"AWAITING_SHIPMENT": "paid"}}},
    )


def test_message_kinds_roots_and_error_paths() -> None:
    spec = _kinds_spec()
    ping = spec.map({"anything": 1}, {"x-topic": "ping"})
    assert ping == Ignored(reason="ping")
    assert spec.identify({"anything": 1}, {"x-topic": "ping"}).kind == "ignore"
    status_msg = {"type": 1, "data": {"order_id": "576", "status": "AWAITING_SHIPMENT", "ts": 1763712000}}
    mapped = spec.map(status_msg, {})
    assert mapped == MappedStatus(external_id="576", status=OrderStatus.PAID, channel_status="AWAITING_SHIPMENT",
                                  updated_at=datetime(2025, 11, 21, 8, 0, tzinfo=UTC))
    key = spec.identify(status_msg, {})
    assert (key.external_id, key.event_version, key.kind) == ("576", "2025-11-21T08:00:00+00:00", "status")
    wrapped = {"type": 2, "data": PAYLOAD}
    assert order_of(spec, wrapped).external_id == "42"
    with pytest.raises(MappingFailed) as failure:
        spec.map({"type": 2, "data": {**PAYLOAD, "items": [{"sku": "A", "qty": 1}]}}, {})
    assert failure.value.field == "data.items[0].price"
    with pytest.raises(MappingFailed) as failure:
        spec.map({"type": 1, "data": {"order_id": "576", "status": "NEW_ENUM"}}, {})
    assert failure.value.field == "data.status"
    with pytest.raises(MappingFailed) as failure:
        spec.identify({"type": 3}, {})
    assert failure.value.field == "message"


# -- bodies ---------------------------------------------------------------------------------


def test_parse_body_json_form_and_unreadable() -> None:
    assert make().parse_body(b'{"a": 1}', {}) == {"a": 1}
    assert make(body="json_or_form").parse_body(b"webhook_id=7", {}) == {"webhook_id": "7"}
    for bad in (b"webhook_id=7", b"\xff\xfe{", b"[1, 2]", b"", b"{broken"):
        with pytest.raises(UnreadableMessage):
            make().parse_body(bad, {})


# -- spec validation and registry ----------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"order": {**BASE_ORDER, "lines": {**BASE_ORDER["lines"], "sku": {"pth": "sku"}}}}, "order.lines.sku"),
    ({"order": {**BASE_ORDER, "status": {"path": "st", "map": {"P": "payed"}}}}, "order.status.map.P"),
    ({"order": {**BASE_ORDER, "placed_at": {"path": "a..b"}}}, "order.placed_at.path"),
    ({"order": {**BASE_ORDER, "placed_at": {"path": "c", "as": "date"}}}, "order.placed_at.as"),
    ({"order": {k: v for k, v in BASE_ORDER.items() if k != "currency"}}, "order.currency"),
    ({"timezone": "Asia/Nowhere"}, "timezone"),
    ({"signature": "rot13"}, "signature"),
    ({"extra": 1}, "unknown top-level key"),
    ({"channel": "other"}, "channel"),
    ({"messages": [{"kind": "status"}]}, "status_message"),
])
def test_broken_specs_name_the_file_and_key(change: dict[str, Any], message: str) -> None:
    raw: dict[str, Any] = {"order": BASE_ORDER, **change}
    with pytest.raises(InvalidChannelSpec) as failure:
        ChannelSpec("test", raw, source="channels/test.yaml")
    assert str(failure.value).startswith("channels/test.yaml: ")
    assert message in str(failure.value)


def test_registry_loads_builtins_and_extra_dir_overrides(tmp_path: Path) -> None:
    builtin = load_registry()
    assert {"shopify", "woocommerce", "amazon", "own_site", "csv"} <= set(builtin.channels())
    with pytest.raises(UnknownChannel) as failure:
        builtin.get("myspace")
    assert failure.value.code == "unknown_channel"
    (tmp_path / "shopify.yaml").write_text(yaml.safe_dump({"display_name": "Shopify (ours)", "order": BASE_ORDER}))
    (tmp_path / "newshop.yaml").write_text(yaml.safe_dump({"order": BASE_ORDER}))
    registry = load_registry(tmp_path)
    assert registry.get("shopify").display_name == "Shopify (ours)"
    assert registry.get("newshop").channel == "newshop"
    (tmp_path / "broken.yaml").write_text("order: [unclosed")
    with pytest.raises(InvalidChannelSpec, match=r"broken\.yaml"):
        load_registry(tmp_path)


# -- CSV ------------------------------------------------------------------------------------


def test_csv_rows_group_by_order_no_and_map() -> None:
    text = ("order_no,status,currency,placed_at,sku,quantity,unit_price,extra\n"
            "A1,paid,CNY,2026-11-20 09:00:00,S1,2,9.90,\n"
            ",paid,CNY,2026-11-20 09:00:00,S9,1,1.00,\n"
            "A2,已取消,CNY,2026-11-20 10:00:00,S3,1,5.00,\n"
            "A1,,,,S2,1,3.00,\n"
            ",,,,,,,\n")
    messages = csv_rows_to_messages(csv.DictReader(io.StringIO(text)))
    assert [m.get("order_no") for m in messages] == ["A1", None, "A2"]
    assert [r["sku"] for r in messages[0]["rows"]] == ["S1", "S2"]
    assert "extra" not in messages[0]["rows"][0]
    spec = load_registry().get("csv")
    first = order_of(spec, messages[0])
    assert [(li.sku, li.quantity, li.unit_price.amount) for li in first.lines] == [("S1", 2, 990), ("S2", 1, 300)]
    assert order_of(spec, messages[2]).status is OrderStatus.CANCELLED
    anonymous = spec.identify(messages[1], {})
    assert anonymous.external_id.startswith("sha256-")
    again = csv_rows_to_messages(csv.DictReader(io.StringIO(text)))
    assert spec.identify(again[1], {}) == anonymous

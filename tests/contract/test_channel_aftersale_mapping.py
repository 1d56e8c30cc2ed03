"""Channel after-sale (refund / return) messages against the built-in specs' ``aftersale:`` sections.

Recorded sample payloads live in ``tests/fixtures/aftersale/<channel>_<case>.json`` (our own
data, in each channel's shape), with optional ``.headers.json`` and the ``.expected.json``:
``{"kind": "aftersale", "key": {...}, "aftersale": {...}}`` (the JSON of
:func:`~orderhub.adapters.channels.aftersale_mapping.aftersale_to_dict`), ``{"kind": "ignore"}``,
or ``{"error": {"code": "mapping_failed", "field": "<payload path>"}}``; ``later_than`` names
the earlier message of the same case. They are discovered, so a new case needs no test edit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from orderhub.adapters.channels.aftersale_mapping import AFTERSALE_TYPES, aftersale_to_dict
from orderhub.adapters.channels.mapping import BUILTIN_DIR, ChannelSpec, InvalidChannelSpec, SpecRegistry, load_registry
from orderhub.adapters.channels.signatures import sign, verify_signature
from orderhub.domain.channels.model import AFTERSALE_STATES, MappedAfterSale, MappedOrder, MappedStatus
from orderhub.domain.errors import MappingFailed
from orderhub.simulation.channel_payloads import AFTERSALE_CHANNELS, aftersale_payload

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "aftersale"
ORDER_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "channels"
CHANNELS = ("taobao", "douyin", "pinduoduo", "shopify", "tiktok_shop")
WHEN = datetime(2026, 11, 23, 2, 15, 3, tzinfo=UTC)


def _channel_of(case: str) -> str:
    return next(c for c in sorted(CHANNELS, key=len, reverse=True) if case.startswith(f"{c}_"))


def _cases() -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in FIXTURES.glob("*.json")
                  if not p.name.endswith((".expected.json", ".headers.json")))


CASES = _cases()


def _load(case: str) -> tuple[bytes, dict[str, str], dict[str, Any]]:
    body = (FIXTURES / f"{case}.json").read_bytes()
    headers_file = FIXTURES / f"{case}.headers.json"
    headers = json.loads(headers_file.read_text("utf-8")) if headers_file.exists() else {}
    expected = json.loads((FIXTURES / f"{case}.expected.json").read_text("utf-8"))
    return body, {k.lower(): str(v) for k, v in headers.items()}, expected


@pytest.fixture(scope="module")
def registry() -> SpecRegistry:
    return load_registry()


# ------------------------------------------------------------------------------------ recorded payloads


@pytest.mark.parametrize("case", CASES)
def test_case_maps_to_expected(registry: SpecRegistry, case: str) -> None:
    body, headers, expected = _load(case)
    spec = registry.get(_channel_of(case))
    payload = spec.parse_body(body, headers)
    if "error" in expected:
        with pytest.raises(MappingFailed) as failure:
            spec.identify(payload, headers)
            spec.map(payload, headers)
        assert failure.value.code == expected["error"]["code"]
        assert failure.value.field == expected["error"]["field"]
        return
    key = spec.identify(payload, headers)
    assert key.kind == expected["kind"]
    mapped = spec.map(payload, headers)
    if expected["kind"] == "ignore":
        assert key.external_id.startswith("ignored-")
        return
    assert isinstance(mapped, MappedAfterSale)
    assert {"external_id": key.external_id, "event_version": key.event_version} == expected["key"]
    assert aftersale_to_dict(mapped) == expected["aftersale"]
    assert key.external_id == f"aftersale:{mapped.external_ref}"
    assert mapped.type in AFTERSALE_TYPES and mapped.state in AFTERSALE_STATES


def test_every_channel_has_its_states_and_a_negative_case() -> None:
    by_channel: dict[str, set[str]] = {c: set() for c in CHANNELS}
    negatives: set[str] = set()
    for case in CASES:
        expected = _load(case)[2]
        if "error" in expected:
            negatives.add(_channel_of(case))
        elif expected["kind"] == "aftersale":
            by_channel[_channel_of(case)].add(expected["aftersale"]["state"])
    wanted = {c: set(AFTERSALE_STATES) for c in ("taobao", "douyin", "pinduoduo")}
    wanted["shopify"] = {"refunded"}                     # a refunds/create webhook is a done refund
    wanted["tiktok_shop"] = {"requested", "return_shipped", "refunded"}
    assert all(wanted[c] <= by_channel[c] for c in CHANNELS), by_channel
    assert negatives == set(CHANNELS)


MAPPABLE = [c for c in CASES if _load(c)[2].get("kind") == "aftersale"]


@pytest.mark.parametrize("case", MAPPABLE)
def test_key_is_stable_and_does_not_depend_on_json_layout(registry: SpecRegistry, case: str) -> None:
    body, headers, _ = _load(case)
    spec = registry.get(_channel_of(case))
    payload = spec.parse_body(body, headers)
    reshaped = json.dumps(dict(reversed(list(payload.items()))), indent=4, ensure_ascii=True).encode()
    again = spec.parse_body(reshaped, headers)
    assert spec.identify(again, headers) == spec.identify(payload, headers) == spec.identify(payload, headers)
    assert spec.map(again, headers) == spec.map(payload, headers)


LATER = [c for c in CASES if "later_than" in _load(c)[2]]


@pytest.mark.parametrize("case", LATER)
def test_a_later_message_of_the_case_is_a_new_version(registry: SpecRegistry, case: str) -> None:
    body, headers, expected = _load(case)
    earlier_body, earlier_headers, earlier = _load(expected["later_than"])
    spec = registry.get(_channel_of(case))
    later_key = spec.identify(spec.parse_body(body, headers), headers)
    earlier_key = spec.identify(spec.parse_body(earlier_body, earlier_headers), earlier_headers)
    assert later_key.external_id == earlier_key.external_id
    assert later_key.event_version != earlier_key.event_version
    assert (datetime.fromisoformat(expected["aftersale"]["updated_at"])
            > datetime.fromisoformat(earlier["aftersale"]["updated_at"]))


# ------------------------------------------------------------------------------ keys vs order keys


def _order_keys(registry: SpecRegistry, channel: str) -> set[tuple[str, str]]:
    keys = set()
    for body_file in sorted((ORDER_FIXTURES / channel).glob("*.json")):
        if body_file.name.endswith((".expected.json", ".headers.json")):
            continue
        expected = json.loads(body_file.with_name(body_file.name.replace(".json", ".expected.json")).read_text())
        if "error" in expected:
            continue
        headers_file = body_file.with_name(body_file.name.replace(".json", ".headers.json"))
        headers = json.loads(headers_file.read_text()) if headers_file.exists() else {}
        spec = registry.get(channel)
        key = spec.identify(spec.parse_body(body_file.read_bytes(), headers), headers)
        assert key.kind in ("order", "status", "ignore")   # order messages are untouched
        keys.add((key.external_id, key.event_version))
    return keys


@pytest.mark.parametrize("channel", CHANNELS)
def test_aftersale_keys_never_collide_with_order_keys(registry: SpecRegistry, channel: str) -> None:
    """Even a case numbered like its order (TikTok's sample return_id is the order id) gets its own key."""
    order_keys = _order_keys(registry, channel)
    order_ids = {external_id for external_id, _ in order_keys}
    spec = registry.get(channel)
    for order_id in sorted(order_ids - {i for i in order_ids if i.startswith("ignored-")}):
        if channel == "shopify" and not order_id.isdigit():
            continue
        body, headers = aftersale_payload(channel, refund_id=order_id, order_external_id=order_id,
                                          state="refunded", amount=Decimal("1.00"), updated=WHEN)
        key = spec.identify(body, headers)
        assert key.kind == "aftersale"
        assert key.external_id == f"aftersale:{order_id}"
        assert (key.external_id, key.event_version) not in order_keys


# ---------------------------------------------------------------------------- the simulation helper

SUPPORTED: dict[str, list[tuple[str, str]]] = {
    "taobao": [(s, t) for s in AFTERSALE_STATES for t in ("refund_only", "return_refund")],
    "douyin": [(s, t) for s in AFTERSALE_STATES for t in ("refund_only", "return_refund", "exchange",
                                                          "price_protection", "reship")],
    "pinduoduo": [(s, t) for s in AFTERSALE_STATES for t in ("refund_only", "return_refund", "exchange", "reship")
                  if not (s == "return_shipped" and t != "return_refund")],
    "shopify": [("refunded", "refund_only"), ("refunded", "return_refund")],
    "tiktok_shop": [(s, t) for s in AFTERSALE_STATES for t in ("refund_only", "return_refund", "exchange")],
}
HELPER_CASES = [(c, s, t) for c in AFTERSALE_CHANNELS for s, t in SUPPORTED[c]]


@pytest.mark.parametrize(("channel", "state", "case_type"), HELPER_CASES)
def test_helper_payload_maps_to_what_was_asked(registry: SpecRegistry, channel: str, state: str,
                                               case_type: str) -> None:
    refund_id, order_id = "20261123001", "5940139491234"
    lines = [("TEA-LJ-250", 2)]
    body, headers = aftersale_payload(channel, refund_id=refund_id, order_external_id=order_id, state=state,
                                      amount="59.90", type=case_type, lines=lines, return_carrier="中通快递",
                                      return_waybill="75312345678901", updated=WHEN, reason="不想要了")
    spec = registry.get(channel)
    raw = json.dumps(body, ensure_ascii=False).encode()
    signed = sign(spec.signature, body=raw, secret="s3cret", url="https://hub/x", app_key="k",
                  header=spec.signature_header)
    verify_signature(spec.signature, body=raw, headers={**headers, **signed}, secret="s3cret", url="https://hub/x",
                     app_key="k", header=spec.signature_header)
    payload = spec.parse_body(raw, headers)
    key = spec.identify(payload, headers)
    mapped = spec.map(payload, headers)
    assert isinstance(mapped, MappedAfterSale)
    assert key.kind == "aftersale" and key.external_id == f"aftersale:{refund_id}"
    assert (mapped.external_ref, mapped.order_external_id, mapped.state) == (refund_id, order_id, state)
    assert mapped.updated_at == WHEN
    if channel == "tiktok_shop":      # the type-12 push carries no reason, amount or items
        assert (mapped.reason, mapped.amount, mapped.lines) == ("", None, ())
    else:
        assert mapped.reason == "不想要了"
        assert mapped.amount is not None and mapped.amount.amount == 5990
    if channel in ("taobao", "pinduoduo", "shopify"):
        assert [(line.sku, line.quantity) for line in mapped.lines] == lines
    assert mapped.type == case_type
    if state == "return_shipped" and channel in ("taobao", "douyin", "pinduoduo"):
        assert mapped.return_waybill == "75312345678901"


def test_helper_refuses_what_the_channel_cannot_say() -> None:
    with pytest.raises(ValueError, match="refunded"):
        aftersale_payload("shopify", refund_id="1", order_external_id="2", state="requested", amount=None)
    with pytest.raises(ValueError, match="price_protection"):
        aftersale_payload("pinduoduo", refund_id="1", order_external_id="2", state="requested", amount=None,
                          type="price_protection")
    with pytest.raises(ValueError, match="one sub-order"):
        aftersale_payload("taobao", refund_id="1", order_external_id="2", state="requested", amount=None,
                          lines=[("A", 1), ("B", 1)])
    with pytest.raises(ValueError, match="no after-sale payload"):
        aftersale_payload("jd", refund_id="1", order_external_id="2", state="requested", amount=None)


# --------------------------------------------------------------------------- the spec language itself

BASE_ORDER = {
    "external_id": "id", "currency": {"const": "CNY"}, "placed_at": "created",
    "status": {"path": "status", "map": {"paid": "paid"}},
    "lines": {"path": "lines", "sku": "sku", "quantity": "qty", "unit_price": "price"},
}


def _spec(aftersale: Any, *, messages: Any = None) -> ChannelSpec:
    raw: dict[str, Any] = {
        "messages": messages or [{"when": {"path": "case", "not_null": True}, "kind": "aftersale", "root": "case"},
                                 {"kind": "order"}],
        "order": BASE_ORDER,
        "aftersale": aftersale,
    }
    return ChannelSpec("test", raw, source="test.yaml")


MINIMAL = {"external_id": "id", "order_external_id": "order", "type": {"const": "refund_only"},
           "state": {"path": "status", "map": {"NEW": "requested", "DONE": "refunded"}}}


def test_minimal_section_and_the_order_path_unchanged() -> None:
    spec = _spec(MINIMAL)
    message = {"case": {"id": 7, "order": "A1", "status": "NEW"}}
    key = spec.identify(message, {})
    assert key.kind == "aftersale" and key.external_id == "aftersale:7"
    mapped = spec.map(message, {})
    assert mapped == MappedAfterSale(external_ref="7", order_external_id="A1", type="refund_only", state="requested",
                                     channel_status="NEW", reason="", amount=None, updated_at=None)
    order = {"id": 7, "status": "paid", "created": "2026-11-23T10:00:00+08:00",
             "lines": [{"sku": "S", "qty": 1, "price": "1.00"}]}
    assert spec.identify(order, {}).external_id == "7"
    assert isinstance(spec.map(order, {}), MappedOrder)


def test_state_and_type_outside_the_canonical_sets_fail_naming_the_field() -> None:
    spec = _spec({**MINIMAL, "type": "kind", "state": "status"})   # no map: the values must be canonical
    ok = spec.map({"case": {"id": 1, "order": "A", "kind": "exchange", "status": "rejected"}}, {})
    assert isinstance(ok, MappedAfterSale) and (ok.type, ok.state) == ("exchange", "rejected")
    with pytest.raises(MappingFailed) as failure:
        spec.map({"case": {"id": 1, "order": "A", "kind": "swap", "status": "rejected"}}, {})
    assert failure.value.field == "case.kind"
    with pytest.raises(MappingFailed) as failure:
        spec.map({"case": {"id": 1, "order": "A", "kind": "exchange", "status": "approved"}}, {})
    assert failure.value.field == "case.status"
    with pytest.raises(MappingFailed) as failure:
        _spec(MINIMAL).map({"case": {"id": 1, "order": "A", "status": "LATER"}}, {})
    assert failure.value.field == "case.status" and "LATER" in failure.value.message
    with pytest.raises(MappingFailed) as failure:
        _spec(MINIMAL).map({"case": {"id": 1, "order": "A"}}, {})
    assert failure.value.field == "case.status"
    with pytest.raises(MappingFailed) as failure:
        _spec(MINIMAL).map({"case": {"id": 1, "status": "NEW"}}, {})
    assert failure.value.field == "case.order"


def test_rules_money_lines_and_channel_status() -> None:
    spec = _spec({
        **MINIMAL,
        "version": {"path": "at", "as": "time"},
        "currency": "cur",
        "type": {"rules": [{"when": {"path": "items[*].back", "equals": True}, "type": "return_refund"}],
                 "value": {"const": "refund_only"}},
        "state": {"path": "status", "channel_status": {"join": ["status", "sub"], "sep": "/"},
                  "rules": [{"when": {"path": "waybill", "not_null": True}, "state": "return_shipped"}],
                  "map": {"NEW": "requested"}},
        "amount": {"sum": ["pays[*]"]},
        "updated_at": {"path": "at", "as": "time"},
        "reason": "why",
        "lines": {"path": "items", "sku": "sku", "quantity": "qty", "amount": {"path": "amt", "unit": "cents"},
                  "skip_when": {"path": "qty", "equals": 0}},
        "return_waybill": "waybill",
    })
    case = {"id": 9, "order": "A", "status": "NEW", "sub": "x", "cur": "usd", "pays": ["1.10", "2.20"],
            "at": "2026-11-23T10:00:00+08:00", "why": "broken", "waybill": 123,
            "items": [{"sku": "S1", "qty": 1, "amt": 110, "back": True}, {"sku": "S2", "qty": 0}]}
    mapped = _spec_map(spec, case)
    assert aftersale_to_dict(mapped) == {
        "external_ref": "9", "order_external_id": "A", "type": "return_refund", "state": "return_shipped",
        "channel_status": "NEW/x", "reason": "broken", "currency": "USD", "amount": 330,
        "updated_at": "2026-11-23T02:00:00+00:00", "lines": [{"sku": "S1", "quantity": 1, "amount": 110}],
        "return_carrier": None, "return_waybill": "123"}
    assert spec.identify({"case": case}, {}).event_version == "2026-11-23T02:00:00+00:00"
    with pytest.raises(MappingFailed) as failure:
        _spec_map(spec, {**case, "items": [{"sku": "S1", "qty": -1}]})
    assert failure.value.field == "case.items[0].qty"
    with pytest.raises(MappingFailed) as failure:      # an amount without its currency
        _spec_map(spec, {**case, "cur": None})
    assert failure.value.field == "case.cur"
    with pytest.raises(MappingFailed) as failure:
        _spec_map(spec, {**case, "cur": "RMB"})
    assert failure.value.field == "case.cur"
    no_money = _spec_map(spec, {**{k: v for k, v in case.items() if k != "pays"}, "cur": None, "items": []})
    assert no_money.amount is None and no_money.lines == ()


def _spec_map(spec: ChannelSpec, case: dict[str, Any]) -> MappedAfterSale:
    mapped = spec.map({"case": case}, {})
    assert isinstance(mapped, MappedAfterSale)
    return mapped


@pytest.mark.parametrize(("section", "messages", "error"), [
    ({**MINIMAL, "colour": "x"}, None, "aftersale: unknown key(s) ['colour']"),
    ({k: v for k, v in MINIMAL.items() if k != "state"}, None, "aftersale.state: required"),
    ({k: v for k, v in MINIMAL.items() if k != "order_external_id"}, None, "aftersale.order_external_id: required"),
    ({k: v for k, v in MINIMAL.items() if k != "external_id"}, None, "aftersale.external_id: required"),
    ({**MINIMAL, "state": {"path": "s", "map": {"A": "approved"}}}, None, "aftersale.state.map.A: 'approved'"),
    ({**MINIMAL, "type": {"const": "swap"}}, None, "aftersale.type.value.const: 'swap'"),
    ({**MINIMAL, "type": {"rules": [{"when": {"path": "x", "equals": 1}, "type": "gift"}],
                          "value": {"const": "reship"}}},
     None, "aftersale.type.rules[0].type: 'gift'"),
    ({**MINIMAL, "type": {"rules": [{"when": {"path": "x", "equals": 1}, "type": "reship"}]}}, None,
     "aftersale.type: give exactly one of 'path' or 'value'"),
    ({**MINIMAL, "type": {"path": "t", "channel_status": "t"}}, None,
     "aftersale.type: unknown key(s) ['channel_status']"),
    ({**MINIMAL, "amount": "amt"}, None, "aftersale.currency: required when an amount is mapped"),
    ({**MINIMAL, "currency": {"const": "CNY"}, "lines": {"sku": "s"}}, None, "aftersale.lines.quantity: required"),
    ({**MINIMAL, "currency": {"const": "CNY"}, "lines": {"path": "a..b", "sku": "s", "quantity": "q"}}, None,
     "aftersale.lines.path:"),
    ({**MINIMAL, "reason": {"path": "r", "as": "colour"}}, None, "aftersale.reason.as"),
    (None, [{"kind": "aftersale"}], "aftersale: required because messages has an 'aftersale' kind"),
    (None, [{"kind": "refund"}], "messages[0].kind: 'refund' is not one of ['order', 'status', 'aftersale', 'ignore']"),
])
def test_broken_sections_are_refused_naming_the_key(section: Any, messages: Any, error: str) -> None:
    raw: dict[str, Any] = {"order": BASE_ORDER, "messages": messages or [{"kind": "order"}]}
    if section is not None:
        raw["aftersale"] = section
    with pytest.raises(InvalidChannelSpec) as failure:
        ChannelSpec("test", raw, source="test.yaml")
    assert str(failure.value).startswith("test.yaml: ")
    assert error in str(failure.value)


@pytest.mark.parametrize("channel", CHANNELS)
def test_builtin_specs_have_an_aftersale_section(channel: str) -> None:
    raw = yaml.safe_load((BUILTIN_DIR / f"{channel}.yaml").read_text("utf-8"))
    assert "aftersale" in raw
    assert any(m.get("kind") == "aftersale" for m in raw["messages"])


def test_shopify_refunds_create_is_no_longer_ignored_but_fulfillments_are(registry: SpecRegistry) -> None:
    spec = registry.get("shopify")
    assert spec.identify({"id": 1, "order_id": 2}, {"x-shopify-topic": "fulfillments/create"}).kind == "ignore"
    assert spec.identify({"id": 1, "order_id": 2}, {"x-shopify-topic": "refunds/create"}).kind == "aftersale"
    tiktok = registry.get("tiktok_shop")
    status = tiktok.map({"type": 1, "tts_notification_id": "1",
                         "data": {"order_id": "5", "order_status": "IN_TRANSIT", "update_time": 1795400000}}, {})
    assert isinstance(status, MappedStatus)

"""Order filter rules (issue 3, scope 5): the decision procedure, fail-closed evaluation,
rule-set validation with field paths, the CEL adapter and the seeded defaults."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderhub.adapters.rules import (
    RULE_KINDS,
    OrderFilters,
    compile_order_filters,
    default_rule_set,
    order_facts,
    validate_rule_set,
)
from orderhub.domain.channels.model import MappedLine, MappedOrder
from orderhub.domain.money import Money
from orderhub.domain.orders.model import Address, Buyer
from orderhub.domain.orders.states import OrderStatus
from orderhub.domain.rules import RuleEvaluationFailed, RuleInvalid
from orderhub.domain.rules.filters import HOLD, PASSED, TAG, FilterDecision, FilterRule, decide, parse_filter_rule_set

T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def cny(value: str) -> Money:
    return Money.parse(value, "CNY")


def mapped(**changes: Any) -> MappedOrder:
    """A paid Chinese order for ¥119.80 + ¥10 shipping − ¥5 discount, paid with Alipay."""
    base = MappedOrder(
        external_id="TB-1001", status=OrderStatus.PAID, channel_status="WAIT_SELLER_SEND_GOODS", currency="CNY",
        placed_at=T0, updated_at=T0, paid_at=T0,
        lines=(MappedLine(sku="TEA-001", title="龙井 250g", quantity=2, unit_price=cny("59.90"),
                          discount=cny("0"), tax=cny("0")),),
        shipping_fee=cny("10.00"), discount=cny("5.00"),
        buyer=Buyer(name="王小明", phone="138****5678", email=None),
        shipping_address=Address(country="CN", province="浙江省", city="杭州市", district="西湖区",
                                 detail="文三路 90 号", postcode=None),
        tags=("express",), payment_method="alipay", attributes={"order_type": "fixed"})
    return dataclasses.replace(base, **changes)


def facts(**changes: Any) -> dict[str, Any]:
    return order_facts(mapped(**changes), channel="taobao", shop="tb-1")


# --------------------------------------------------------------------------- decide (pure)
def rule(name: str, action: str = HOLD, **kw: Any) -> FilterRule:
    return FilterRule(name=name, when=f"<{name}>", action=action,
                      reason=kw.get("reason", f"because {name}" if action == HOLD else None),
                      tag=kw.get("tag", name if action == TAG else None))


class Scripted:
    """An evaluator whose outcome per rule name is given: True, False, an exception or any value."""

    def __init__(self, outcomes: Mapping[str, object]) -> None:
        self.outcomes = outcomes
        self.asked: list[str] = []

    def __call__(self, r: FilterRule, _facts: Mapping[str, Any]) -> object:
        self.asked.append(r.name)
        outcome = self.outcomes[r.name]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_no_rules_pass_the_order() -> None:
    assert decide([], {}, Scripted({})) == PASSED == FilterDecision(held=False, rule=None, reason=None, tags=())


def test_first_matching_hold_rule_wins_and_later_holds_are_not_evaluated() -> None:
    rules = [rule("a"), rule("b"), rule("c")]
    ev = Scripted({"a": False, "b": True, "c": True})
    assert decide(rules, {}, ev) == FilterDecision(held=True, rule="b", reason="because b")
    assert ev.asked == ["a", "b"]


def test_every_matching_tag_rule_adds_its_tag_once_even_when_held() -> None:
    rules = [rule("vip", TAG), rule("h"), rule("big", TAG, tag="vip"), rule("gift", TAG), rule("no", TAG)]
    ev = Scripted({"vip": True, "h": True, "big": True, "gift": True, "no": False})
    assert decide(rules, {}, ev) == FilterDecision(held=True, rule="h", reason="because h", tags=("vip", "gift"))


def test_a_rule_that_raises_holds_the_order_fail_closed() -> None:
    rules = [rule("t", TAG), rule("broken", TAG), rule("later")]
    ev = Scripted({"t": True, "broken": RuleEvaluationFailed("no such key 'x'"), "later": True})
    decision = decide(rules, {}, ev)
    assert decision == FilterDecision(held=True, rule="broken",
                                      reason="rule broken could not be evaluated: no such key 'x'", tags=("t",))


def test_an_unexpected_exception_also_holds() -> None:
    decision = decide([rule("r")], {}, Scripted({"r": ZeroDivisionError("division by zero")}))
    assert decision.held and decision.reason == "rule r could not be evaluated: division by zero"


@pytest.mark.parametrize("value", [1, "true", None, [True]])
def test_a_non_boolean_result_holds(value: object) -> None:
    decision = decide([rule("odd", TAG)], {}, Scripted({"odd": value}))
    assert decision.held and decision.rule == "odd"
    assert decision.reason is not None and decision.reason.startswith("rule odd could not be evaluated:")


def test_a_failure_after_the_order_is_held_keeps_the_first_reason() -> None:
    ev = Scripted({"a": True, "b": RuntimeError("boom"), "t": True})
    decision = decide([rule("a"), rule("b", TAG), rule("t", TAG)], {}, ev)
    assert decision == FilterDecision(held=True, rule="a", reason="because a", tags=("t",))


OUTCOMES = st.sampled_from([True, False, "fail"])


@given(st.lists(st.tuples(st.sampled_from([HOLD, TAG]), st.sampled_from(["x", "y", "z"]), OUTCOMES),
                max_size=12))
def test_decision_matches_the_reference_model(spec: list[tuple[str, str, object]]) -> None:
    rules = [rule(f"r{i}", action, tag=tag if action == TAG else None) for i, (action, tag, _) in enumerate(spec)]
    outcomes = {f"r{i}": (RuntimeError("bad") if o == "fail" else o) for i, (_, _, o) in enumerate(spec)}
    decision = decide(rules, {}, Scripted(outcomes))

    deciding = next((r for r, (_, _, o) in zip(rules, spec, strict=True)
                     if o == "fail" or (r.action == HOLD and o is True)), None)
    assert decision.held is (deciding is not None)
    assert decision.rule == (deciding.name if deciding else None)
    if deciding is not None:
        failed = outcomes[deciding.name] is not True
        assert decision.reason == (f"rule {deciding.name} could not be evaluated: bad" if failed else deciding.reason)
    expected_tags = [r.tag for r, (_, _, o) in zip(rules, spec, strict=True) if r.action == TAG and o is True]
    assert decision.tags == tuple(dict.fromkeys(expected_tags))


# --------------------------------------------------------------------------- validation
VALID: dict[str, Any] = {
    "params": {"accepted_payment_methods": ["alipay"], "limits": {"cn": 5}},
    "rules": [{"name": "test", "when": "true", "action": "hold", "reason": "test order"},
              {"name": "big", "when": "order.total > 100", "action": "tag", "tag": "high_value"}],
}


def with_change(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(VALID)
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


DELETE = object()


def test_a_valid_body_parses_in_order() -> None:
    parsed = parse_filter_rule_set(VALID)
    assert [r.name for r in parsed.rules] == ["test", "big"]
    assert parsed.rules[1] == FilterRule("big", "order.total > 100", TAG, None, "high_value")
    assert parsed.params == VALID["params"]
    assert parse_filter_rule_set({"rules": []}).rules == ()


@pytest.mark.parametrize(("path", "value", "field"), [
    (("rules",), DELETE, "rules"),
    (("rules",), {"name": "x"}, "rules"),
    (("params",), ["alipay"], "params"),
    (("params", "bad"), "a\x00b", "params.bad"),
    (("params", "ratio"), float("nan"), "params.ratio"),
    (("params", "when"), datetime(2026, 1, 1, tzinfo=UTC), "params.when"),
    (("rulez",), [], "rulez"),
    (("rules", 0), "hold everything", "rules[0]"),
    (("rules", 0, "name"), DELETE, "rules[0].name"),
    (("rules", 0, "name"), "has space", "rules[0].name"),
    (("rules", 1, "name"), "test", "rules[1].name"),
    (("rules", 1, "when"), DELETE, "rules[1].when"),
    (("rules", 1, "when"), "   ", "rules[1].when"),
    (("rules", 1, "when"), "x" * 4001, "rules[1].when"),
    (("rules", 0, "action"), "drop", "rules[0].action"),
    (("rules", 0, "reason"), DELETE, "rules[0].reason"),
    (("rules", 0, "tag"), "x", "rules[0].tag"),
    (("rules", 1, "tag"), DELETE, "rules[1].tag"),
    (("rules", 1, "tag"), "two words", "rules[1].tag"),
    (("rules", 1, "priority"), 1, "rules[1].priority"),
])
def test_invalid_bodies_name_the_field_at_fault(path: tuple[Any, ...], value: Any, field: str) -> None:
    body = with_change(path, value)
    with pytest.raises(RuleInvalid) as err:
        compile_order_filters(body, version=1)
    assert err.value.field == field
    assert err.value.code == "rule_invalid"


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(RuleInvalid) as err:
        parse_filter_rule_set(["rules"])
    assert err.value.field == "body"


# --------------------------------------------------------------------------- CEL adapter
def rules_body(*rules: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"params": params or {}, "rules": list(rules)}


def hold(name: str, when: str) -> dict[str, Any]:
    return {"name": name, "when": when, "action": "hold", "reason": f"{name} matched"}


def test_a_syntax_error_names_the_rule_field_and_position() -> None:
    body = rules_body(hold("ok", "true"), hold("broken", "order.total >"))
    with pytest.raises(RuleInvalid) as err:
        compile_order_filters(body, version=1)
    assert err.value.field == "rules[1].when"
    assert "rule broken" in err.value.message
    assert "line 1, column 14" in err.value.message


@pytest.mark.parametrize(("when", "hint"), [
    ("ordr.total > 0", "ordr"),                     # misspelt variable
    ("order.totl > 0", "totl"),                     # misspelt order field
    ("order.lines.exists(l, l.qty > 1)", "qty"),    # misspelt line field
    ("params.missing > 0", "missing"),              # a param the rule set doesn't define
    ("shout(order.shop)", "shout"),                 # unknown function
    ("order.total", "int"),                          # not a condition
])
def test_mistakes_that_would_hold_every_order_are_refused_when_stored(when: str, hint: str) -> None:
    with pytest.raises(RuleInvalid) as err:
        compile_order_filters(rules_body(hold("r", when)), version=1)
    assert err.value.field == "rules[0].when"
    assert hint in err.value.message


def test_channel_attributes_may_be_read_but_fail_closed_when_absent() -> None:
    filters = compile_order_filters(rules_body(hold("presale", "order.attributes.presale == true")), version=3)
    assert filters.version == 3
    assert filters.decide(facts(attributes={"presale": True})).held
    assert not filters.decide(facts(attributes={"presale": False})).held
    decision = filters.decide(facts(attributes={}))
    assert decision.held and decision.rule == "presale"
    assert decision.reason is not None
    assert decision.reason.startswith("rule presale could not be evaluated: no such key 'presale'")


def test_runtime_errors_become_hold_reasons() -> None:
    filters = compile_order_filters(rules_body(hold("div", "100 / (order.total - order.total) > 1")), version=1)
    decision = filters.decide(facts())
    assert decision.held and decision.rule == "div" and "could not be evaluated" in (decision.reason or "")


def test_rules_see_order_and_params() -> None:
    body = rules_body(
        {"name": "many", "when": "order.item_count >= params.bulk", "action": "tag", "tag": "bulk"},
        {"name": "zj", "when": "order.address.province == '浙江省' && order.buyer.email == ''", "action": "tag",
         "tag": "zj"},
        {"name": "tea", "when": "order.lines.exists(l, l.sku.startsWith('TEA') && l.unit_price >= 5990)",
         "action": "tag", "tag": "tea"},
        {"name": "amount", "when": "order.total_amount == '124.80' && 'express' in order.tags", "action": "tag",
         "tag": "amount"},
        params={"bulk": 2})
    decision = compile_order_filters(body, version=1).decide(facts())
    assert decision == FilterDecision(held=False, tags=("bulk", "zj", "tea", "amount"))


def test_filters_holding_all_hold_every_order() -> None:
    filters = OrderFilters.holding_all(version=7, problem="rule x no longer compiles")
    decision = filters.decide(facts())
    assert decision.held and decision.reason == "order_filters v7 can't be used: rule x no longer compiles"


# --------------------------------------------------------------------------- facts
def test_order_facts_shape() -> None:
    f = facts()
    assert f == {
        "channel": "taobao", "shop": "tb-1", "external_id": "TB-1001", "status": "paid",
        "channel_status": "WAIT_SELLER_SEND_GOODS", "currency": "CNY",
        "total": 11980 + 1000 - 500, "total_amount": "124.80", "shipping_fee": 1000, "discount": 500,
        "payment_method": "alipay", "tags": ["express"],
        "buyer": {"name": "王小明", "phone": "138****5678", "email": ""},
        "address": {"country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
                    "detail": "文三路 90 号", "postcode": ""},
        "lines": [{"sku": "TEA-001", "title": "龙井 250g", "quantity": 2, "unit_price": 5990}],
        "line_count": 1, "item_count": 2, "attributes": {"order_type": "fixed"},
    }


def test_order_facts_line_discounts_tax_and_missing_values() -> None:
    lines = (MappedLine("A", None, 3, cny("10.00"), discount=cny("2.00"), tax=cny("1.30")),
             MappedLine("B", "b", 1, cny("0.05"), discount=cny("0"), tax=cny("0")))
    f = facts(lines=lines, shipping_address=None, payment_method=None, buyer=Buyer(), shipping_fee=cny("0"),
              discount=cny("0"), currency="CNY")
    assert f["total"] == 3000 - 200 + 130 + 5
    assert f["total_amount"] == "29.35"
    assert f["address"] == dict.fromkeys(("country", "province", "city", "district", "detail", "postcode"), "")
    assert f["buyer"] == {"name": "", "phone": "", "email": ""}
    assert f["payment_method"] == ""
    assert f["lines"][0]["title"] == ""
    assert (f["line_count"], f["item_count"]) == (2, 4)


# --------------------------------------------------------------------------- defaults and kinds
@pytest.fixture(scope="module")
def defaults() -> OrderFilters:
    return compile_order_filters(default_rule_set("order_filters"), version=0)


def with_params(**params: Any) -> OrderFilters:
    body = default_rule_set("order_filters")
    body["params"].update(params)
    return compile_order_filters(body, version=1)


def test_an_ordinary_paid_order_passes_the_defaults(defaults: OrderFilters) -> None:
    assert defaults.decide(facts()) == PASSED


def test_defaults_hold_test_orders(defaults: OrderFilters) -> None:
    decision = defaults.decide(facts(attributes={"test": True}))
    assert (decision.held, decision.rule) == (True, "test_order")
    assert not defaults.decide(facts(attributes={"test": False})).held


def test_defaults_hold_a_wallet_payment_method_the_merchant_never_listed() -> None:
    filters = with_params(accepted_payment_methods=["alipay", "wechat_pay"])
    assert not filters.decide(facts(payment_method="wechat_pay")).held
    decision = filters.decide(facts(payment_method="huabei_wallet"))
    assert (decision.held, decision.rule) == (True, "unlisted_payment_method")
    assert "accepted_payment_methods" in (decision.reason or "")
    # Not paid yet: nothing to hold back from fulfillment.
    assert not filters.decide(facts(payment_method="huabei_wallet", status=OrderStatus.PENDING_PAYMENT)).held


def test_defaults_accept_every_payment_method_while_none_is_listed(defaults: OrderFilters) -> None:
    assert not defaults.decide(facts(payment_method="huabei_wallet")).held


def test_defaults_hold_paid_orders_without_a_shipping_country(defaults: OrderFilters) -> None:
    decision = defaults.decide(facts(shipping_address=None))
    assert (decision.held, decision.rule) == (True, "missing_shipping_country")
    assert not defaults.decide(facts(shipping_address=None, status=OrderStatus.PENDING_PAYMENT)).held


def test_defaults_hold_zero_total_orders(defaults: OrderFilters) -> None:
    free = (MappedLine("GIFT", None, 1, cny("0"), discount=cny("0"), tax=cny("0")),)
    decision = defaults.decide(facts(lines=free, shipping_fee=cny("0"), discount=cny("0")))
    assert (decision.held, decision.rule) == (True, "zero_total")


def test_defaults_tag_high_value_orders() -> None:
    filters = with_params(high_value_minor=10000)
    assert filters.decide(facts()) == FilterDecision(held=False, tags=("high_value",))
    assert with_params(high_value_minor=12480).decide(facts()) == PASSED


def test_first_default_hold_wins_over_later_ones(defaults: OrderFilters) -> None:
    decision = defaults.decide(facts(attributes={"test": True}, shipping_address=None))
    assert decision.rule == "test_order"


def test_default_rule_set_is_a_fresh_copy_and_kinds_are_registered() -> None:
    body = default_rule_set("order_filters")
    body["rules"].clear()
    assert default_rule_set("order_filters")["rules"]
    assert "order_filters" in RULE_KINDS
    validate_rule_set("order_filters", default_rule_set("order_filters"))
    with pytest.raises(LookupError):
        default_rule_set("routing")
    with pytest.raises(LookupError):
        validate_rule_set("routing", {"rules": []})

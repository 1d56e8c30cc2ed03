"""Carrier routing and waves (``carrier_routing``): the seeded rules, first-match order,
cheapest/fastest rates with region and weight limits, the default fallback, paid hour in the
rule set's time zone, run-time failures skipped and explained, and every validation path."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from orderhub.adapters.carriers.code_tables import CARRIER_IDS
from orderhub.adapters.routing import (
    CARRIER_ROUTING,
    CarrierRouting,
    RoutingDecision,
    compile_carrier_routing,
    order_facts_of,
    shipment_facts,
    validate_carrier_routing,
)
from orderhub.adapters.rules import _load_default
from orderhub.domain.orders.model import Address, Order
from orderhub.domain.orders.states import OrderStatus
from orderhub.domain.rules import RuleInvalid
from tests.rule_helpers import with_value
from tests.unit import factories

# 2026-11-21 is a Saturday; 03:59 UTC is 11:59 in Shanghai, 04:00 UTC is noon.
BEFORE_NOON = datetime(2026, 11, 21, 3, 59, tzinfo=UTC)
NOON = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)


def default_body() -> dict[str, Any]:
    return copy.deepcopy(_load_default(CARRIER_ROUTING))


@pytest.fixture(scope="module")
def seeded() -> CarrierRouting:
    return compile_carrier_routing(default_body(), version=0, known_carriers=CARRIER_IDS)


def paid_order(*, tags: tuple[str, ...] = (), address: Address | None = None, paid_at: datetime = BEFORE_NOON,
               **extra: Any) -> Order:
    """A paid order created through the domain model (factories: ¥119.80 of tea to Hangzhou)."""
    kwargs: dict[str, Any] = {"tags": tags, "paid_at": paid_at, "now": NOON}
    if address is not None:
        kwargs["shipping_address"] = address
    return factories.order(OrderStatus.PAID, **kwargs, **extra)


def ship_of(order: Order, *, weight_g: int = 800, value_minor: int | None = None,
            timezone: str = "Asia/Shanghai") -> dict[str, Any]:
    address = order.shipping_address
    assert address is not None
    return shipment_facts(warehouse="hz-1", country=address.country, province=address.province or "",
                          city=address.city or "", weight_g=weight_g,
                          value_minor=order.total.amount if value_minor is None else value_minor,
                          item_count=sum(line.quantity for line in order.lines), paid_at=order.paid_at,
                          timezone=timezone)


def route(routing: CarrierRouting, order: Order, **shipment: Any) -> RoutingDecision:
    return routing.decide(order_facts_of(order), ship_of(order, **shipment))


def ship(**changes: Any) -> dict[str, Any]:
    """Shipment facts to Hangzhou, 800 g, ¥100, paid 11:59 Shanghai time."""
    kwargs: dict[str, Any] = {"warehouse": "hz-1", "country": "CN", "province": "浙江省", "city": "杭州市",
                              "weight_g": 800, "value_minor": 10000, "item_count": 1, "paid_at": BEFORE_NOON,
                              "timezone": "Asia/Shanghai"}
    kwargs.update(changes)
    return shipment_facts(**kwargs)


ORDER: dict[str, Any] = {"tags": [], "total": 10000, "address": {"country": "CN"}}

US = Address(country="US", province="CA", city="San Francisco", postcode="94105")
XINJIANG = Address(country="CN", province="新疆维吾尔自治区", city="乌鲁木齐市", district="天山区")


def body(*, rules: list[dict[str, Any]] | None = None, rates: list[dict[str, Any]] | None = None,
         waves: list[dict[str, Any]] | None = None, **params: Any) -> dict[str, Any]:
    return {
        "params": {"timezone": "Asia/Shanghai", "default_carrier": "zto", "rates": rates or [], **params},
        "rules": rules or [],
        "waves": waves or [],
        "default_wave": {"name": "standard", "priority": 5},
    }


def compiled(**kw: Any) -> CarrierRouting:
    return compile_carrier_routing(body(**kw), version=3, known_carriers=CARRIER_IDS)


# --------------------------------------------------------------------------- the seeded rules
def test_the_default_rule_set_validates_with_the_known_carriers(seeded: CarrierRouting) -> None:
    validate_carrier_routing(default_body(), known_carriers=CARRIER_IDS)
    assert [rule.name for rule in seeded.rules] == [
        "overseas", "overseas_fallback", "express_sf", "remote_province_ems", "high_value_fastest", "heavy_cheapest"]
    assert seeded.timezone == "Asia/Shanghai"
    assert seeded.default_carrier == "zto"
    assert {rate.carrier for rate in seeded.rates} == {"sf", "zto", "yto", "sto", "yunda", "jdl", "ems", "dhl",
                                                       "ups", "fedex"}


def test_overseas_goes_by_the_cheapest_international_rate(seeded: CarrierRouting) -> None:
    decision = route(seeded, paid_order(address=US), weight_g=1000)
    # 1 kg: ems 90+30, ups 115+42, fedex 118+41, dhl 120+40; domestic rates don't serve US.
    assert (decision.carrier, decision.rule, decision.cost_minor, decision.sla_hours) == ("ems", "overseas", 12000, 168)
    assert decision.explanation.startswith("rule overseas: cheapest rate is ems (120.00 CNY, 168 h)")


def test_overseas_too_heavy_for_every_rate_falls_through_to_dhl(seeded: CarrierRouting) -> None:
    decision = route(seeded, paid_order(address=US), weight_g=80_000)
    assert (decision.carrier, decision.rule, decision.cost_minor) == ("dhl", "overseas_fallback", None)
    assert "rule overseas matched but no rate serves US-CA at 80000 g" in decision.explanation


def test_express_tag_goes_by_sf(seeded: CarrierRouting) -> None:
    decision = route(seeded, paid_order(tags=("express",)), weight_g=1500)
    assert (decision.carrier, decision.rule, decision.cost_minor, decision.sla_hours) == ("sf", "express_sf", 2000, 24)
    assert decision.explanation.startswith("rule express_sf: carrier sf")


def test_remote_provinces_go_by_ems(seeded: CarrierRouting) -> None:
    decision = route(seeded, paid_order(address=XINJIANG))
    assert (decision.carrier, decision.rule) == ("ems", "remote_province_ems")


def test_high_value_goes_by_the_fastest_rate(seeded: CarrierRouting) -> None:
    decision = route(seeded, paid_order(), value_minor=250_000)
    assert (decision.carrier, decision.rule, decision.sla_hours) == ("sf", "high_value_fastest", 24)


def test_heavy_goes_by_the_cheapest_rate(seeded: CarrierRouting) -> None:
    decision = route(seeded, paid_order(), weight_g=10_000)
    # 10 kg: jdl 12+8 beats zto/yto 5+20, yunda 4.6+21, sto 4.5+22, ems 8+30, sf 12+40.
    assert (decision.carrier, decision.rule, decision.cost_minor) == ("jdl", "heavy_cheapest", 2000)


def test_anything_else_goes_by_the_default_carrier(seeded: CarrierRouting) -> None:
    decision = route(seeded, paid_order(), weight_g=1200)
    assert (decision.carrier, decision.rule, decision.cost_minor, decision.sla_hours) == ("zto", "default", 900, 48)
    assert decision.explanation.startswith("no rule chose a carrier: default carrier zto")


def test_express_paid_before_noon_shanghai_time_goes_in_the_first_wave(seeded: CarrierRouting) -> None:
    early = route(seeded, paid_order(tags=("express",), paid_at=BEFORE_NOON))
    noon = route(seeded, paid_order(tags=("express",), paid_at=NOON))
    plain = route(seeded, paid_order(paid_at=BEFORE_NOON))
    assert (early.wave, early.priority) == ("first_wave", 1)
    assert (noon.wave, noon.priority) == ("express_later", 2)
    assert (plain.wave, plain.priority) == ("standard", 5)
    assert "default wave standard (priority 5)" in plain.explanation
    assert "wave first_wave (priority 1)" in early.explanation


def test_an_unpaid_express_order_is_not_taken_for_an_early_one(seeded: CarrierRouting) -> None:
    decision = seeded.decide({**ORDER, "tags": ["express"]}, ship(paid_at=None))
    assert decision.wave == "express_later"


# --------------------------------------------------------------------------- facts
def test_order_facts_come_from_the_domain_order() -> None:
    order = paid_order(tags=("express", "gift"))
    facts = order_facts_of(order)
    assert facts["channel"] == "own_site" and facts["shop"] == "main" and facts["external_id"] == "WEB-10001"
    assert (facts["status"], facts["currency"], facts["total"], facts["total_amount"]) == ("paid", "CNY", 11980,
                                                                                           "119.80")
    assert facts["tags"] == ["express", "gift"]
    assert facts["address"] == {"country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
                                "postcode": "310000"}
    assert facts["lines"] == [{"sku": "TEA-001", "title": "龙井 250g", "quantity": 2, "unit_price": 5990}]
    assert (facts["line_count"], facts["item_count"]) == (1, 2)


def test_an_order_without_address_has_blank_address_facts() -> None:
    facts = order_facts_of(paid_order(shipping_address=None))
    assert facts["address"] == {"country": "", "province": "", "city": "", "district": "", "postcode": ""}


@pytest.mark.parametrize(("paid_at", "hour", "weekday"), [
    (BEFORE_NOON, 11, 6),
    (NOON, 12, 6),
    (datetime(2026, 11, 22, 16, 30, tzinfo=UTC), 0, 1),  # Sunday evening UTC is Monday in Shanghai
    (None, -1, 0),
])
def test_paid_hour_and_weekday_are_local_to_the_rule_set_zone(paid_at: datetime | None, hour: int,
                                                               weekday: int) -> None:
    facts = ship(paid_at=paid_at)
    assert (facts["paid_local_hour"], facts["paid_weekday"]) == (hour, weekday)


def test_shipment_facts_read_in_another_zone() -> None:
    assert ship(paid_at=BEFORE_NOON, timezone="America/New_York")["paid_local_hour"] == 22


def test_shipment_facts_normalize_the_destination() -> None:
    facts = ship(country=" us ", province=" CA ", city=" SF ")
    assert (facts["country"], facts["province"], facts["city"]) == ("US", "CA", "SF")
    assert (facts["warehouse"], facts["weight_g"], facts["value"], facts["item_count"]) == ("hz-1", 800, 10000, 1)


@pytest.mark.parametrize(("changes", "message"), [
    ({"weight_g": -1}, "weight_g"),
    ({"value_minor": 1.5}, "value_minor"),
    ({"item_count": True}, "item_count"),
    ({"paid_at": datetime(2026, 11, 21, 3, 59)}, "timezone-aware"),  # naive on purpose
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
])
def test_shipment_facts_refuse_caller_mistakes(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ship(**changes)


# --------------------------------------------------------------------------- rules and rates
def test_the_first_matching_rule_wins() -> None:
    both = [{"name": "a", "when": "shipment.weight_g > 0", "carrier": "yto"},
            {"name": "b", "when": "shipment.weight_g > 0", "carrier": "sto"}]
    assert compiled(rules=both).decide(ORDER, ship()).rule == "a"
    assert compiled(rules=both[::-1]).decide(ORDER, ship()).carrier == "sto"


RATES = [
    {"carrier": "sto", "regions": ["CN-浙江"], "base_fee": "3.00", "per_kg": "1.00", "sla_hours": 72},
    {"carrier": "zto", "regions": ["CN", "!CN-新疆"], "base_fee": "5", "per_kg": "1.00", "sla_hours": 48,
     "max_weight_g": 3000},
    {"carrier": "yto", "regions": ["CN"], "base_fee": "5.00", "per_kg": "1.00", "sla_hours": 48},
    {"carrier": "sf", "regions": ["*"], "base_fee": "12.00", "per_kg": "2.00", "sla_hours": 24, "max_weight_g": 5000},
    {"carrier": "jdl", "regions": ["CN"], "base_fee": "20.00", "per_kg": "0.50", "sla_hours": 24},
]
CHEAPEST = [{"name": "cheap", "when": "true", "choose": "cheapest"}]
FASTEST = [{"name": "fast", "when": "true", "choose": "fastest"}]


@pytest.mark.parametrize(("province", "weight_g", "carrier", "cost"), [
    ("浙江省", 800, "sto", 400),         # "CN-浙江" matches the province with or without 省
    ("江苏省", 800, "yto", 600),         # zto and yto cost the same and are as fast: carrier id decides
    ("新疆维吾尔自治区", 800, "yto", 600),  # "!CN-新疆" keeps zto out
    ("江苏省", 3001, "yto", 900),        # yto 5+4 (4 started kg)
    ("江苏省", 0, "yto", 500),           # no weight: the base fee
])
def test_cheapest_rate_among_those_serving_the_destination(province: str, weight_g: int, carrier: str,
                                                          cost: int) -> None:
    decision = compiled(rules=CHEAPEST, rates=RATES).decide(ORDER, ship(province=province, weight_g=weight_g))
    assert (decision.carrier, decision.cost_minor) == (carrier, cost)


def test_cheapest_ties_are_broken_by_speed_before_carrier_id() -> None:
    rates = [{"carrier": "sto", "regions": ["*"], "base_fee": "5.00", "per_kg": "0", "sla_hours": 72},
             {"carrier": "zto", "regions": ["*"], "base_fee": "5.00", "per_kg": "0", "sla_hours": 48}]
    assert compiled(rules=CHEAPEST, rates=rates).decide(ORDER, ship()).carrier == "zto"


def test_fastest_rate_with_ties_broken_by_cost_and_max_weight_respected() -> None:
    routing = compiled(rules=FASTEST, rates=RATES)
    light = routing.decide(ORDER, ship(weight_g=1000))   # sf 12+2 beats jdl 20+0.5, both 24 h
    heavy = routing.decide(ORDER, ship(weight_g=6000))   # sf takes at most 5 kg
    abroad = routing.decide(ORDER, ship(country="JP", province="", weight_g=1000))
    assert (light.carrier, light.cost_minor, light.sla_hours) == ("sf", 1400, 24)
    assert (heavy.carrier, heavy.cost_minor) == ("jdl", 2300)
    assert abroad.carrier == "sf"  # only "*" serves Japan
    assert abroad.explanation.startswith("rule fast: fastest rate is sf (14.00 CNY, 24 h)")


def test_choose_without_an_eligible_rate_falls_through_to_the_next_rule_then_the_default() -> None:
    rules = [*CHEAPEST, {"name": "abroad", "when": 'shipment.country != "CN"', "carrier": "dhl"}]
    routing = compiled(rules=rules, rates=RATES[:3])
    abroad = routing.decide(ORDER, ship(country="US", province="NY"))
    assert (abroad.carrier, abroad.rule, abroad.cost_minor, abroad.sla_hours) == ("dhl", "abroad", None, None)
    assert "rule cheap matched but no rate serves US-NY at 800 g, so the next rule was tried" in abroad.explanation
    nowhere = compiled(rules=CHEAPEST, rates=RATES[:3]).decide(ORDER, ship(country="US", province=""))
    assert (nowhere.carrier, nowhere.rule) == ("zto", "default")
    assert "no rate serves US at 800 g" in nowhere.explanation


def test_with_no_rules_the_default_carrier_and_wave_apply() -> None:
    decision = compiled().decide(ORDER, ship())
    assert decision == RoutingDecision(carrier="zto", rule="default", wave="standard", priority=5, cost_minor=None,
                                       sla_hours=None, explanation="no rule chose a carrier: default carrier zto; "
                                       "default wave standard (priority 5)")


def test_params_feed_the_conditions() -> None:
    routing = compiled(rules=[{"name": "vip", "when": "order.total > params.vip_minor", "carrier": "sf"}],
                       vip_minor=5000)
    assert routing.decide(ORDER, ship()).carrier == "sf"
    assert routing.decide({**ORDER, "total": 100}, ship()).carrier == "zto"


# --------------------------------------------------------------------------- run-time failures
def test_a_rule_that_fails_at_run_time_is_skipped_and_named() -> None:
    routing = compiled(
        rules=[{"name": "zoned", "when": 'params.zones[shipment.province] == "far"', "carrier": "ems"},
               {"name": "odd", "when": 'shipment.province == "" ? true : shipment.value', "carrier": "sf"},
               {"name": "later", "when": "true", "carrier": "yto"}],
        zones={"西藏自治区": "far"})
    decision = routing.decide(ORDER, ship())
    assert (decision.carrier, decision.rule) == ("yto", "later")
    assert "rule zoned skipped: could not be evaluated: no such key '浙江省'" in decision.explanation
    assert "rule odd skipped: could not be evaluated: the condition gave int 10000" in decision.explanation
    assert routing.decide(ORDER, ship(province="西藏自治区")).carrier == "ems"


def test_a_wave_that_fails_at_run_time_is_skipped_and_named() -> None:
    routing = compiled(waves=[{"name": "zoned", "when": 'params.zones[shipment.province] == "near"', "priority": 1},
                              {"name": "second", "when": "shipment.paid_local_hour < 12", "priority": 2}],
                       zones={})
    decision = routing.decide(ORDER, ship())
    assert (decision.wave, decision.priority) == ("second", 2)
    assert "wave zoned skipped: could not be evaluated" in decision.explanation


def test_a_rule_for_a_carrier_without_a_serving_rate_has_no_cost() -> None:
    routing = compiled(rules=[{"name": "sf_all", "when": "true", "carrier": "sf"}], rates=RATES)
    decision = routing.decide(ORDER, ship(weight_g=9000))  # sf's rate stops at 5 kg
    assert (decision.carrier, decision.cost_minor, decision.sla_hours) == ("sf", None, None)
    assert decision.explanation.startswith("rule sf_all: carrier sf;")


# --------------------------------------------------------------------------- validation
def _set(path: list[Any], value: Any) -> dict[str, Any]:
    """The seeded body with the value at ``path`` replaced (or removed, for ``...``)."""
    return with_value(default_body(), path, value)


@pytest.mark.parametrize(("path", "value", "field", "message"), [
    (["rules", 1, "when"], "shipment.country !=", "rules[1].when", "not valid CEL"),
    (["rules", 0, "carrier"], "royal_mail", "rules[0]", "either carrier or choose"),
    (["rules", 1, "carrier"], "royal_mail", "rules[1].carrier", "known carriers: cainiao, dhl, ems"),
    (["rules", 0, "choose"], "slowest", "rules[0].choose", "cheapest, fastest"),
    (["rules", 1, "carrier"], ..., "rules[1]", "needs carrier"),
    (["rules", 1, "name"], "overseas", "rules[1].name", "duplicate rule name"),
    (["rules", 1, "name"], "default", "rules[1].name", "reserved"),
    (["rules", 1, "name"], "has space", "rules[1].name", "name must be"),
    (["rules", 1, "when"], ..., "rules[1].when", "when is required"),
    (["rules", 1, "carier"], "sf", "rules[1].carier", "unknown field"),
    (["rules", 2, "when"], "shipment.wieght_g > 1", "rules[2].when", "'wieght_g'"),
    (["rules", 2, "when"], "shipmnt.weight_g > 1", "rules[2].when", "`order`, `shipment` and `params`"),
    (["rules", 2, "when"], "shipment.weight_g", "rules[2].when", "must be true or false"),
    (["rules", 2, "when"], "params.no_such_param > 1", "rules[2].when", "'no_such_param'"),
    (["rules"], "all of them", "rules", "must be a list"),
    (["rules", 0], "overseas", "rules[0]", "an object"),
    (["params", "rates", 2, "per_kg"], "two yuan", "params.rates[2].per_kg", "not a decimal amount"),
    (["params", "rates", 2, "per_kg"], "1.005", "params.rates[2].per_kg", "decimal places"),
    (["params", "rates", 2, "per_kg"], 1.5, "params.rates[2].per_kg", "written as text"),
    (["params", "rates", 2, "base_fee"], "-1.00", "params.rates[2].base_fee", "negative"),
    (["params", "rates", 2, "sla_hours"], "48", "params.rates[2].sla_hours", "whole number"),
    (["params", "rates", 2, "max_weight_g"], 0, "params.rates[2].max_weight_g", "whole number"),
    (["params", "rates", 2, "carrier"], "pony", "params.rates[2].carrier", "unknown carrier"),
    (["params", "rates", 2, "regions"], [], "params.rates[2].regions", "non-empty list"),
    (["params", "rates", 2, "regions"], ["cn"], "params.rates[2].regions[0]", "country code"),
    (["params", "rates", 2, "regions"], ["CN-"], "params.rates[2].regions[0]", "no province"),
    (["params", "rates", 2, "regions"], ["!*"], "params.rates[2].regions[0]", "excludes everywhere"),
    (["params", "rates", 2, "regions"], [7], "params.rates[2].regions[0]", "a region is"),
    (["params", "rates", 2, "sla_hours"], ..., "params.rates[2].sla_hours", "required"),
    (["params", "rates", 2, "price"], "1.00", "params.rates[2].price", "unknown field"),
    (["params", "rates", 2], "sf", "params.rates[2]", "a rate must be an object"),
    (["params", "rates"], {"sf": 1}, "params.rates", "list of carrier rates"),
    (["params", "timezone"], "Mars/Olympus", "params.timezone", "IANA time zone"),
    (["params", "timezone"], "../../etc/passwd", "params.timezone", "IANA time zone"),
    (["params", "timezone"], ..., "params.timezone", "IANA time zone"),
    (["params", "default_carrier"], "pony", "params.default_carrier", "known carriers"),
    (["params"], ..., "params", "params is required"),
    (["waves", 0, "priority"], "1", "waves[0].priority", "whole number from 0 to 99"),
    (["waves", 0, "priority"], True, "waves[0].priority", "whole number"),
    (["waves", 0, "priority"], 100, "waves[0].priority", "whole number"),
    (["waves", 0, "when"], "order.tagz == []", "waves[0].when", "'tagz'"),
    (["waves", 0, "when"], "(", "waves[0].when", "not valid CEL"),
    (["waves", 1, "name"], "first_wave", "waves[1].name", "duplicate wave name"),
    (["waves", 1, "name"], "w" * 61, "waves[1].name", "1–60 letters"),
    (["rules", 1, "name"], "r" * 101, "rules[1].name", "1–100 letters"),
    (["waves", 0, "carrier"], "sf", "waves[0].carrier", "unknown field"),
    (["default_wave", "priority"], ..., "default_wave.priority", "whole number"),
    (["default_wave", "when"], "true", "default_wave.when", "unknown field"),
    (["default_wave"], "standard", "default_wave", "object with name and priority"),
    (["routes"], [], "routes", "unknown field"),
])
def test_invalid_rule_sets_are_refused_with_the_field_at_fault(path: list[Any], value: Any, field: str,
                                                               message: str) -> None:
    with pytest.raises(RuleInvalid, match=message) as caught:
        validate_carrier_routing(_set(path, value), known_carriers=CARRIER_IDS)
    assert caught.value.field == field


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(RuleInvalid) as caught:
        compile_carrier_routing([], version=1, known_carriers=CARRIER_IDS)  # type: ignore[arg-type]
    assert caught.value.field == "body"


def test_a_carrier_is_known_only_if_the_caller_says_so() -> None:
    with pytest.raises(RuleInvalid, match="known carriers: sf, zto") as caught:
        validate_carrier_routing(default_body(), known_carriers=("sf", "zto"))
    assert caught.value.field == "params.rates[1].carrier"


def test_a_key_computed_from_the_data_is_left_to_run_time() -> None:
    routing = compiled(rules=[{"name": "zoned", "when": 'params.zones[shipment.province] == "far"',
                               "carrier": "ems"}], zones={"西藏自治区": "far"})
    assert routing.version == 3
    assert [rule.name for rule in routing.rules] == ["zoned"]


def test_the_default_wave_may_be_left_out() -> None:
    without = default_body()
    del without["default_wave"]
    routing = compile_carrier_routing(without, version=1, known_carriers=CARRIER_IDS)
    assert (routing.default_wave.name, routing.default_wave.priority) == ("standard", 5)

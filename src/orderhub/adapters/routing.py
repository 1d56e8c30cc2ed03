"""Carrier routing and waves (``carrier_routing`` rule sets): which carrier takes a shipment
and in which picking wave it goes out.

A rule set (format in ``docs/rules.md``) carries a cost/SLA table of carrier rates, CEL
rules tried in order (the first match names a carrier, or asks for the cheapest or fastest
rate that serves the destination) and CEL wave rules (the first match gives the wave and its
priority). Conditions see ``order`` (:func:`order_facts_of`), ``shipment``
(:func:`shipment_facts`) and ``params``.

Routing must never stop fulfilment: a condition that fails at run time is skipped and named
in the decision's explanation, and when nothing matches the default carrier and wave apply.
Broken rule sets are refused when stored (:func:`compile_carrier_routing`), with the field
at fault.
"""

from __future__ import annotations

import copy
import re
import zoneinfo
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cel

from orderhub.adapters.rules import compile_condition, computed_key, evaluate, goods_facts, only_keys, try_on_sample
from orderhub.domain.errors import InvalidMoney
from orderhub.domain.money import Money
from orderhub.domain.orders.model import Order
from orderhub.domain.rules import RuleEvaluationFailed, RuleInvalid
from orderhub.domain.rules.filters import MAX_RULES, MAX_WHEN_LENGTH, _json_value, _text

__all__ = [
    "CARRIER_ROUTING",
    "CHEAPEST",
    "FASTEST",
    "CarrierRouting",
    "Rate",
    "Region",
    "RoutingDecision",
    "RoutingRule",
    "Wave",
    "compile_carrier_routing",
    "order_facts_of",
    "shipment_facts",
    "validate_carrier_routing",
]

CARRIER_ROUTING = "carrier_routing"

CHEAPEST = "cheapest"
FASTEST = "fastest"
CHOICES = (CHEAPEST, FASTEST)
# The rule name a decision carries when no rule matched and the default carrier applies;
# reserved so a recorded `routing_rule` is never ambiguous.
DEFAULT_RULE = "default"
# Rates are quoted in CNY (the cost table of a Chinese merchant); costs come out in fen.
RATE_CURRENCY = "CNY"
MAX_RATES = 200
MAX_PRIORITY = 99
MAX_SLA_HOURS = 24 * 365
MAX_WEIGHT_G = 10_000_000  # ten tonnes: beyond any parcel, short of a typo's overflow

# Names are recorded on shipments: rule names in `routing_rule` (100 characters), wave
# names in `wave` (60).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
_WAVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,59}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_BODY_KEYS = ("description", "params", "rules", "waves", "default_wave")
_RULE_KEYS = ("name", "when", "carrier", "choose", "description")
_WAVE_KEYS = ("name", "when", "priority", "description")
_DEFAULT_WAVE_KEYS = ("name", "priority", "description")
_RATE_KEYS = ("carrier", "regions", "base_fee", "per_kg", "sla_hours", "max_weight_g", "description")
_DEFAULT_WAVE = {"name": "standard", "priority": 5}
# Chinese provinces are written with or without their administrative suffix ("浙江省" and
# "浙江", "新疆维吾尔自治区" and "新疆"): a region entry matches either spelling.
_PROVINCE_SUFFIXES = ("维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "省", "市")
_ADDRESS_FIELDS = ("country", "province", "city", "district", "postcode")


@dataclass(frozen=True, slots=True)
class Region:
    """One ``regions`` entry of a rate: any country (``*``), a country (``CN``), a province
    of a country (``CN-浙江省``), each optionally negated with ``!``."""

    country: str | None  # None: any country
    province: str | None
    negated: bool

    def covers(self, country: str, province: str) -> bool:
        """True when this entry (ignoring its negation) names the destination."""
        if self.country is not None and self.country != country:
            return False
        return self.province is None or _province_key(self.province) == _province_key(province)


@dataclass(frozen=True, slots=True)
class Rate:
    """One row of the cost/SLA table: ``carrier`` delivers to ``regions`` for ``base_fee``
    plus ``per_kg`` for every started kilogram (both in fen), within ``sla_hours``, parcels
    up to ``max_weight_g`` (None: no limit)."""

    carrier: str
    regions: tuple[Region, ...]
    base_fee: int
    per_kg: int
    sla_hours: int
    max_weight_g: int | None

    def serves(self, country: str, province: str, weight_g: int) -> bool:
        """True when the destination is in the rate's regions and the parcel is light enough.

        A destination is in the regions when some positive entry names it (none at all
        means anywhere) and no negated entry does.
        """
        if self.max_weight_g is not None and weight_g > self.max_weight_g:
            return False
        positive = [r for r in self.regions if not r.negated]
        if positive and not any(r.covers(country, province) for r in positive):
            return False
        return not any(r.covers(country, province) for r in self.regions if r.negated)

    def cost(self, weight_g: int) -> int:
        """The price of a parcel of ``weight_g`` grams, in fen: every started kilogram counts."""
        return self.base_fee + self.per_kg * -(-max(weight_g, 0) // 1000)


@dataclass(frozen=True, slots=True)
class RoutingRule:
    """A routing rule: when ``when`` holds, ship with ``carrier`` or with the ``choose``
    (cheapest / fastest) rate that serves the shipment."""

    name: str
    when: str
    carrier: str | None
    choose: str | None


@dataclass(frozen=True, slots=True)
class Wave:
    """A picking wave: shipments it takes go out by ``priority`` (lower first). ``when`` is
    None for the default wave."""

    name: str
    priority: int
    when: str | None = None


@dataclass(frozen=True)
class RoutingDecision:
    """The carrier and wave chosen for one shipment, recorded on it (``routing_rule`` is
    ``rule``); ``cost_minor`` (fen) and ``sla_hours`` come from the rate table when a rate
    for the carrier serves the shipment, else None."""

    carrier: str
    rule: str
    wave: str
    priority: int
    cost_minor: int | None
    sla_hours: int | None
    explanation: str


# --------------------------------------------------------------------------- facts
def order_facts_of(order: Order) -> dict[str, Any]:
    """The ``order`` variable routing and wave rules see, built from the domain Order.

    Money is in integer minor units (``total_amount`` is the same total as decimal text);
    text the order lacks is ``""`` so rules compare without null checks.
    """
    address = order.shipping_address
    return {
        "channel": order.channel,
        "shop": order.shop,
        "external_id": order.external_id,
        "status": order.status.value,
        "payment_status": order.payment_status.value,
        "channel_status": order.channel_status or "",
        "currency": order.currency,
        "total": order.total.amount,
        "total_amount": order.total.to_decimal_string(),
        "shipping_fee": order.shipping_fee.amount,
        "discount": order.discount.amount,
        "tags": list(order.tags),
        **goods_facts(order.lines, address, address_fields=_ADDRESS_FIELDS),
    }


def shipment_facts(*, warehouse: str, country: str, province: str, city: str, weight_g: int, value_minor: int,
                   item_count: int, paid_at: datetime | None, timezone: str) -> dict[str, Any]:
    """The ``shipment`` variable: where the parcel goes, what it weighs and is worth, and
    when the order was paid in the rule set's ``timezone`` (``paid_local_hour`` 0–23 and
    ``paid_weekday`` 1 = Monday … 7, or −1 and 0 when unpaid).

    Raises ValueError for a negative weight, value or count, a naive ``paid_at`` or an
    unknown time zone: those are caller bugs, not rule problems.
    """
    for name, number in (("weight_g", weight_g), ("value_minor", value_minor), ("item_count", item_count)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise ValueError(f"{name} must be a whole number of at least 0, got {number!r}")
    zone = _zone(timezone)
    if zone is None:
        raise ValueError(f"unknown time zone {timezone!r}")
    hour, weekday = -1, 0
    if paid_at is not None:
        if paid_at.tzinfo is None or paid_at.utcoffset() is None:
            raise ValueError("paid_at must be timezone-aware")
        local = paid_at.astimezone(zone)
        hour, weekday = local.hour, local.isoweekday()
    return {
        "warehouse": warehouse,
        "country": country.strip().upper(),
        "province": province.strip(),
        "city": city.strip(),
        "weight_g": weight_g,
        "value": value_minor,
        "item_count": item_count,
        "paid_local_hour": hour,
        "paid_weekday": weekday,
    }


# --------------------------------------------------------------------------- the compiled set
class CarrierRouting:
    """A compiled ``carrier_routing`` rule set (one per tenant and version, reused across
    shipments): every condition is compiled once, when the set is loaded."""

    def __init__(self, *, version: int, timezone: str, default_carrier: str, rates: Sequence[Rate],
                 rules: Sequence[RoutingRule], waves: Sequence[Wave], default_wave: Wave,
                 params: Mapping[str, Any], programs: Mapping[str, cel.Program]) -> None:
        self.version = version
        self.timezone = timezone
        self.default_carrier = default_carrier
        self.rates = tuple(rates)
        self.rules = tuple(rules)
        self.waves = tuple(waves)
        self.default_wave = default_wave
        # A private copy: the caller's body may change after compiling, the decisions must not.
        self._params = copy.deepcopy(dict(params))
        # Keyed "rules[i]" / "waves[i]": rule and wave names may coincide.
        self._programs = dict(programs)

    def decide(self, order_facts: Mapping[str, Any], shipment_facts: Mapping[str, Any]) -> RoutingDecision:
        """Choose the carrier (first matching rule, else the default carrier with rule
        ``default``) and the wave (first matching wave, else the default wave) for one
        shipment. Never raises for a rule that fails: it is skipped and named in the
        explanation."""
        activation = {"order": dict(order_facts), "shipment": dict(shipment_facts), "params": self._params}
        country = str(shipment_facts.get("country", "")).upper()
        province = str(shipment_facts.get("province", ""))
        weight = shipment_facts.get("weight_g", 0)
        weight_g = weight if isinstance(weight, int) and not isinstance(weight, bool) else 0
        notes: list[str] = []
        chosen: tuple[str, str, Rate | None, str] | None = None
        for index, rule in enumerate(self.rules):
            if not self._holds(f"rules[{index}]", f"rule {rule.name}", activation, notes):
                continue
            if rule.carrier is not None:
                rate = self._best(self._serving(country, province, weight_g, rule.carrier), CHEAPEST, weight_g)
                chosen = (rule.carrier, rule.name, rate, f"rule {rule.name}: carrier {rule.carrier}")
                break
            choice = rule.choose or CHEAPEST
            rate = self._best(self._serving(country, province, weight_g), choice, weight_g)
            if rate is None:
                notes.append(f"rule {rule.name} matched but no rate serves {_place(country, province)} "
                             f"at {weight_g} g, so the next rule was tried")
                continue
            chosen = (rate.carrier, rule.name, rate, f"rule {rule.name}: {choice} rate is {rate.carrier}")
            break
        if chosen is None:
            carrier = self.default_carrier
            rate = self._best(self._serving(country, province, weight_g, carrier), CHEAPEST, weight_g)
            chosen = (carrier, DEFAULT_RULE, rate, f"no rule chose a carrier: default carrier {carrier}")
        carrier, rule_name, rate, said = chosen
        if rate is not None:
            said += f" ({_yuan(rate.cost(weight_g))} CNY, {rate.sla_hours} h)"
        wave_notes: list[str] = []
        wave = self._wave(activation, wave_notes)
        wave_said = (f"wave {wave.name} (priority {wave.priority})" if wave.when is not None
                     else f"default wave {wave.name} (priority {wave.priority})")
        return RoutingDecision(carrier=carrier, rule=rule_name, wave=wave.name, priority=wave.priority,
                               cost_minor=rate.cost(weight_g) if rate is not None else None,
                               sla_hours=rate.sla_hours if rate is not None else None,
                               explanation="; ".join([said, *notes, wave_said, *wave_notes]))

    def _holds(self, key: str, label: str, activation: Mapping[str, Any], notes: list[str]) -> bool:
        try:
            return evaluate(self._programs[key], activation, rule=label)
        except RuleEvaluationFailed as exc:
            # Routing must not stop fulfilment: a broken condition counts as not matching,
            # and the explanation says so, so it shows on the shipment.
            notes.append(f"{label} skipped: could not be evaluated: {exc.message}")
            return False

    def _wave(self, activation: Mapping[str, Any], notes: list[str]) -> Wave:
        for index, wave in enumerate(self.waves):
            if self._holds(f"waves[{index}]", f"wave {wave.name}", activation, notes):
                return wave
        return self.default_wave

    def _serving(self, country: str, province: str, weight_g: int, carrier: str | None = None) -> list[Rate]:
        return [rate for rate in self.rates if (carrier is None or rate.carrier == carrier)
                and rate.serves(country, province, weight_g)]

    @staticmethod
    def _best(rates: Sequence[Rate], choice: str, weight_g: int) -> Rate | None:
        """The fastest rate (ties: cheaper, then carrier id) or the cheapest (ties: faster,
        then carrier id), so the same shipment always gets the same carrier."""
        if not rates:
            return None
        if choice == FASTEST:
            return min(rates, key=lambda r: (r.sla_hours, r.cost(weight_g), r.carrier))
        return min(rates, key=lambda r: (r.cost(weight_g), r.sla_hours, r.carrier))


# --------------------------------------------------------------------------- validation
def compile_carrier_routing(body: Mapping[str, Any], *, version: int,
                            known_carriers: Collection[str]) -> CarrierRouting:
    """Validate and compile a ``carrier_routing`` body; used when a rule set is stored (to
    refuse it) and when a worker loads it. Raises :class:`RuleInvalid` with the field path
    of the first problem (``rules[1].when``, ``params.rates[2].per_kg``…)."""
    known = frozenset(known_carriers)
    if not isinstance(body, Mapping):
        raise RuleInvalid("a carrier_routing rule set must be an object with params, rules and waves", field="body")
    only_keys(body, _BODY_KEYS, "", "a carrier_routing rule set")
    if body.get("description") is not None:
        _text(body["description"], "description", limit=500)
    params = body.get("params")
    if not isinstance(params, Mapping):
        raise RuleInvalid("params is required: an object with timezone, default_carrier and rates (and any values "
                          "the conditions read as params.<name>)", field="params")
    _json_value(params, "params", depth=0)
    timezone = params.get("timezone")
    if _zone(timezone) is None:
        raise RuleInvalid(f"params.timezone must be an IANA time zone such as Asia/Shanghai, got {timezone!r}",
                          field="params.timezone")
    default_carrier = _carrier(params.get("default_carrier"), "params.default_carrier", known)
    rates = _rates(params.get("rates", []), known)
    rules = _rules(body.get("rules"), known)
    waves = _waves(body.get("waves", []))
    default_wave = _default_wave(body.get("default_wave", _DEFAULT_WAVE))
    sample = {"order": _SAMPLE_ORDER, "shipment": _SAMPLE_SHIPMENT, "params": dict(params)}
    programs: dict[str, cel.Program] = {}
    conditions = [(f"rules[{i}]", f"rule {r.name}", r.name, r.when) for i, r in enumerate(rules)]
    conditions += [(f"waves[{i}]", f"wave {w.name}", w.name, w.when or "") for i, w in enumerate(waves)]
    for key, label, name, when in conditions:
        program = compile_condition(when, rule=name, field=f"{key}.when")
        _try_on_sample(program, sample, label=label, field=f"{key}.when")
        programs[key] = program
    return CarrierRouting(version=version, timezone=str(timezone), default_carrier=default_carrier, rates=rates,
                          rules=rules, waves=waves, default_wave=default_wave, params=params, programs=programs)


def validate_carrier_routing(body: Mapping[str, Any], *, known_carriers: Collection[str]) -> None:
    """Raise :class:`RuleInvalid` when ``body`` is not a valid ``carrier_routing`` rule set;
    the validator registered for the kind (bind ``known_carriers`` with functools.partial)."""
    compile_carrier_routing(body, version=0, known_carriers=known_carriers)


def _carrier(value: object, path: str, known: frozenset[str]) -> str:
    if not isinstance(value, str) or value not in known:
        raise RuleInvalid(f"unknown carrier {value!r}; known carriers: {', '.join(sorted(known))}", field=path)
    return value


def _whole(value: object, path: str, *, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RuleInvalid(f"{what} must be a whole number from {low} to {high}, got {value!r}", field=path)
    return value


def _fen(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RuleInvalid(f"must be a decimal amount in {RATE_CURRENCY} written as text, e.g. \"12.00\" (quote it "
                          f"in YAML), got {value!r}", field=path)
    try:
        money = Money.parse(value, RATE_CURRENCY, field=path)
    except InvalidMoney as exc:
        raise RuleInvalid(f"not a decimal amount in {RATE_CURRENCY}: {exc.message}", field=path) from exc
    if money.is_negative:
        raise RuleInvalid("must not be negative", field=path)
    return money.amount


def _region(value: object, path: str) -> Region:
    if not isinstance(value, str) or not value.strip():
        raise RuleInvalid("a region is \"*\", a country code (\"CN\"), a country and province (\"CN-浙江省\"), "
                          "or one of those after \"!\" (any but)", field=path)
    text = value.strip()
    negated = text.startswith("!")
    text = text.removeprefix("!").strip()
    if text == "*":
        if negated:
            raise RuleInvalid("\"!*\" excludes everywhere; leave the rate out instead", field=path)
        return Region(country=None, province=None, negated=False)
    country, dash, province = text.partition("-")
    if not _COUNTRY.fullmatch(country):
        raise RuleInvalid(f"{value!r} does not start with an upper-case ISO 3166 country code such as CN or US",
                          field=path)
    if dash and not province.strip():
        raise RuleInvalid(f"{value!r} names no province after the '-'", field=path)
    return Region(country=country, province=province.strip() or None, negated=negated)


def _rates(raw: object, known: frozenset[str]) -> tuple[Rate, ...]:
    if not isinstance(raw, list):
        raise RuleInvalid("params.rates must be a list of carrier rates (it may be empty)", field="params.rates")
    if len(raw) > MAX_RATES:
        raise RuleInvalid(f"at most {MAX_RATES} rates, got {len(raw)}", field="params.rates")
    rates: list[Rate] = []
    for index, item in enumerate(raw):
        path = f"params.rates[{index}]"
        if not isinstance(item, Mapping):
            raise RuleInvalid("a rate must be an object with carrier, regions, base_fee, per_kg and sla_hours",
                              field=path)
        only_keys(item, _RATE_KEYS, path, "a rate")
        for required in ("carrier", "regions", "base_fee", "per_kg", "sla_hours"):
            if item.get(required) is None:
                raise RuleInvalid(f"{required} is required", field=f"{path}.{required}")
        regions = item["regions"]
        if not isinstance(regions, list) or not regions:
            raise RuleInvalid("regions must be a non-empty list such as [\"*\"], [\"CN\"] or [\"!CN\"]",
                              field=f"{path}.regions")
        max_weight = item.get("max_weight_g")
        rates.append(Rate(
            carrier=_carrier(item["carrier"], f"{path}.carrier", known),
            regions=tuple(_region(entry, f"{path}.regions[{i}]") for i, entry in enumerate(regions)),
            base_fee=_fen(item["base_fee"], f"{path}.base_fee"),
            per_kg=_fen(item["per_kg"], f"{path}.per_kg"),
            sla_hours=_whole(item["sla_hours"], f"{path}.sla_hours", low=1, high=MAX_SLA_HOURS, what="sla_hours"),
            max_weight_g=None if max_weight is None else _whole(
                max_weight, f"{path}.max_weight_g", low=1, high=MAX_WEIGHT_G, what="max_weight_g"),
        ))
    return tuple(rates)


def _named(raw: Mapping[str, Any], path: str, seen: set[str], *, what: str) -> str:
    name = raw.get("name")
    pattern, limit = (_WAVE_NAME, 60) if what == "wave" else (_NAME, 100)
    if not isinstance(name, str) or not pattern.fullmatch(name):
        raise RuleInvalid(f"name must be 1–{limit} letters, digits, '_', '.', ':' or '-' (starting with a letter or "
                          "digit)", field=f"{path}.name")
    if name in seen:
        raise RuleInvalid(f"duplicate {what} name {name!r}; names must be unique (they are recorded on shipments)",
                          field=f"{path}.name")
    seen.add(name)
    return name


def _listed(raw: object, path: str) -> list[Any]:
    if not isinstance(raw, list):
        raise RuleInvalid(f"{path} must be a list (it may be empty)", field=path)
    if len(raw) > MAX_RULES:
        raise RuleInvalid(f"at most {MAX_RULES} entries, got {len(raw)}", field=path)
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise RuleInvalid("each entry must be an object with name and when", field=f"{path}[{index}]")
    return raw


def _rules(raw: object, known: frozenset[str]) -> tuple[RoutingRule, ...]:
    rules: list[RoutingRule] = []
    seen = {DEFAULT_RULE}  # reserved: the rule name of a decision no rule made
    for index, item in enumerate(_listed(raw, "rules")):
        path = f"rules[{index}]"
        only_keys(item, _RULE_KEYS, path, "a rule")
        if item.get("name") == DEFAULT_RULE:
            raise RuleInvalid(f"{DEFAULT_RULE!r} is reserved for decisions no rule made; pick another name",
                              field=f"{path}.name")
        name = _named(item, path, seen, what="rule")
        if item.get("when") is None:
            raise RuleInvalid("when is required", field=f"{path}.when")
        when = _text(item["when"], f"{path}.when", limit=MAX_WHEN_LENGTH)
        carrier, choose = item.get("carrier"), item.get("choose")
        if carrier is not None and choose is not None:
            raise RuleInvalid("a rule has either carrier or choose, not both", field=path)
        if carrier is None and choose is None:
            raise RuleInvalid(f"a rule needs carrier (a carrier id) or choose ({' or '.join(CHOICES)})", field=path)
        if carrier is not None:
            carrier = _carrier(carrier, f"{path}.carrier", known)
        elif choose not in CHOICES:
            raise RuleInvalid(f"choose must be one of {', '.join(CHOICES)}, got {choose!r}", field=f"{path}.choose")
        if item.get("description") is not None:
            _text(item["description"], f"{path}.description", limit=500)
        rules.append(RoutingRule(name=name, when=when, carrier=carrier, choose=choose))
    return tuple(rules)


def _waves(raw: object) -> tuple[Wave, ...]:
    waves: list[Wave] = []
    seen: set[str] = set()
    for index, item in enumerate(_listed(raw, "waves")):
        path = f"waves[{index}]"
        only_keys(item, _WAVE_KEYS, path, "a wave")
        name = _named(item, path, seen, what="wave")
        if item.get("when") is None:
            raise RuleInvalid("when is required", field=f"{path}.when")
        when = _text(item["when"], f"{path}.when", limit=MAX_WHEN_LENGTH)
        priority = _whole(item.get("priority"), f"{path}.priority", low=0, high=MAX_PRIORITY, what="priority")
        if item.get("description") is not None:
            _text(item["description"], f"{path}.description", limit=500)
        waves.append(Wave(name=name, priority=priority, when=when))
    return tuple(waves)


def _default_wave(raw: object) -> Wave:
    if not isinstance(raw, Mapping):
        raise RuleInvalid("default_wave must be an object with name and priority", field="default_wave")
    only_keys(raw, _DEFAULT_WAVE_KEYS, "default_wave", "the default wave")
    name = _named(raw, "default_wave", set(), what="wave")
    priority = _whole(raw.get("priority"), "default_wave.priority", low=0, high=MAX_PRIORITY, what="priority")
    return Wave(name=name, priority=priority)


# A blank order and shipment with every field present: what a condition is tried on
# before it is stored, so a misspelt field is refused then rather than skipped forever.
_SAMPLE_ORDER: dict[str, Any] = {
    "channel": "", "shop": "", "external_id": "", "status": "paid", "payment_status": "paid", "channel_status": "",
    "currency": "CNY", "total": 0, "total_amount": "0.00", "shipping_fee": 0, "discount": 0, "tags": [],
    "address": dict.fromkeys(_ADDRESS_FIELDS, ""),
    "lines": [{"sku": "", "title": "", "quantity": 1, "unit_price": 0}],
    "line_count": 1, "item_count": 1,
}
_SAMPLE_SHIPMENT: dict[str, Any] = {
    "warehouse": "", "country": "CN", "province": "", "city": "", "weight_g": 0, "value": 0, "item_count": 1,
    "paid_local_hour": -1, "paid_weekday": 0,
}


def _try_on_sample(program: cel.Program, sample: Mapping[str, Any], *, label: str, field: str) -> None:
    """Refuse conditions that would be skipped on every shipment (see :func:`try_on_sample`);
    a province missing from a params table is left to run time."""
    try_on_sample(program, sample, label=label, field=field,
                  missing=f"the facts don't have (order fields: {', '.join(sorted(_SAMPLE_ORDER))}; shipment fields: "
                          f"{', '.join(sorted(_SAMPLE_SHIPMENT))}; params: the rule set's params)",
                  variables="`order`, `shipment` and `params`", from_data=computed_key)


def _place(country: str, province: str) -> str:
    return f"{country or '?'}-{province}" if province else (country or "an unknown country")


def _yuan(fen: int) -> str:
    return Money(fen, RATE_CURRENCY).to_decimal_string()


def _province_key(name: str) -> str:
    key = name.strip().casefold()
    for suffix in _PROVINCE_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)]
    return key


def _zone(name: object) -> zoneinfo.ZoneInfo | None:
    if not isinstance(name, str) or not name.strip():
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # ValueError: a path-like key ("../x")
        return None

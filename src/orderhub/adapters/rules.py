"""CEL rules (DESIGN.md §4): compile rule sets once, evaluate them per order.

Conditions are CEL (Common Expression Language) compiled with the ``cel`` library. A rule
set is compiled when it is stored (so a broken rule is refused with the field at fault)
and again when a worker loads it; evaluation then costs microseconds per rule.

Every rule sees two variables: ``order`` (built by :func:`order_facts`) and ``params``
(the rule set's ``params`` map). The rule-set format is described in ``docs/rules.md``.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any

import cel
import yaml

from orderhub.domain.channels.model import MappedOrder
from orderhub.domain.errors import DomainError
from orderhub.domain.fulfillment.policy import FulfillmentPolicy
from orderhub.domain.inventory.allocation import AllocationWeights
from orderhub.domain.inventory.feed import ChannelFeedPolicy
from orderhub.domain.inventory.policy import InventoryPolicy
from orderhub.domain.money import Money
from orderhub.domain.rules import RuleEvaluationFailed, RuleInvalid
from orderhub.domain.rules.filters import FilterDecision, FilterRule, FilterRuleSet, decide, parse_filter_rule_set

__all__ = [
    "RULE_KINDS",
    "OrderFilters",
    "RuleEvaluationFailed",
    "RuleInvalid",
    "compile_order_filters",
    "default_rule_set",
    "order_facts",
    "rule_kinds",
    "validate_rule_set",
]

ORDER_FILTERS = "order_filters"

# "<input>:LINE:COLUMN: message" is how the CEL parser reports a syntax error.
_POSITION = re.compile(r"<input>:(?P<line>\d+):(?P<column>\d+):\s*(?P<message>[^\n]*)")
_UNDEFINED = "Undefined variable or function"

_ADDRESS_FIELDS = ("country", "province", "city", "district", "detail", "postcode")


def compile_condition(source: str, *, rule: str, field: str) -> cel.Program:
    """Compile one CEL condition, or raise :class:`RuleInvalid` naming the rule, the field
    and the line/column of the syntax error."""
    try:
        return cel.compile(source)
    except ValueError as exc:
        text = str(exc)
        found = _POSITION.search(text)
        if found is None:
            detail = text.splitlines()[0] if text else type(exc).__name__
            raise RuleInvalid(f"rule {rule}: `when` is not valid CEL: {detail}", field=field) from exc
        raise RuleInvalid(f"rule {rule}: `when` is not valid CEL at line {found['line']}, column "
                          f"{found['column']}: {found['message']}", field=field) from exc


def evaluate(program: cel.Program, activation: Mapping[str, Any], *, rule: str) -> bool:
    """Run ``program`` on ``activation`` and insist on a boolean; any failure becomes
    :class:`RuleEvaluationFailed` with a message fit for a hold reason."""
    try:
        result = program.execute(dict(activation))
    except KeyError as exc:
        # The library reports a missing map key as a bare KeyError('name').
        raise RuleEvaluationFailed(f"no such key {exc.args[0]!r} (guard optional keys with has())") from exc
    except Exception as exc:  # the CEL runtime raises RuntimeError, TypeError, ValueError, ZeroDivisionError…
        raise RuleEvaluationFailed(f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(result, bool):
        raise RuleEvaluationFailed(f"the condition gave {type(result).__name__} {result!r}, not true or false")
    return result


class OrderFilters:
    """A compiled ``order_filters`` rule set (one per tenant and version, reused across orders)."""

    def __init__(self, rule_set: FilterRuleSet, programs: Mapping[str, cel.Program], *, version: int,
                 broken: str | None = None) -> None:
        self.version = version
        self.rule_set = rule_set
        self._programs = dict(programs)
        self._params = copy.deepcopy(dict(rule_set.params))
        self._broken = broken
        self._together = _compile_together(rule_set.rules)

    @classmethod
    def holding_all(cls, *, version: int, problem: str) -> OrderFilters:
        """Filters that hold every order with ``problem`` as the reason: what a worker uses
        when a stored rule set no longer compiles (fail closed, never pass unchecked)."""
        return cls(FilterRuleSet(rules=()), {}, version=version, broken=problem)

    @property
    def rules(self) -> tuple[FilterRule, ...]:
        """The rules, in the order they are applied."""
        return self.rule_set.rules

    def decide(self, facts: dict[str, Any]) -> FilterDecision:
        """Decide whether the order described by ``facts`` (see :func:`order_facts`) is held
        and which tags it gets. Never raises for a rule that fails: that rule holds the order."""
        if self._broken is not None:
            return FilterDecision(held=True, rule=None,
                                  reason=f"order_filters v{self.version} can't be used: {self._broken}")
        activation = {"order": facts, "params": self._params}
        together = self._run_together(activation)
        if together is not None:
            return decide(self.rule_set.rules, facts, lambda rule, _facts: together[rule.name])

        def run(rule: FilterRule, _facts: Mapping[str, Any]) -> bool:
            return evaluate(self._programs[rule.name], activation, rule=rule.name)

        return decide(self.rule_set.rules, facts, run)


    def _run_together(self, activation: dict[str, Any]) -> dict[str, bool] | None:
        """Every rule's result from one CEL evaluation, or None when any rule fails or isn't
        boolean (then each rule is evaluated on its own, so the failing one is named)."""
        if self._together is None:
            return None
        try:
            results = self._together.execute(activation)
        except Exception:  # any failure: the per-rule path reports it precisely
            return None
        if not isinstance(results, list) or len(results) != len(self.rule_set.rules):
            return None
        if not all(isinstance(r, bool) for r in results):
            return None
        return {rule.name: bool(r) for rule, r in zip(self.rule_set.rules, results, strict=True)}


def _compile_together(rules: tuple[FilterRule, ...]) -> cel.Program | None:
    """One CEL program listing every rule's condition: handing the order to CEL once per
    order instead of once per rule is what makes filtering cheap (the activation's
    conversion dominates the cost of small conditions)."""
    if not rules:
        return None
    try:
        return cel.compile("[" + ", ".join(f"({rule.when})" for rule in rules) + "]")
    except ValueError:
        return None


def compile_order_filters(body: Mapping[str, Any], *, version: int) -> OrderFilters:
    """Validate and compile an ``order_filters`` body; raise :class:`RuleInvalid` with the
    field path (``rules[2].when``) for the first problem found."""
    rule_set = parse_filter_rule_set(body)
    programs: dict[str, cel.Program] = {}
    sample = {"order": _SAMPLE_ORDER, "params": dict(rule_set.params)}
    for index, rule in enumerate(rule_set.rules):
        path = f"rules[{index}].when"
        program = compile_condition(rule.when, rule=rule.name, field=path)
        _try_on_sample(program, sample, rule=rule.name, field=path)
        programs[rule.name] = program
    return OrderFilters(rule_set, programs, version=version)


def _try_on_sample(program: cel.Program, sample: Mapping[str, Any], *, rule: str, field: str) -> None:
    """Catch mistakes that would hold every order: misspelt variables, functions or order
    fields, and conditions that aren't boolean. Data-dependent failures (a channel
    attribute this sample lacks) are left to run time, where they fail closed."""
    try_on_sample(program, sample, label=f"rule {rule}", field=field,
                  missing=f"neither `order` nor `params` has (order fields: {', '.join(sorted(_SAMPLE_ORDER))}; "
                          "guard channel attributes with has(order.attributes.<name>))",
                  variables="`order` and `params`", from_data=_names_attribute)


def try_on_sample(program: cel.Program, sample: Mapping[str, Any], *, label: str, field: str, missing: str,
                  variables: str, from_data: Callable[[str, str], bool]) -> None:
    """Run a condition on a sample of every fact a rule set's conditions may read, when the
    set is stored: refuse (RuleInvalid naming ``field``) a misspelt variable, function or
    field, and a result that isn't boolean. ``from_data(source, key)`` says a missing key
    depends on the data (a params table, free-form attributes) and is left to run time;
    ``missing`` completes "`when` reads KEY, which …", ``variables`` names what may be used."""
    try:
        result = program.execute(dict(sample))
    except KeyError as exc:
        key = str(exc.args[0]) if exc.args else ""
        if from_data(program.source, key):
            return
        raise RuleInvalid(f"{label}: `when` reads {key!r}, which {missing}", field=field) from exc
    except RuntimeError as exc:
        if _UNDEFINED in str(exc):
            raise RuleInvalid(f"{label}: {str(exc).split('.')[0]}; conditions can use {variables}",
                              field=field) from exc
        return
    except Exception:  # other failures depend on the data; decided (and explained) at run time
        return
    if not isinstance(result, bool):
        raise RuleInvalid(f"{label}: `when` must be true or false, but gives {type(result).__name__}", field=field)


def computed_key(source: str, key: str) -> bool:
    """True when a condition doesn't name ``key`` as a field (``.key`` or ``["key"]``): the
    key was computed from the data, e.g. ``params.zones[shipment.province]``."""
    quoted = re.escape(key)
    return not key or re.search(rf"(\.\s*{quoted}\b|\[\s*['\"]{quoted}['\"]\s*\])", source) is None


def only_keys(raw: Mapping[str, Any], allowed: Sequence[str], path: str, what: str) -> None:
    """Refuse (RuleInvalid naming the field) a key of ``raw`` not in ``allowed``."""
    for key in raw:
        if key not in allowed:
            raise RuleInvalid(f"unknown field {key!r}; {what} has {', '.join(allowed)}",
                              field=f"{path}.{key}" if path else str(key))


def _names_attribute(source: str, key: str) -> bool:
    """True when ``key`` is read from ``order.attributes`` (free-form channel facts)."""
    quoted = re.escape(key)
    return re.search(rf"attributes\s*(\.\s*{quoted}\b|\[\s*['\"]{quoted}['\"]\s*\])", source) is not None


# --------------------------------------------------------------------------- facts
def order_facts(order: MappedOrder, *, channel: str, shop: str) -> dict[str, Any]:
    """The ``order`` variable the filter rules see, built from a mapped channel order.

    Money is in integer minor units (``total_amount`` is the same total as a decimal
    string); text that the channel left out is ``""`` so rules compare without null checks.
    """
    currency = order.currency
    subtotal = sum(line.unit_price.amount * line.quantity - line.discount.amount + line.tax.amount
                   for line in order.lines)
    total = subtotal + order.shipping_fee.amount - order.discount.amount
    address = order.shipping_address
    return {
        "channel": channel,
        "shop": shop,
        "external_id": order.external_id,
        "status": order.status.value,
        "channel_status": order.channel_status,
        "currency": currency,
        "total": total,
        "total_amount": Money(total, currency).to_decimal_string(),
        "shipping_fee": order.shipping_fee.amount,
        "discount": order.discount.amount,
        "payment_method": order.payment_method or "",
        "tags": list(order.tags),
        "buyer": {"name": order.buyer.name or "", "phone": order.buyer.phone or "",
                  "email": order.buyer.email or ""},
        **goods_facts(order.lines, address),
        "attributes": copy.deepcopy(dict(order.attributes)),
    }


def goods_facts(lines: Sequence[Any], address: Any | None, *,
                address_fields: Sequence[str] = _ADDRESS_FIELDS) -> dict[str, Any]:
    """What every order-shaped fact set says about the goods and where they go: ``address``
    (missing parts as ``""``), ``lines`` (sku, title, quantity, unit price in minor units),
    ``line_count`` and ``item_count``. Lines and address may be a channel's mapped ones or
    a stored order's: both carry the same fields."""
    return {
        "address": {name: (getattr(address, name) or "") if address is not None else "" for name in address_fields},
        "lines": [{"sku": line.sku, "title": line.title or "", "quantity": line.quantity,
                   "unit_price": line.unit_price.amount} for line in lines],
        "line_count": len(lines),
        "item_count": sum(line.quantity for line in lines),
    }


# A blank order with every field present: what a rule is tried on before it is stored.
_SAMPLE_ORDER: dict[str, Any] = {
    "channel": "", "shop": "", "external_id": "", "status": "paid", "channel_status": "", "currency": "CNY",
    "total": 0, "total_amount": "0.00", "shipping_fee": 0, "discount": 0, "payment_method": "", "tags": [],
    "buyer": {"name": "", "phone": "", "email": ""},
    "address": dict.fromkeys(_ADDRESS_FIELDS, ""),
    "lines": [{"sku": "", "title": "", "quantity": 1, "unit_price": 0}],
    "line_count": 1, "item_count": 1, "attributes": {},
}


# --------------------------------------------------------------------------- kinds
def _validate_order_filters(body: Mapping[str, Any]) -> None:
    compile_order_filters(body, version=0)


# Later issues add their kinds (risk, routing, refund policy…) here: kind -> validator that
# raises RuleInvalid for a body it refuses.
def _validate_inventory_policy(body: Mapping[str, Any]) -> None:
    policy = InventoryPolicy.from_mapping(body)
    for name, check in (("allocation_weights", AllocationWeights.from_mapping),
                        ("channel_feed", ChannelFeedPolicy.from_mapping)):
        try:
            check(getattr(policy, name))
        except DomainError as exc:
            where = exc.field if exc.field and exc.field.startswith(name) else f"{name}.{exc.field or ''}".rstrip(".")
            message = exc.message if exc.message.startswith(name) else f"{name}: {exc.message}"
            raise RuleInvalid(message, field=where) from exc


def _validate_carrier_routing(body: Mapping[str, Any]) -> None:
    # Imported here: the routing rules are built on this module's CEL helpers.
    from orderhub.adapters.carriers.code_tables import CARRIER_IDS  # noqa: PLC0415
    from orderhub.adapters.routing import validate_carrier_routing  # noqa: PLC0415

    validate_carrier_routing(body, known_carriers=CARRIER_IDS)


def _validate_carrier_codes(body: Mapping[str, Any]) -> None:
    from orderhub.adapters.carriers.code_tables import validate_carrier_codes  # noqa: PLC0415 - loads YAML tables

    validate_carrier_codes(body)


def _validate_fulfillment_policy(body: Mapping[str, Any]) -> None:
    FulfillmentPolicy.from_mapping(body)


def _validate_refund_policy(body: Mapping[str, Any]) -> None:
    # Imported here: the refund policy is built on this module's CEL helpers.
    from orderhub.adapters.refund_policy import validate_refund_policy  # noqa: PLC0415

    validate_refund_policy(body)


RULE_KINDS: Mapping[str, Callable[[Mapping[str, Any]], None]] = {
    ORDER_FILTERS: _validate_order_filters,
    "inventory_policy": _validate_inventory_policy,
    "carrier_routing": _validate_carrier_routing,
    "carrier_codes": _validate_carrier_codes,
    "fulfillment_policy": _validate_fulfillment_policy,
    "refund_policy": _validate_refund_policy,
}


def rule_kinds() -> tuple[str, ...]:
    """The rule-set kinds OrderHub knows, sorted."""
    return tuple(sorted(RULE_KINDS))


def validate_rule_set(kind: str, body: Mapping[str, Any]) -> None:
    """Raise :class:`RuleInvalid` when ``body`` is not a valid rule set of ``kind``;
    :class:`LookupError` when ``kind`` is unknown."""
    try:
        validator = RULE_KINDS[kind]
    except KeyError as exc:
        raise LookupError(f"unknown rule kind {kind!r}; known kinds: {', '.join(rule_kinds())}") from exc
    validator(body)


def default_rule_set(kind: str) -> dict[str, Any]:
    """The seeded rule set of ``kind`` (``rules_defaults/<kind>.yaml``), as a fresh copy;
    :class:`LookupError` when ``kind`` is unknown."""
    if kind not in RULE_KINDS:
        raise LookupError(f"unknown rule kind {kind!r}; known kinds: {', '.join(rule_kinds())}")
    return copy.deepcopy(_load_default(kind))


@functools.cache
def _load_default(kind: str) -> dict[str, Any]:
    text = resources.files("orderhub.adapters").joinpath("rules_defaults", f"{kind}.yaml").read_text("utf-8")
    body = yaml.safe_load(text)
    if not isinstance(body, dict):
        raise RuleInvalid(f"rules_defaults/{kind}.yaml must hold a rule-set object", field="body")
    return body

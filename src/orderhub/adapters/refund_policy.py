"""The refund policy (``refund_policy`` rule sets): what happens to a new after-sale case.

A rule set (format in ``docs/rules.md``) carries CEL rules tried in order; the first whose
condition is true decides the case: ``auto_approve``, ``negotiate`` (offer the buyer
choices), ``manual_review`` (put it in a review queue) or ``reject``. When none matches,
the set's ``default`` decides. It also carries the SLA hours of open cases and the options
a ``negotiate`` rule offers by default. Conditions see ``case``, ``order`` and ``customer``
(:func:`refund_facts`) and ``params``.

Deciding must never stop a case from being handled: a condition that fails at run time is
skipped and named in the decision's explanation. Broken rule sets are refused when stored
(:func:`compile_refund_policy`), with the field at fault.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cel

from orderhub.adapters.rules import (
    compile_condition,
    computed_key,
    default_rule_set,
    evaluate,
    only_keys,
    try_on_sample,
)
from orderhub.domain.aftersale.case import Decision, Option, SlaPolicy
from orderhub.domain.aftersale.states import AfterSaleType, PolicyAction
from orderhub.domain.errors import InvalidAfterSale
from orderhub.domain.orders.model import Order
from orderhub.domain.orders.states import OrderStatus
from orderhub.domain.rules import RuleEvaluationFailed, RuleInvalid
from orderhub.domain.rules.filters import MAX_REASON_LENGTH, MAX_RULES, MAX_WHEN_LENGTH, _json_value, _text

__all__ = [
    "DEFAULT_QUEUE",
    "DEFAULT_RULE",
    "REFUND_POLICY",
    "CustomerHistory",
    "RefundPolicy",
    "RefundRule",
    "compile_refund_policy",
    "default_refund_policy",
    "refund_facts",
    "validate_refund_policy",
]

REFUND_POLICY = "refund_policy"

# The rule name a decision carries when no rule matched and `default` applies; reserved so
# the rule recorded on a case is never ambiguous.
DEFAULT_RULE = "default"
# The review queue of a manual_review that names none (AfterSaleCase.decide uses the same).
DEFAULT_QUEUE = "after_sale"
ACTIONS = tuple(action.value for action in PolicyAction)
MAX_OPTIONS = 10
MAX_SLA_HOURS = 24 * 365
STAGES = ("unshipped", "shipped", "delivered")

# Rule names are recorded on cases (Decision.rule); queue names on cases and in the queue
# list of the dashboard.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
_QUEUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,59}")
_CATEGORY = re.compile(r"[a-z0-9][a-z0-9_]{0,59}")
_BODY_KEYS = ("description", "params", "sla_hours", "negotiation_options", "rules", "default")
_RULE_KEYS = ("name", "when", "action", "queue", "reason", "options", "description")
_DEFAULT_KEYS = ("action", "queue", "reason", "options", "description")
_OPTION_KEYS = ("id", "kind", "percent", "points", "label")
_SLA_KEYS = ("yellow", "orange", "red")
_VARIABLES = ("case", "order", "customer")
# A mean Gregorian month: "six months a customer" reads the same whatever the calendar.
_DAYS_PER_MONTH = 365.2425 / 12

# Where an order is in its life, as the policy sees it: before anything left the
# warehouse, on its way, or with the buyer. A cancelled order never shipped.
_STAGE_OF: Mapping[OrderStatus, str] = {
    OrderStatus.PENDING_PAYMENT: "unshipped",
    OrderStatus.PAID: "unshipped",
    OrderStatus.ON_HOLD: "unshipped",
    OrderStatus.READY_TO_SHIP: "unshipped",
    OrderStatus.CANCELLED: "unshipped",
    OrderStatus.PARTIALLY_SHIPPED: "shipped",
    OrderStatus.SHIPPED: "shipped",
    OrderStatus.DELIVERED: "delivered",
    OrderStatus.COMPLETED: "delivered",
}
# Categories an order tag may name even when params.categories lists no SKU pattern for
# them: the seeded rules read these three.
_TAG_CATEGORIES = ("custom_made", "virtual", "perishable")


@dataclass(frozen=True)
class CustomerHistory:
    """What the shop knows about the buyer of a case: ``orders`` placed, ``refunds`` among
    them, ``disputes`` (platform complaints and arbitrations) and the first order's time
    (None when unknown: the customer counts as new). Built by the service layer from the
    order and case history of the buyer's ``key``."""

    key: str
    tier: str = "regular"
    first_order_at: datetime | None = None
    orders: int = 0
    refunds: int = 0
    disputes: int = 0

    def __post_init__(self) -> None:
        for name in ("orders", "refunds", "disputes"):
            _count(getattr(self, name), name)
        if self.first_order_at is not None and self.first_order_at.utcoffset() is None:
            raise ValueError("first_order_at must be timezone-aware")

    @property
    def return_rate(self) -> float:
        """Refunds per order placed (0 when there are no orders)."""
        return self.refunds / self.orders if self.orders else 0.0

    def months_since_first_order(self, now: datetime) -> float:
        """Mean-length months from the first order to ``now`` (0 when unknown or later)."""
        if self.first_order_at is None:
            return 0.0
        return max((now - self.first_order_at).total_seconds() / 86400 / _DAYS_PER_MONTH, 0.0)


@dataclass(frozen=True, slots=True)
class RefundRule:
    """A refund-policy rule: when ``when`` holds, ``action`` decides the case. ``when`` is
    None for the rule set's default. ``queue`` is set for manual_review only, ``options``
    for negotiate only (empty: the rule set's negotiation_options)."""

    name: str
    action: PolicyAction
    when: str | None = None
    queue: str | None = None
    reason: str | None = None
    options: tuple[Option, ...] = ()


# --------------------------------------------------------------------------- facts
def refund_facts(*, order: Order, case_type: AfterSaleType, reason: str, amount: int, line_count: int,
                 item_count: int, source: str, customer: CustomerHistory, now: datetime,
                 params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``case``, ``order`` and ``customer`` variables refund rules see, built when a
    case is opened (``params`` are the policy's, for the SKU categories; :meth:`RefundPolicy.decide`
    adds them as the ``params`` variable).

    Money is in integer minor units; ages are hours (``hours_since_*``, −1.0 when the order
    was never paid, shipped or delivered) and months, as doubles. ``reason`` is trimmed
    and lower-cased, so ``Changed_Mind`` matches ``changed_mind``. ``categories`` are the
    categories whose SKU globs match a line, plus tags naming a category.

    Raises ValueError for a negative amount or count, or a naive ``now``: those are caller
    bugs, not rule problems (and :class:`RuleInvalid` for malformed ``params.categories``,
    which a compiled policy's params never are).
    """
    for name, number in (("amount", amount), ("line_count", line_count), ("item_count", item_count)):
        _count(number, name)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    total = order.total.amount
    skus = list(dict.fromkeys(line.sku for line in order.lines))
    return {
        "case": {
            "type": AfterSaleType(case_type).value,
            "reason": reason.strip().lower(),
            "amount": amount,
            # The share of the order asked back; 0..1 (a case can't exceed what was paid).
            "amount_ratio": min(amount / total, 1.0) if total > 0 else 0.0,
            "line_count": line_count,
            "item_count": item_count,
            "source": source,
            "channel": order.channel,
        },
        "order": {
            "channel": order.channel,
            "shop": order.shop,
            "external_id": order.external_id,
            "status": order.status.value,
            "stage": _STAGE_OF[order.status],
            "hours_since_paid": _hours_since(order.paid_at, now),
            "hours_since_shipped": _hours_since(order.shipped_at, now),
            "hours_since_delivered": _hours_since(order.delivered_at, now),
            "total": total,
            "currency": order.currency,
            "tags": list(order.tags),
            "categories": _categories_of(skus, order.tags, params.get("categories", {})),
            "skus": skus,
        },
        "customer": {
            "key": customer.key,
            "tier": customer.tier,
            "months_since_first_order": customer.months_since_first_order(now),
            "orders": customer.orders,
            "refunds": customer.refunds,
            "return_rate": customer.return_rate,
            "disputes": customer.disputes,
        },
    }


def _count(number: object, name: str) -> None:
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise ValueError(f"{name} must be a whole number of at least 0, got {number!r}")


def _hours_since(at: datetime | None, now: datetime) -> float:
    if at is None:
        return -1.0
    # A stamp slightly ahead of `now` (clock skew) counts as "just now", never as the
    # -1 that means "never happened".
    return max((now - at).total_seconds() / 3600, 0.0)


def _categories_of(skus: Sequence[str], tags: Sequence[str], raw: object) -> list[str]:
    key = _category_key(raw, "params.categories")
    found = {name for name, pattern in _glob_table(key) if any(pattern.fullmatch(sku.upper()) for sku in skus)}
    named = {name for name, _ in key} | set(_TAG_CATEGORIES)
    for tag in tags:
        category = tag.strip().lower().replace("-", "_")
        if category in named:
            found.add(category)
    return sorted(found)


def _category_key(raw: object, path: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """params.categories as a hashable key (category → SKU globs); RuleInvalid names the
    bad entry, so the same check serves storing a rule set and building facts."""
    if not isinstance(raw, Mapping):
        raise RuleInvalid("categories must be an object of category name → list of SKU patterns, e.g. "
                          "{virtual: [\"VIRT-*\"]}", field=path)
    key: list[tuple[str, tuple[str, ...]]] = []
    for name, patterns in raw.items():
        where = f"{path}.{name}"
        if not isinstance(name, str) or not _CATEGORY.fullmatch(name):
            raise RuleInvalid("a category name is 1–60 lower-case letters, digits or '_'", field=where)
        if not isinstance(patterns, list):
            raise RuleInvalid("must be a list of SKU patterns such as \"VIRT-*\" (it may be empty)", field=where)
        for index, pattern in enumerate(patterns):
            if not isinstance(pattern, str) or not pattern.strip():
                raise RuleInvalid("a SKU pattern is a non-empty shell glob such as \"VIRT-*\"",
                                  field=f"{where}[{index}]")
        key.append((name, tuple(pattern.strip() for pattern in patterns)))
    return tuple(key)


@functools.lru_cache(maxsize=64)
def _glob_table(key: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    # One regex per category, compiled once per pattern list: facts are built per case.
    # Upper-cased on both sides: SKUs arrive in whatever case the channel uses.
    return tuple((name, re.compile("|".join(fnmatch.translate(p.upper()) for p in patterns)))
                 for name, patterns in key if patterns)


# --------------------------------------------------------------------------- the compiled set
class RefundPolicy:
    """A compiled ``refund_policy`` rule set (one per tenant and version, reused across
    cases): every condition is compiled once, when the set is loaded."""

    def __init__(self, *, version: int, rules: Sequence[RefundRule], default: RefundRule, sla: SlaPolicy,
                 negotiation_options: Sequence[Option], params: Mapping[str, Any],
                 programs: Sequence[cel.Program]) -> None:
        self.version = version
        self.rules = tuple(rules)
        self.default = default
        self.sla = sla
        self.negotiation_options = tuple(negotiation_options)
        # The caller's copy (for refund_facts) and a private one the conditions read: a
        # caller changing its dict must not change decisions.
        self.params: dict[str, Any] = copy.deepcopy(dict(params))
        self._params = copy.deepcopy(dict(params))
        self._programs = tuple(programs)
        self._together = _compile_together(self.rules)

    def rule_names(self) -> tuple[str, ...]:
        """The rules' names, in the order they are tried (``default`` not included)."""
        return tuple(rule.name for rule in self.rules)

    def decide(self, facts: Mapping[str, Any]) -> Decision:
        """Decide a new case described by ``facts`` (:func:`refund_facts`): the first rule
        whose condition is true, else the default (rule ``default``). Used when a case is
        opened and by the sandbox replay. Never raises for a rule that fails: it is skipped
        and named in the explanation."""
        activation = {name: facts.get(name, {}) for name in _VARIABLES}
        activation["params"] = self._params
        notes: list[str] = []
        chosen = self._first_match(activation, notes)
        rule = chosen or self.default
        said = (f"rule {rule.name}: {rule.action.value}" if chosen is not None
                else f"no rule matched: default {rule.action.value}")
        queue = None
        options: tuple[Option, ...] = ()
        if rule.action is PolicyAction.MANUAL_REVIEW:
            queue = rule.queue or DEFAULT_QUEUE
            said += f" (queue {queue})"
        elif rule.action is PolicyAction.NEGOTIATE:
            options = rule.options or self.negotiation_options
            said += f" (options {', '.join(option.id for option in options)})"
        return Decision(action=rule.action, rule=rule.name, reason=rule.reason, queue=queue, options=options,
                        policy_version=self.version, explanation="; ".join([said, *notes]))

    def _first_match(self, activation: dict[str, Any], notes: list[str]) -> RefundRule | None:
        together = self._run_together(activation)
        if together is not None:
            return next((rule for rule, hit in zip(self.rules, together, strict=True) if hit), None)
        for rule, program in zip(self.rules, self._programs, strict=True):
            try:
                if evaluate(program, activation, rule=rule.name):
                    return rule
            except RuleEvaluationFailed as exc:
                # A broken condition must not leave the case undecided: it counts as not
                # matching, and the explanation recorded on the case says so.
                notes.append(f"rule {rule.name} skipped: could not be evaluated: {exc.message}")
        return None

    def _run_together(self, activation: dict[str, Any]) -> list[bool] | None:
        """Every rule's result from one CEL evaluation, or None when any rule fails or isn't
        boolean (then the rules run one by one, so the failing one is named and rules after
        the first match never matter)."""
        if self._together is None:
            return None
        try:
            results = self._together.execute(activation)
        except Exception:  # any failure: the rule-by-rule path reports it precisely
            return None
        if not isinstance(results, list) or len(results) != len(self.rules):
            return None
        if not all(isinstance(result, bool) for result in results):
            return None
        return results


def _compile_together(rules: Sequence[RefundRule]) -> cel.Program | None:
    """One CEL program listing every rule's condition: handing the facts to CEL once per
    case instead of once per rule is what makes deciding cheap (converting the activation
    costs more than a small condition)."""
    if not rules:
        return None
    try:
        # Newlines, so a condition ending in a // comment can't swallow the bracket.
        return cel.compile("[" + ", ".join(f"(\n{rule.when}\n)" for rule in rules) + "]")
    except ValueError:
        return None


# --------------------------------------------------------------------------- validation
def compile_refund_policy(body: Mapping[str, Any], *, version: int) -> RefundPolicy:
    """Validate and compile a ``refund_policy`` body; used when a rule set is stored (to
    refuse it) and when a worker loads it. Raises :class:`RuleInvalid` with the field path
    of the first problem (``rules[2].when``, ``sla_hours.orange``…).

    Top-level ``params`` keys left out take the seeded values, and so do ``sla_hours`` and
    ``negotiation_options``: the facts and the seeded conditions rely on them.
    """
    if not isinstance(body, Mapping):
        raise RuleInvalid("a refund_policy rule set must be an object with params, rules and default", field="body")
    only_keys(body, _BODY_KEYS, "", "a refund_policy rule set")
    seeded = _seeded()
    if body.get("description") is not None:
        _text(body["description"], "description", limit=MAX_REASON_LENGTH)
    raw_params = body.get("params") or {}  # `params:` left blank in YAML is null
    if not isinstance(raw_params, Mapping):
        raise RuleInvalid("params must be an object of named values the conditions read as params.<name>",
                          field="params")
    _json_value(raw_params, "params", depth=0)
    params = {**seeded["params"], **raw_params}
    _category_key(params.get("categories"), "params.categories")
    sla = _sla(body.get("sla_hours", seeded["sla_hours"]))
    negotiation_options = _options(body.get("negotiation_options", seeded["negotiation_options"]),
                                   "negotiation_options", allow_empty=True)
    rules = _rules(body.get("rules"), negotiation_options)
    default = _rule_body(body.get("default", seeded["default"]), "default", DEFAULT_RULE, negotiation_options)
    sample = {"case": _SAMPLE_CASE, "order": _SAMPLE_ORDER, "customer": _SAMPLE_CUSTOMER, "params": params}
    programs: list[cel.Program] = []
    for index, rule in enumerate(rules):
        field = f"rules[{index}].when"
        program = compile_condition(rule.when or "", rule=rule.name, field=field)
        _try_on_sample(program, sample, rule=rule.name, field=field)
        programs.append(program)
    return RefundPolicy(version=version, rules=rules, default=default, sla=sla,
                        negotiation_options=negotiation_options, params=params, programs=programs)


def validate_refund_policy(body: Mapping[str, Any]) -> None:
    """Raise :class:`RuleInvalid` when ``body`` is not a valid ``refund_policy`` rule set;
    the validator registered for the kind."""
    compile_refund_policy(body, version=0)


def default_refund_policy() -> RefundPolicy:
    """The seeded policy (``rules_defaults/refund_policy.yaml``) as version 0: what decides a
    tenant's cases until it stores its own."""
    return compile_refund_policy(default_rule_set(REFUND_POLICY), version=0)


def _seeded() -> dict[str, Any]:
    # The YAML is the one place the defaults are written down; loaded once (cached).
    return default_rule_set(REFUND_POLICY)


def _sla(raw: object) -> SlaPolicy:
    if not isinstance(raw, Mapping):
        raise RuleInvalid("sla_hours must be an object with yellow, orange and red hours", field="sla_hours")
    only_keys(raw, _SLA_KEYS, "sla_hours", "sla_hours")
    hours: dict[str, float] = {}
    for name in _SLA_KEYS:
        value = raw.get(name)
        if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
                or not 0 < value <= MAX_SLA_HOURS):
            raise RuleInvalid(f"{name} must be a number of hours above 0 and at most {MAX_SLA_HOURS}, got {value!r}",
                              field=f"sla_hours.{name}")
        hours[name] = value
    for earlier, later in itertools.pairwise(_SLA_KEYS):
        if hours[later] <= hours[earlier]:
            raise RuleInvalid(f"{later} ({hours[later]} h) must come after {earlier} ({hours[earlier]} h): "
                              "yellow < orange < red", field=f"sla_hours.{later}")
    return SlaPolicy(yellow_hours=hours["yellow"], orange_hours=hours["orange"], red_hours=hours["red"])


def _options(raw: object, path: str, *, allow_empty: bool) -> tuple[Option, ...]:
    if not isinstance(raw, list) or (not raw and not allow_empty):
        raise RuleInvalid("options must be a list of choices such as {id: half, kind: partial_refund, "
                          "percent: 50}" + (" (it may be empty)" if allow_empty else ""), field=path)
    if len(raw) > MAX_OPTIONS:
        raise RuleInvalid(f"at most {MAX_OPTIONS} options, got {len(raw)}", field=path)
    options: list[Option] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        if isinstance(item, Mapping):
            only_keys(item, _OPTION_KEYS, where, "an option")
            # Option.from_dict drops these silently; here they'd be a mistake worth naming.
            for key, kind in (("percent", "partial_refund"), ("points", "points")):
                if item.get(key) is not None and item.get("kind") != kind:
                    raise RuleInvalid(f"only {kind} options carry {key}", field=f"{where}.{key}")
            if item.get("label") is not None:
                _text(item["label"], f"{where}.label", limit=200)
        try:
            option = Option.from_dict(dict(item) if isinstance(item, Mapping) else item, where)
        except InvalidAfterSale as exc:
            raise RuleInvalid(exc.message, field=exc.field or where) from exc
        if option.id in seen:
            raise RuleInvalid(f"duplicate option id {option.id!r}; the buyer chooses by id", field=f"{where}.id")
        seen.add(option.id)
        options.append(option)
    return tuple(options)


def _rules(raw: object, negotiation_options: tuple[Option, ...]) -> tuple[RefundRule, ...]:
    if not isinstance(raw, list):
        raise RuleInvalid("rules must be a list of rules (it may be empty)", field="rules")
    if len(raw) > MAX_RULES:
        raise RuleInvalid(f"at most {MAX_RULES} rules, got {len(raw)}", field="rules")
    rules: list[RefundRule] = []
    seen = {DEFAULT_RULE}  # reserved: the rule name of a decision no rule made
    for index, item in enumerate(raw):
        path = f"rules[{index}]"
        if not isinstance(item, Mapping):
            raise RuleInvalid("a rule must be an object with name, when and action", field=path)
        only_keys(item, _RULE_KEYS, path, "a rule")
        name = item.get("name")
        if name == DEFAULT_RULE:
            raise RuleInvalid(f"{DEFAULT_RULE!r} is reserved for decisions no rule made; pick another name",
                              field=f"{path}.name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise RuleInvalid("name must be 1–100 letters, digits, '_', '.', ':' or '-' (starting with a letter or "
                              "digit)", field=f"{path}.name")
        if name in seen:
            raise RuleInvalid(f"duplicate rule name {name!r}; names must be unique (they are recorded on cases)",
                              field=f"{path}.name")
        seen.add(name)
        if item.get("when") is None:
            raise RuleInvalid("when is required", field=f"{path}.when")
        when = _text(item["when"], f"{path}.when", limit=MAX_WHEN_LENGTH)
        rule = _rule_body({k: v for k, v in item.items() if k not in ("name", "when")}, path, name,
                          negotiation_options)
        rules.append(RefundRule(name=name, action=rule.action, when=when, queue=rule.queue, reason=rule.reason,
                                options=rule.options))
    return tuple(rules)


def _rule_body(raw: object, path: str, name: str, negotiation_options: tuple[Option, ...]) -> RefundRule:
    """The decision part shared by rules and the default: action, queue, reason, options."""
    if not isinstance(raw, Mapping):
        raise RuleInvalid(f"{path} must be an object with an action", field=path)
    if path == DEFAULT_RULE:
        only_keys(raw, _DEFAULT_KEYS, path, "the default")
    action = raw.get("action")
    if action not in ACTIONS:
        raise RuleInvalid(f"action must be one of {', '.join(ACTIONS)}, got {action!r}", field=f"{path}.action")
    decided = PolicyAction(action)
    if raw.get("description") is not None:
        _text(raw["description"], f"{path}.description", limit=MAX_REASON_LENGTH)
    reason = raw.get("reason")
    if reason is not None:
        reason = _text(reason, f"{path}.reason", limit=MAX_REASON_LENGTH).strip()
    elif decided is PolicyAction.REJECT:
        raise RuleInvalid("a reject rule needs a reason: the buyer is shown it", field=f"{path}.reason")
    queue = raw.get("queue")
    if queue is not None:
        if decided is not PolicyAction.MANUAL_REVIEW:
            raise RuleInvalid("only manual_review rules carry a queue", field=f"{path}.queue")
        if not isinstance(queue, str) or not _QUEUE.fullmatch(queue):
            raise RuleInvalid("queue must be 1–60 letters, digits, '_', '.', ':' or '-' (starting with a letter "
                              "or digit)", field=f"{path}.queue")
    options: tuple[Option, ...] = ()
    if raw.get("options") is not None:
        if decided is not PolicyAction.NEGOTIATE:
            raise RuleInvalid("only negotiate rules carry options", field=f"{path}.options")
        options = _options(raw["options"], f"{path}.options", allow_empty=False)
    elif decided is PolicyAction.NEGOTIATE and not negotiation_options:
        raise RuleInvalid("a negotiate rule needs options: list them here or in negotiation_options",
                          field=f"{path}.options")
    return RefundRule(name=name, action=decided, queue=queue, reason=reason, options=options)


# Facts with every field present: what a condition is tried on before it is stored, so a
# misspelt field or variable is refused then rather than skipped on every case.
_SAMPLE_CASE: dict[str, Any] = {
    "type": "refund_only", "reason": "", "amount": 0, "amount_ratio": 0.0, "line_count": 1, "item_count": 1,
    "source": "api", "channel": "",
}
_SAMPLE_ORDER: dict[str, Any] = {
    "channel": "", "shop": "", "external_id": "", "status": "delivered", "stage": "delivered",
    "hours_since_paid": 0.0, "hours_since_shipped": 0.0, "hours_since_delivered": 0.0, "total": 0,
    "currency": "CNY", "tags": [], "categories": [], "skus": [""],
}
_SAMPLE_CUSTOMER: dict[str, Any] = {
    "key": "", "tier": "regular", "months_since_first_order": 0.0, "orders": 0, "refunds": 0, "return_rate": 0.0,
    "disputes": 0,
}


def _try_on_sample(program: cel.Program, sample: Mapping[str, Any], *, rule: str, field: str) -> None:
    """Refuse conditions that would be skipped on every case (see :func:`try_on_sample`); a
    reason missing from a params table is left to run time."""
    try_on_sample(program, sample, label=f"rule {rule}", field=field,
                  missing=f"the facts don't have (case fields: {', '.join(sorted(_SAMPLE_CASE))}; order fields: "
                          f"{', '.join(sorted(_SAMPLE_ORDER))}; customer fields: "
                          f"{', '.join(sorted(_SAMPLE_CUSTOMER))}; params: the rule set's params)",
                  variables="`case`, `order`, `customer` and `params`", from_data=computed_key)

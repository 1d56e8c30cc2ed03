"""Order filter rules: which channel orders enter fulfillment (issue 3, scope 5).

A rule set is data (``docs/rules.md``)::

    {"params": {...}, "rules": [{"name", "when", "action": "hold" | "tag", "reason"?, "tag"?}]}

Rules are looked at in order. The first matching ``hold`` rule holds the order, with its
name and reason; every matching ``tag`` rule adds its tag. A rule whose condition can't be
evaluated holds the order too: an order no rule could vouch for must not slip into
fulfillment, and a held order is still stored and visible, so nothing is lost.

The conditions are evaluated by an injected callable, so this module stays free of the
CEL library.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orderhub.domain.rules import RuleInvalid

HOLD = "hold"
TAG = "tag"
ACTIONS = (HOLD, TAG)

MAX_RULES = 200
MAX_WHEN_LENGTH = 4000
MAX_REASON_LENGTH = 500
MAX_NESTING = 20
# Rule names and tags show up in hold reasons, timelines and order lists: keep them plain.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
_TAG = re.compile(r"[^\s\x00-\x1f\x7f]{1,100}")

_BODY_KEYS = ("params", "rules", "description")
_RULE_KEYS = ("name", "when", "action", "reason", "tag", "description")


@dataclass(frozen=True, slots=True)
class FilterRule:
    """One filter rule: when the CEL condition ``when`` is true, ``action`` applies.

    A ``hold`` rule carries the ``reason`` shown on the held order; a ``tag`` rule carries
    the ``tag`` it adds.
    """

    name: str
    when: str
    action: str
    reason: str | None = None
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class FilterRuleSet:
    """A validated ``order_filters`` body: the rules in order and the ``params`` they read."""

    rules: tuple[FilterRule, ...]
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FilterDecision:
    """What the filter rules decided for one order.

    ``held`` orders are stored but kept out of fulfillment; ``rule`` and ``reason`` say
    which rule held it and why. ``tags`` are added to the order either way.
    """

    held: bool
    rule: str | None = None
    reason: str | None = None
    tags: tuple[str, ...] = ()


PASSED = FilterDecision(held=False)

# Returns the condition's value; anything but True or False counts as a failed evaluation.
Evaluate = Callable[[FilterRule, Mapping[str, Any]], object]


def decide(rules: Sequence[FilterRule], facts: Mapping[str, Any], evaluate: Evaluate) -> FilterDecision:
    """Run ``rules`` in order against ``facts`` (the ``order`` variable).

    The first matching ``hold`` rule wins; every matching ``tag`` rule adds its tag (once,
    in rule order). A rule that raises or yields a non-boolean holds the order with the
    reason ``rule <name> could not be evaluated: <error>`` unless an earlier rule already
    held it.
    """
    held_by: str | None = None
    reason: str | None = None
    tags: list[str] = []
    for rule in rules:
        if rule.action == HOLD and held_by is not None:
            continue  # the first hold wins: later hold rules can't change the decision
        try:
            matched = evaluate(rule, facts)
        except Exception as exc:  # fail closed: whatever went wrong, the order is held, never passed
            problem = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            if held_by is None:
                held_by, reason = rule.name, f"rule {rule.name} could not be evaluated: {problem}"
            continue
        if matched is not True and matched is not False:
            if held_by is None:
                held_by = rule.name
                reason = (f"rule {rule.name} could not be evaluated: its condition gave "
                          f"{type(matched).__name__} {matched!r}, not true or false")
            continue
        if not matched:
            continue
        if rule.action == HOLD:
            held_by, reason = rule.name, rule.reason
        elif rule.tag is not None and rule.tag not in tags:
            tags.append(rule.tag)
    return FilterDecision(held=held_by is not None, rule=held_by, reason=reason, tags=tuple(tags))


# --------------------------------------------------------------------------- validation
def parse_filter_rule_set(body: object) -> FilterRuleSet:
    """Check the shape of an ``order_filters`` body and return it as a :class:`FilterRuleSet`.

    Raises :class:`RuleInvalid` naming the first offending field (``rules[2].action``…).
    The CEL conditions themselves are compiled by the adapter, not here.
    """
    if not isinstance(body, Mapping):
        raise RuleInvalid("a rule set must be an object with `rules` (and optional `params`)", field="body")
    for key in body:
        if key not in _BODY_KEYS:
            raise RuleInvalid(f"unknown field {key!r}; a rule set has {', '.join(_BODY_KEYS)}", field=str(key))
    description = body.get("description")
    if description is not None:
        _text(description, "description", limit=MAX_REASON_LENGTH)
    params = body.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise RuleInvalid("params must be an object of named values the rules read as params.<name>",
                          field="params")
    _json_value(params, "params", depth=0)
    raw_rules = body.get("rules")
    if not isinstance(raw_rules, list):
        raise RuleInvalid("rules must be a list of rules (it may be empty)", field="rules")
    if len(raw_rules) > MAX_RULES:
        raise RuleInvalid(f"at most {MAX_RULES} rules per rule set, got {len(raw_rules)}", field="rules")
    rules: list[FilterRule] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_rules):
        rule = _rule(raw, f"rules[{index}]")
        if rule.name in seen:
            raise RuleInvalid(f"duplicate rule name {rule.name!r}; names must be unique (they appear in "
                              "hold reasons)", field=f"rules[{index}].name")
        seen.add(rule.name)
        rules.append(rule)
    return FilterRuleSet(rules=tuple(rules), params=dict(params))


def _rule(raw: object, path: str) -> FilterRule:
    if not isinstance(raw, Mapping):
        raise RuleInvalid("a rule must be an object with name, when and action", field=path)
    for key in raw:
        if key not in _RULE_KEYS:
            raise RuleInvalid(f"unknown field {key!r}; a rule has {', '.join(_RULE_KEYS)}", field=f"{path}.{key}")
    for required in ("name", "when", "action"):
        if raw.get(required) is None:
            raise RuleInvalid(f"{required} is required", field=f"{path}.{required}")
    name = raw["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RuleInvalid("name must be 1–100 letters, digits, '_', '.', ':' or '-' (starting with a letter "
                          "or digit)", field=f"{path}.name")
    when = _text(raw["when"], f"{path}.when", limit=MAX_WHEN_LENGTH)
    action = raw["action"]
    if action not in ACTIONS:
        raise RuleInvalid(f"action must be one of {', '.join(ACTIONS)}, got {action!r}", field=f"{path}.action")
    if raw.get("description") is not None:
        _text(raw["description"], f"{path}.description", limit=MAX_REASON_LENGTH)
    reason = raw.get("reason")
    if reason is not None:
        reason = _text(reason, f"{path}.reason", limit=MAX_REASON_LENGTH)
    elif action == HOLD:
        raise RuleInvalid("a hold rule needs a reason: it is shown on every order it holds",
                          field=f"{path}.reason")
    tag = raw.get("tag")
    if action == TAG:
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise RuleInvalid("a tag rule needs a tag: 1–100 characters without spaces", field=f"{path}.tag")
    elif tag is not None:
        raise RuleInvalid("only tag rules carry a tag", field=f"{path}.tag")
    return FilterRule(name=name, when=when, action=str(action), reason=reason, tag=tag)


def _text(value: object, path: str, *, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RuleInvalid("must be a non-empty string", field=path)
    if len(value) > limit:
        raise RuleInvalid(f"must be at most {limit} characters, got {len(value)}", field=path)
    _clean(value, path)
    return value


def _clean(value: str, path: str) -> None:
    # PostgreSQL's JSONB can't store NUL and UTF-8 can't encode a lone surrogate.
    if "\x00" in value:
        raise RuleInvalid("must not contain NUL (\\u0000) characters", field=path)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RuleInvalid("must be valid Unicode text (it contains a lone surrogate)", field=path) from exc


def _json_value(value: object, path: str, *, depth: int) -> None:
    """Params are stored as JSON and handed to CEL: allow plain JSON values only."""
    if depth > MAX_NESTING:
        raise RuleInvalid(f"nested more than {MAX_NESTING} levels deep", field=path)
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RuleInvalid("numbers must be finite", field=path)
        return
    if isinstance(value, str):
        _clean(value, path)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _json_value(item, f"{path}[{index}]", depth=depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise RuleInvalid(f"keys must be strings, got {key!r}", field=path)
            _clean(key, path)
            _json_value(item, f"{path}.{key}", depth=depth + 1)
        return
    raise RuleInvalid(f"must be a JSON value (string, number, boolean, null, list or object), "
                      f"got {type(value).__name__}", field=path)

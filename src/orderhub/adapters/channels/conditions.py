"""``when:`` conditions of a mapping spec, compiled into closures (docs/channels.md §3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orderhub.adapters.channels.context import Condition, Ctx, InvalidChannelSpec, norm_key, spec_path
from orderhub.adapters.channels.paths import compile_reader

_COND_OPS = frozenset({"equals", "in", "not_in", "not_null", "null"})


def compile_condition(raw: Any, where: str) -> Condition:
    """Compile a ``when:`` block (a dict, or a list meaning all of them)."""
    if isinstance(raw, list):
        parts = [compile_condition(item, f"{where}[{i}]") for i, item in enumerate(raw)]
        return lambda ctx, obj: all(part(ctx, obj) for part in parts)
    if not isinstance(raw, dict):
        raise InvalidChannelSpec(f"{where}: a condition is a mapping such as {{path: status, equals: paid}}")
    if "all" in raw or "any" in raw or "not" in raw:
        if len(raw) != 1:
            raise InvalidChannelSpec(f"{where}: 'all', 'any' and 'not' stand alone in their condition")
        (op, body), = raw.items()
        if op == "not":
            inner = compile_condition(body, f"{where}.not")
            return lambda ctx, obj: not inner(ctx, obj)
        if not isinstance(body, list):
            raise InvalidChannelSpec(f"{where}.{op}: expected a list of conditions")
        parts = [compile_condition(item, f"{where}.{op}[{i}]") for i, item in enumerate(body)]
        if op == "all":
            return lambda ctx, obj: all(part(ctx, obj) for part in parts)
        return lambda ctx, obj: any(part(ctx, obj) for part in parts)
    unknown = set(raw) - _COND_OPS - {"path", "header"}
    if unknown:
        raise InvalidChannelSpec(f"{where}: unknown key(s) {sorted(unknown)} in condition")
    source = _condition_source(raw, where)
    ops = [key for key in raw if key in _COND_OPS]
    if len(ops) != 1:
        raise InvalidChannelSpec(f"{where}: a condition needs exactly one of {sorted(_COND_OPS)}")
    op = ops[0]
    arg = raw[op]
    test: Callable[[Any], bool]
    if op == "equals":
        wanted = norm_key(arg)
        test = lambda v: v is not None and norm_key(v) == wanted  # noqa: E731
    elif op in ("in", "not_in"):
        if not isinstance(arg, list):
            raise InvalidChannelSpec(f"{where}.{op}: expected a list of values")
        members = frozenset(norm_key(a) for a in arg)
        if op == "in":
            test = lambda v: v is not None and norm_key(v) in members  # noqa: E731
        else:
            test = lambda v: v is None or norm_key(v) not in members  # noqa: E731
    else:
        if arg is not True and arg is not False:
            raise InvalidChannelSpec(f"{where}.{op}: expected true or false")
        present = (op == "not_null") == arg
        test = (lambda v: not _empty(v)) if present else _empty
    return lambda ctx, obj: _test(source(ctx, obj), test)


def _condition_source(raw: dict[str, Any], where: str) -> Callable[[Ctx, Any], Any]:
    if ("path" in raw) == ("header" in raw):
        raise InvalidChannelSpec(f"{where}: a condition tests exactly one 'path' or 'header'")
    if "header" in raw:
        name = str(raw["header"]).lower()
        return lambda ctx, obj: ctx.headers.get(name)
    reader = compile_reader(spec_path(raw["path"], f"{where}.path"))
    return lambda ctx, obj: reader(obj)


def _test(value: Any, test: Callable[[Any], bool]) -> bool:
    # A wildcard path holds when any element does ("any line is a gift").
    if type(value) is list and value:
        return any(test(v) for v in value)
    return test(value)


def _empty(value: Any) -> bool:
    return value is None or value in ("", [], {})


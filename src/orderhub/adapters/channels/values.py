"""Value specs of a channel mapping file, compiled into plain callables.

A *value spec* says where a canonical field comes from and how it is converted: a path
(``"line_items[0].price"`` or ``{path: ..., as: money}``), a header, a constant, the first
non-empty of several specs, a join of several, a sum of money amounts, or a hash of the
message content. A *condition* (``when:``) tests a path or header. Both are compiled once
when the spec file is loaded; at mapping time they are closures over pre-parsed paths.
The syntax is documented for users in ``docs/channels.md``.
"""

from __future__ import annotations

from typing import Any

from orderhub.adapters.channels.conditions import compile_condition
from orderhub.adapters.channels.context import (
    Condition,
    Ctx,
    Getter,
    InvalidChannelSpec,
    Value,
    content_hash,
    fail,
    load_zone,
    norm_key,
    spec_path,
)
from orderhub.adapters.channels.converters import (
    CONVERTERS,
    MONEY_UNITS,
    Converter,
    compile_converter,
    currency_of,
    to_text,
)
from orderhub.adapters.channels.paths import compile_reader
from orderhub.domain.money import Money

__all__ = ["MONEY_UNITS", "Condition", "Ctx", "InvalidChannelSpec", "Value", "compile_condition", "compile_value",
           "content_hash", "fail", "load_zone", "norm_key"]

_VALUE_KEYS = frozenset({
    "path", "header", "const", "first", "join", "sep", "sum", "content_hash", "as", "unit", "format", "zone",
    "split", "map", "map_unknown", "default", "null_if", "when", "negate", "divide_by_quantity",
})


def compile_value(
    raw: Any, where: str, *, money_unit: str = "decimal", default_as: str = "raw", in_sum: bool = False
) -> Value:
    """Compile a value spec. A bare string is a path; ``default_as`` is the converter if ``as`` is absent.

    ``in_sum`` marks a part of a ``sum:`` list, which may read several amounts through ``[*]``.
    """
    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, dict):
        raise InvalidChannelSpec(f"{where}: a value is a path string or a mapping such as {{path: id, as: str}}")
    unknown = set(raw) - _VALUE_KEYS
    if unknown:
        raise InvalidChannelSpec(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_VALUE_KEYS)}")
    converter = raw.get("as", "money" if "sum" in raw else default_as)
    if converter not in CONVERTERS:
        raise InvalidChannelSpec(f"{where}.as: {converter!r} is not one of {list(CONVERTERS)}")
    source, label = _compile_source(raw, where, money_unit=money_unit, converter=converter)
    convert = compile_converter(raw, where, converter, money_unit, in_sum=in_sum)
    # A `first:` list converts in each alternative already; its result is final unless
    # replaced by a default or a value map.
    converted_by_source = "first" in raw
    if not {"when", "null_if", "default", "map"} & set(raw):
        return Value(_plain_getter(source, convert, converter, label, final=converted_by_source), label)
    return Value(_full_getter(raw, where, source, convert, label, final=converted_by_source), label)


def _plain_getter(source: Getter, convert: Converter, converter: str, label: str, *, final: bool) -> Getter:
    # The common case (a path, maybe converted) gets a closure without the modifiers.
    if final:
        return source
    if converter == "raw":
        def plain(ctx: Ctx, obj: Any, at: str) -> Any:
            value = source(ctx, obj, at)
            return None if value is None or value == "" else value
        return plain
    if converter == "str":
        def text(ctx: Ctx, obj: Any, at: str) -> Any:
            value = source(ctx, obj, at)
            if type(value) is str:
                return value or None
            return None if value is None else to_text(value, at, label)
        return text

    def converted(ctx: Ctx, obj: Any, at: str) -> Any:
        value = source(ctx, obj, at)
        if value is None or value == "":
            return None
        return convert(ctx, value, at, label)
    return converted


def _full_getter(raw: dict[str, Any], where: str, source: Getter, convert: Converter, label: str, *,
                 final: bool) -> Getter:
    if "null_if" in raw and not isinstance(raw["null_if"], list):
        raise InvalidChannelSpec(f"{where}.null_if: expected a list of values")
    null_if = frozenset(norm_key(v) for v in raw.get("null_if", ()))
    mapping = _compile_map(raw, where)
    # YAML reads a bare `null` as None; both spellings mean "no value".
    map_unknown = raw.get("map_unknown", "keep")
    map_unknown = "null" if map_unknown is None else map_unknown
    if map_unknown not in ("keep", "null", "fail"):
        raise InvalidChannelSpec(f"{where}.map_unknown: expected keep, null or fail")
    has_default = "default" in raw
    default = raw.get("default")
    when = compile_condition(raw["when"], f"{where}.when") if "when" in raw else None

    def lookup(value: Any, at: str) -> Any:
        assert mapping is not None
        mapped = mapping.get(norm_key(value), _MISSING)
        if mapped is not _MISSING:
            return mapped
        if map_unknown == "fail":
            raise fail(at, label, f"{value!r} is not a value this mapping knows")
        return None if map_unknown == "null" else value

    def get(ctx: Ctx, obj: Any, at: str) -> Any:
        if when is not None and not when(ctx, obj):
            return None
        value = source(ctx, obj, at)
        if value is None or value == "" or (null_if and norm_key(value) in null_if):
            # The default is used as given (converted, never re-mapped).
            return convert(ctx, default, at, label) if has_default and default is not None else None
        if mapping is not None:
            value = lookup(value, at)
            if value is None:
                return convert(ctx, default, at, label) if has_default and default is not None else None
        elif final:
            return value
        return convert(ctx, value, at, label)

    return get


_MISSING = object()


def _compile_map(raw: dict[str, Any], where: str) -> dict[str, Any] | None:
    if "map" not in raw:
        return None
    if not isinstance(raw["map"], dict):
        raise InvalidChannelSpec(f"{where}.map: expected a mapping of channel value -> value")
    return {norm_key(k): v for k, v in raw["map"].items()}


def _compile_source(
    raw: dict[str, Any], where: str, *, money_unit: str, converter: str
) -> tuple[Getter, str]:
    sources = [key for key in ("path", "header", "const", "first", "join", "sum", "content_hash") if key in raw]
    if len(sources) != 1:
        raise InvalidChannelSpec(
            f"{where}: a value needs exactly one of path, header, const, first, join, sum, content_hash"
        )
    kind = sources[0]
    arg = raw[kind]
    if kind == "path":
        texts = arg if isinstance(arg, list) else [arg]
        if not texts:
            raise InvalidChannelSpec(f"{where}.path: empty list")
        readers = [compile_reader(spec_path(text, f"{where}.path")) for text in texts]
        label = str(texts[0])
        if len(readers) == 1:
            reader = readers[0]
            return (lambda ctx, obj, at: reader(obj)), label

        def first_path(ctx: Ctx, obj: Any, at: str) -> Any:
            for reader in readers:
                value = reader(obj)
                if value is not None and value != "":
                    return value
            return None

        return first_path, label
    if kind == "header":
        name = str(arg).lower()
        return (lambda ctx, obj, at: ctx.headers.get(name)), f"header {name}"
    if kind == "const":
        return (lambda ctx, obj, at: arg), "const"
    if kind == "content_hash":
        return (lambda ctx, obj, at: content_hash(obj)), "content_hash"
    if not isinstance(arg, list) or not arg:
        raise InvalidChannelSpec(f"{where}.{kind}: expected a non-empty list of value specs")
    if kind == "first":
        parts = [
            compile_value(item, f"{where}.first[{i}]", money_unit=money_unit, default_as=converter)
            for i, item in enumerate(arg)
        ]

        def first(ctx: Ctx, obj: Any, at: str) -> Any:
            for part in parts:
                value = part.get(ctx, obj, at)
                if value is not None:
                    return value
            return None

        return first, parts[0].label
    if kind == "join":
        sep = raw.get("sep", " ")
        parts = [compile_value(item, f"{where}.join[{i}]", default_as="str") for i, item in enumerate(arg)]

        def join(ctx: Ctx, obj: Any, at: str) -> Any:
            texts = [text for part in parts if (text := part.get(ctx, obj, at))]
            return sep.join(texts) if texts else None

        return join, parts[0].label
    # sum: money amounts, each part may be a wildcard path (one amount per element).
    if converter != "money":
        raise InvalidChannelSpec(f"{where}.sum: sums are money; drop 'as' or use 'as: money'")
    parts = [compile_value(item, f"{where}.sum[{i}]", money_unit=money_unit, default_as="money", in_sum=True)
             for i, item in enumerate(arg)]

    def total(ctx: Ctx, obj: Any, at: str) -> Any:
        amount = 0
        found = False
        for part in parts:
            money = part.get(ctx, obj, at)
            if money is not None:
                amount += money.amount
                found = True
        return Money(amount, currency_of(ctx)) if found else None

    return total, parts[0].label

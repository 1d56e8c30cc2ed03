"""Converters of a mapping spec's values (``as: money | time | int | str | bool | list``).

Money is converted exactly into minor units (decimal strings, JSON numbers through their text,
integer cents); times become aware UTC, naive ones read in the field's, shop's or spec's zone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from orderhub.adapters.channels.context import Ctx, InvalidChannelSpec, fail, load_zone, norm_key
from orderhub.domain.errors import DomainError, MappingFailed
from orderhub.domain.money import CURRENCY_EXPONENTS, Money

CONVERTERS = ("raw", "str", "int", "bool", "money", "time", "list")
MONEY_UNITS = ("decimal", "yuan", "float", "cents")
TIME_FORMATS = ("iso", "local", "unix_s", "unix_ms")
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})



def currency_of(ctx: Ctx) -> str:
    """The order's currency, which money fields need; set before any money is read."""
    if ctx.currency is None:
        raise MappingFailed("currency: money read before the order's currency is known", field="currency")
    return ctx.currency


Converter = Callable[[Ctx, Any, str, str], Any]


def compile_converter(
    raw: dict[str, Any], where: str, converter: str, money_unit: str, *, in_sum: bool
) -> Converter:
    if converter == "money":
        return _money_converter(raw, where, money_unit, in_sum=in_sum)
    if converter == "time":
        return _time_converter(raw, where)
    if converter == "list":
        sep = raw.get("split", ",")

        def to_list(ctx: Ctx, value: Any, at: str, label: str) -> Any:
            items = value if isinstance(value, list) else str(value).split(sep)
            return [text for item in items if (text := str(item).strip())]

        return to_list
    if converter == "str":
        return lambda ctx, value, at, label: to_text(value, at, label)
    if converter == "int":
        return lambda ctx, value, at, label: _to_int(value, at, label)
    if converter == "bool":
        return lambda ctx, value, at, label: _to_bool(value, at, label)
    return lambda ctx, value, at, label: value


def to_text(value: Any, at: str, label: str) -> str:
    """A field as text; numbers become their digits, objects and lists fail."""
    if type(value) is str:
        return value
    if isinstance(value, (dict, list)):
        raise fail(at, label, "expected a text value, got an object or list")
    if isinstance(value, bool):
        return norm_key(value)
    return str(value)


def _to_int(value: Any, at: str, label: str) -> int:
    if isinstance(value, bool):
        raise fail(at, label, f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit() and value.strip().isascii():
        return int(value.strip())
    raise fail(at, label, f"expected an integer, got {value!r}")


def _to_bool(value: Any, at: str, label: str) -> bool:
    if isinstance(value, bool):
        return value
    text = norm_key(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise fail(at, label, f"expected true or false, got {value!r}")


def _money_converter(raw: dict[str, Any], where: str, money_unit: str, *, in_sum: bool) -> Converter:
    unit = raw.get("unit", money_unit)
    if unit not in MONEY_UNITS:
        raise InvalidChannelSpec(f"{where}.unit: {unit!r} is not one of {list(MONEY_UNITS)}")
    negate = bool(raw.get("negate", False))
    per_unit = bool(raw.get("divide_by_quantity", False))
    is_sum = in_sum

    def to_money(ctx: Ctx, value: Any, at: str, label: str) -> Money:
        currency = currency_of(ctx)
        if isinstance(value, Money):
            money = value
        elif type(value) is list:
            if not is_sum:
                raise fail(at, label, "a wildcard path gives several amounts; use 'sum:' to add them")
            money = Money(sum(_parse_money(item, currency, unit, at, label).amount for item in value), currency)
        else:
            money = _parse_money(value, currency, unit, at, label)
        if per_unit:
            quantity = ctx.quantity
            if not quantity:
                raise fail(at, label, "divide_by_quantity needs the line's quantity first")
            whole, rest = divmod(money.amount, quantity)
            if rest:
                raise fail(at, label, f"{money.to_decimal_string()} does not divide exactly by quantity {quantity}")
            money = Money(whole, currency)
        return -money if negate else money

    return to_money


def _parse_money(value: Any, currency: str, unit: str, at: str, label: str) -> Money:
    if type(value) is str and unit != "cents" and len(value) < 16:
        # Fast path for the everyday "59.90": plain ASCII digits, no sign, within the
        # currency's decimals. Anything else takes Money.parse's full checks below.
        whole, _, frac = value.partition(".")
        exponent = CURRENCY_EXPONENTS.get(currency, -1)
        if (whole.isdigit() and whole.isascii() and len(frac) <= exponent
                and (not frac or (frac.isdigit() and frac.isascii()))):
            return Money(int(whole + frac.ljust(exponent, "0")), currency)
    try:
        if unit == "cents":
            return Money(_to_int(value, at, label), currency)
        if isinstance(value, float):
            # A JSON number: its shortest repr is the text the channel sent (12.9, 48000.0);
            # going through Decimal(repr) keeps it exact, never binary float arithmetic.
            value = format(Decimal(repr(value)), "f")
        elif isinstance(value, Decimal):
            value = format(value, "f")
        return Money.parse(value, currency, field=f"{at}{label}")
    except MappingFailed:
        raise
    except (DomainError, InvalidOperation) as exc:
        reason = exc.message if isinstance(exc, DomainError) else f"{value!r} is not an amount"
        raise fail(at, label, reason) from exc


def _time_converter(raw: dict[str, Any], where: str) -> Converter:
    fmt = raw.get("format", "iso")
    if not isinstance(fmt, str):
        raise InvalidChannelSpec(f"{where}.format: expected one of {list(TIME_FORMATS)} or a strptime pattern")
    zone = load_zone(raw["zone"], f"{where}.zone") if "zone" in raw else None

    def localise(ctx: Ctx, parsed: datetime) -> datetime:
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone or ctx.zone)
        return parsed.astimezone(UTC)

    if fmt in ("iso", "local"):
        def iso(ctx: Ctx, value: Any, at: str, label: str) -> datetime:
            if not isinstance(value, str):
                raise fail(at, label, f"expected an ISO 8601 time, got {value!r}")
            try:
                return localise(ctx, datetime.fromisoformat(value))
            except ValueError as exc:
                raise fail(at, label, f"{value!r} is not an ISO 8601 time") from exc
        return iso
    if fmt in ("unix_s", "unix_ms"):
        divisor = 1000 if fmt == "unix_ms" else 1

        def epoch(ctx: Ctx, value: Any, at: str, label: str) -> datetime:
            number = _to_int(value, at, label)
            seconds, millis = divmod(number, divisor)
            try:
                return datetime.fromtimestamp(seconds, UTC) + timedelta(milliseconds=millis)
            except (OverflowError, OSError, ValueError) as exc:
                raise fail(at, label, f"{value!r} is out of range for {fmt}") from exc
        return epoch
    if "%" not in fmt:
        raise InvalidChannelSpec(f"{where}.format: expected one of {list(TIME_FORMATS)} or a strptime pattern")

    def pattern(ctx: Ctx, value: Any, at: str, label: str) -> datetime:
        try:
            return localise(ctx, datetime.strptime(str(value), fmt))
        except ValueError as exc:
            raise fail(at, label, f"{value!r} does not match {fmt!r}") from exc
    return pattern

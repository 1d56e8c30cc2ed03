"""The ``aftersale:`` section of a channel spec, compiled into an :class:`AfterSaleMapper`.

A channel's refund / return notification (a Taobao refund message, a Douyin or Pinduoduo
after-sale push, a Shopify ``refunds/create`` webhook) becomes one :class:`MappedAfterSale`.
The case type and state are *choices*: ordered rules, then the channel value, optionally
through a value map, and the result must be one of the canonical values; anything else is a
MappingFailed naming the payload field, never a guess. The inbox key is the case id with an
``aftersale:`` prefix, so a case and the order it belongs to never share a dedup key even
when a channel numbers them alike. The syntax is documented in ``docs/channels.md`` §10.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orderhub.adapters.channels.order_mapping import _check_keys, _KeyPart, _optional_time, _required
from orderhub.adapters.channels.paths import compile_path, read
from orderhub.adapters.channels.values import (
    Condition,
    Ctx,
    InvalidChannelSpec,
    Value,
    compile_condition,
    compile_value,
    fail,
    norm_key,
)
from orderhub.domain.aftersale.states import AfterSaleType
from orderhub.domain.channels.model import AFTERSALE_STATES, MappedAfterSale, MappedAfterSaleLine
from orderhub.domain.errors import DomainError, MappingFailed
from orderhub.domain.money import Money, currency_exponent

__all__ = ["AFTERSALE_KEY_PREFIX", "AFTERSALE_TYPES", "AfterSaleMapper", "aftersale_to_dict"]

AFTERSALE_KEY_PREFIX = "aftersale:"
AFTERSALE_TYPES: tuple[str, ...] = tuple(t.value for t in AfterSaleType)


class ChoiceMap:
    """A channel value to one of a fixed set of canonical values (an after-sale type or state).

    The block is ``{rules: [{when, <name>}], path | value, map, channel_status}``; anything else
    (a path string, ``{const: refund_only}``, ``{path: x, as: str, map: {...}}``) is a value spec
    whose result must already be canonical. Rules are tried first, then ``map`` on the value
    (or the value itself when there is no map); an unknown value fails naming its field.
    """

    _BLOCK = frozenset({"rules", "path", "value", "map", "channel_status"})

    def __init__(self, raw: Any, where: str, *, name: str, allowed: tuple[str, ...],
                 channel_status: bool = False) -> None:
        self.name = name
        self.allowed = allowed
        if isinstance(raw, str) or (isinstance(raw, dict) and not set(raw) <= self._BLOCK):
            raw = {"value": raw}
        keys = self._BLOCK if channel_status else self._BLOCK - {"channel_status"}
        raw = _check_keys(raw, keys, where)
        self.rules: list[tuple[Condition, str]] = []
        rules = raw.get("rules", [])
        if not isinstance(rules, list):
            raise InvalidChannelSpec(f"{where}.rules: expected a list of {{when: ..., {name}: ...}}")
        for i, raw_rule in enumerate(rules):
            rule = _check_keys(raw_rule, frozenset({"when", name}), f"{where}.rules[{i}]")
            if "when" not in rule or name not in rule:
                raise InvalidChannelSpec(f"{where}.rules[{i}]: a rule needs 'when' and '{name}'")
            self.rules.append((compile_condition(rule["when"], f"{where}.rules[{i}].when"),
                               self._canonical(rule[name], f"{where}.rules[{i}].{name}")))
        if ("path" in raw) == ("value" in raw):
            raise InvalidChannelSpec(f"{where}: give exactly one of 'path' or 'value' (the channel's {name} field)")
        source = raw.get("value", raw.get("path"))
        self.value = compile_value(source, f"{where}.value" if "value" in raw else f"{where}.path")
        self.map: dict[str, str] | None = None
        if "map" in raw:
            if not isinstance(raw["map"], dict) or not raw["map"]:
                raise InvalidChannelSpec(f"{where}.map: expected a mapping of channel value -> {name}")
            self.map = {norm_key(k): self._canonical(v, f"{where}.map.{k}") for k, v in raw["map"].items()}
        elif isinstance(source, dict) and set(source) <= {"const", "as"} and "const" in source:
            self._canonical(source["const"], f"{where}.value.const")   # a constant is checked now
        self.channel_status = (
            compile_value(raw["channel_status"], f"{where}.channel_status", default_as="str")
            if "channel_status" in raw else None
        )

    def _canonical(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or value not in self.allowed:
            raise InvalidChannelSpec(f"{where}: {value!r} is not an after-sale {self.name} "
                                     f"({', '.join(self.allowed)})")
        return value

    def apply(self, ctx: Ctx, obj: Any, at: str) -> tuple[str, str]:
        """Return (canonical value, raw channel value as text); MappingFailed on an unknown value."""
        raw = self.value.get(ctx, obj, at)
        channel_value = self.channel_status.get(ctx, obj, at) if self.channel_status is not None else None
        if channel_value is None:
            channel_value = "" if raw is None else norm_key(raw)
        for condition, value in self.rules:
            if condition(ctx, obj):
                return value, channel_value
        if raw is None:
            raise fail(at, self.value.label, f"required field missing ({self.name})")
        if self.map is not None:
            mapped = self.map.get(norm_key(raw))
            if mapped is None:
                raise fail(at, self.value.label,
                           f"unknown channel after-sale {self.name} {raw!r}; add it to the spec's {self.name} map")
            return mapped, channel_value
        text = norm_key(raw)
        if text not in self.allowed:
            raise fail(at, self.value.label,
                       f"{raw!r} is not an after-sale {self.name} ({', '.join(self.allowed)})")
        return text, channel_value


class AfterSaleLineMapper:
    """A compiled ``aftersale.lines`` block.

    ``path`` is the list of returned / refunded items; without ``path`` the after-sale object
    itself is the one line (Taobao and Pinduoduo refund one sub-order per case). No items
    (a missing or empty list, every item skipped) means "no line detail", not an error.
    """

    _KEYS = frozenset({"path", "sku", "quantity", "amount", "skip_when"})

    def __init__(self, raw: Any, where: str, *, money_unit: str) -> None:
        raw = _check_keys(raw, self._KEYS, where)
        for key in ("sku", "quantity"):
            if key not in raw:
                raise InvalidChannelSpec(f"{where}.{key}: required")
        self.steps: tuple[Any, ...] | None = None
        self.label = ""
        if "path" in raw:
            try:
                self.steps = compile_path(raw["path"])
            except ValueError as exc:
                raise InvalidChannelSpec(f"{where}.path: {exc}") from exc
            self.label = str(raw["path"])
        self.sku = compile_value(raw["sku"], f"{where}.sku", default_as="str")
        self.quantity = compile_value(raw["quantity"], f"{where}.quantity", default_as="int")
        self.amount = (compile_value(raw["amount"], f"{where}.amount", money_unit=money_unit, default_as="money")
                       if "amount" in raw else None)
        self.skip_when = compile_condition(raw["skip_when"], f"{where}.skip_when") if "skip_when" in raw else None

    def _items(self, obj: Any, at: str) -> list[tuple[Any, str]]:
        if self.steps is None:
            return [(obj, at)]
        items = read(obj, self.steps)
        if items is None or items == []:
            return []
        if type(items) is dict:
            return [(items, f"{at}{self.label}.")]
        if type(items) is not list:
            raise fail(at, self.label, "expected a list of after-sale items")
        return [(item, f"{at}{self.label}[{i}].") for i, item in enumerate(items)]

    def map(self, ctx: Ctx, obj: Any, at: str) -> tuple[MappedAfterSaleLine, ...]:
        """Map every item; quantities must be positive."""
        lines: list[MappedAfterSaleLine] = []
        for item, item_at in self._items(obj, at):
            if self.skip_when is not None and self.skip_when(ctx, item):
                continue
            quantity = _required(self.quantity, ctx, item, item_at, "quantity")
            if quantity <= 0:
                raise fail(item_at, self.quantity.label, f"quantity must be positive, got {quantity}")
            sku = _required(self.sku, ctx, item, item_at, "sku")
            amount = self.amount.get(ctx, item, item_at) if self.amount is not None else None
            lines.append(MappedAfterSaleLine(sku=sku, quantity=quantity, amount=amount))
        return tuple(lines)


class AfterSaleMapper(_KeyPart):
    """A compiled ``aftersale:`` section."""

    _KEYS = frozenset({"external_id", "version", "order_external_id", "currency", "type", "state", "reason",
                       "amount", "updated_at", "lines", "return_carrier", "return_waybill"})

    def __init__(self, raw: Any, where: str, *, money_unit: str) -> None:
        raw = _check_keys(raw, self._KEYS, where)
        super().__init__(raw, where)
        for key in ("order_external_id", "type", "state"):
            if key not in raw:
                raise InvalidChannelSpec(f"{where}.{key}: required")
        self.order_external_id = compile_value(raw["order_external_id"], f"{where}.order_external_id",
                                               default_as="str")
        self.type = ChoiceMap(raw["type"], f"{where}.type", name="type", allowed=AFTERSALE_TYPES)
        self.state = ChoiceMap(raw["state"], f"{where}.state", name="state", allowed=AFTERSALE_STATES,
                               channel_status=True)
        self.reason = _optional_str(raw, "reason", where)
        self.amount = (compile_value(raw["amount"], f"{where}.amount", money_unit=money_unit, default_as="money")
                       if "amount" in raw else None)
        self.updated_at = _optional_time(raw, "updated_at", where)
        self.lines = (AfterSaleLineMapper(raw["lines"], f"{where}.lines", money_unit=money_unit)
                      if "lines" in raw else None)
        has_money = self.amount is not None or (self.lines is not None and self.lines.amount is not None)
        if has_money and "currency" not in raw:
            raise InvalidChannelSpec(f"{where}.currency: required when an amount is mapped "
                                     "(a path, or {const: CNY})")
        self.currency = (compile_value(raw["currency"], f"{where}.currency", default_as="str")
                         if "currency" in raw else None)
        self.return_carrier = _optional_str(raw, "return_carrier", where)
        self.return_waybill = _optional_str(raw, "return_waybill", where)

    def key(self, ctx: Ctx, obj: Any, at: str) -> tuple[str, str]:
        """``("aftersale:<case id>", version)``: never the same key as an order message."""
        external_id, version = super().key(ctx, obj, at)
        return AFTERSALE_KEY_PREFIX + external_id, version

    def map(self, ctx: Ctx, obj: Any, at: str) -> MappedAfterSale:
        """Map an after-sale notification."""
        external_ref = str(_required(self.external_id, ctx, obj, at, "external_id"))
        order_external_id = str(_required(self.order_external_id, ctx, obj, at, "order_external_id"))
        case_type, _ = self.type.apply(ctx, obj, at)
        state, channel_status = self.state.apply(ctx, obj, at)
        currency = self._currency(ctx, obj, at)
        try:
            amount = self.amount.get(ctx, obj, at) if self.amount is not None else None
            lines = self.lines.map(ctx, obj, at) if self.lines is not None else ()
        except MappingFailed as exc:
            # An amount present while the currency is not: name the currency's payload field.
            if currency is None and exc.field == "currency" and self.currency is not None:
                raise fail(at, self.currency.label, "required field missing (currency)") from exc
            raise
        return MappedAfterSale(
            external_ref=external_ref,
            order_external_id=order_external_id,
            type=case_type,
            state=state,
            channel_status=channel_status,
            reason=(self.reason.get(ctx, obj, at) if self.reason is not None else None) or "",
            amount=amount,
            updated_at=self.updated_at.get(ctx, obj, at) if self.updated_at is not None else None,
            lines=lines,
            return_carrier=self.return_carrier.get(ctx, obj, at) if self.return_carrier is not None else None,
            return_waybill=self.return_waybill.get(ctx, obj, at) if self.return_waybill is not None else None,
        )

    def _currency(self, ctx: Ctx, obj: Any, at: str) -> str | None:
        if self.currency is None:
            return None
        value = self.currency.get(ctx, obj, at)
        if value is None:
            return None   # fine unless an amount is present (see map)
        currency = str(value).strip().upper()
        try:
            currency_exponent(currency)
        except DomainError as exc:
            raise fail(at, self.currency.label, f"{currency!r} is not an ISO 4217 currency code") from exc
        ctx.currency = currency
        return currency


def _optional_str(raw: dict[str, Any], key: str, where: str) -> Value | None:
    return compile_value(raw[key], f"{where}.{key}", default_as="str") if key in raw else None


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _minor(value: Money | None) -> int | None:
    return value.amount if value is not None else None


def aftersale_to_dict(case: MappedAfterSale) -> dict[str, Any]:
    """The canonical JSON of a mapped after-sale message (money in minor units, UTC ISO times)."""
    currency = case.amount.currency if case.amount is not None else next(
        (line.amount.currency for line in case.lines if line.amount is not None), None)
    return {
        "external_ref": case.external_ref,
        "order_external_id": case.order_external_id,
        "type": case.type,
        "state": case.state,
        "channel_status": case.channel_status,
        "reason": case.reason,
        "currency": currency,
        "amount": _minor(case.amount),
        "updated_at": _time(case.updated_at),
        "lines": [{"sku": line.sku, "quantity": line.quantity, "amount": _minor(line.amount)} for line in case.lines],
        "return_carrier": case.return_carrier,
        "return_waybill": case.return_waybill,
    }

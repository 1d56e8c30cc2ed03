"""The ``order:`` and ``status_message:`` sections of a channel spec, compiled into mappers.

:class:`OrderMapper` turns one channel order object into a :class:`MappedOrder`;
:class:`StatusMapper` turns a status notification into a :class:`MappedStatus`. Both also
compute the cheap :meth:`key` (external id + event version) the inbox dedups on, reading
only those two fields. Required fields missing raise MappingFailed with the exact payload
path (``line_items[2].price``); nothing is guessed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from orderhub.adapters.channels.paths import compile_path, read
from orderhub.adapters.channels.values import (
    Condition,
    Ctx,
    InvalidChannelSpec,
    Value,
    compile_condition,
    compile_value,
    content_hash,
    fail,
    norm_key,
)
from orderhub.domain.channels.model import MappedLine, MappedOrder, MappedStatus
from orderhub.domain.errors import MappingFailed
from orderhub.domain.money import Money, currency_exponent
from orderhub.domain.orders.model import Address, Buyer
from orderhub.domain.orders.states import OrderStatus


def _check_keys(raw: Any, allowed: frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidChannelSpec(f"{where}: expected a mapping")
    unknown = set(raw) - allowed
    if unknown:
        raise InvalidChannelSpec(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return raw


def _required(value: Value | None, ctx: Ctx, obj: Any, at: str, what: str) -> Any:
    if value is None:
        raise MappingFailed(f"{what}: the spec has no mapping for it", field=what)
    result = value.get(ctx, obj, at)
    if result is None:
        raise fail(at, value.label, f"required field missing ({what})")
    return result


def version_text(value: Any) -> str:
    """An event version as text: times normalised to UTC ISO 8601 so webhook and poll agree."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return norm_key(value)


class StatusMap:
    """Channel status -> canonical status: ordered rules first, then a value map; unknown fails."""

    _KEYS = frozenset({"rules", "path", "value", "map", "channel_status"})

    def __init__(self, raw: Any, where: str) -> None:
        raw = _check_keys(raw, self._KEYS, where)
        self.rules: list[tuple[Condition, OrderStatus]] = []
        for i, raw_rule in enumerate(raw.get("rules", [])):
            rule = _check_keys(raw_rule, frozenset({"when", "status"}), f"{where}.rules[{i}]")
            if "when" not in rule or "status" not in rule:
                raise InvalidChannelSpec(f"{where}.rules[{i}]: a rule needs 'when' and 'status'")
            self.rules.append((compile_condition(rule["when"], f"{where}.rules[{i}].when"),
                               _status(rule["status"], f"{where}.rules[{i}].status")))
        if ("path" in raw) == ("value" in raw):
            raise InvalidChannelSpec(f"{where}: give exactly one of 'path' or 'value' (the channel status field)")
        self.value = compile_value(raw.get("value", raw.get("path")), f"{where}.value")
        if not isinstance(raw.get("map"), dict) or not raw["map"]:
            raise InvalidChannelSpec(f"{where}.map: expected a mapping of channel status -> canonical status")
        self.map = {norm_key(k): _status(v, f"{where}.map.{k}") for k, v in raw["map"].items()}
        self.channel_status = (
            compile_value(raw["channel_status"], f"{where}.channel_status", default_as="str")
            if "channel_status" in raw else None
        )

    def apply(self, ctx: Ctx, obj: Any, at: str) -> tuple[OrderStatus, str]:
        """Return (canonical status, raw channel status); MappingFailed on an unknown status."""
        raw = self.value.get(ctx, obj, at)
        channel_status = None
        if self.channel_status is not None:
            channel_status = self.channel_status.get(ctx, obj, at)
        if channel_status is None:
            channel_status = "" if raw is None else norm_key(raw)
        for condition, status in self.rules:
            if condition(ctx, obj):
                return status, channel_status
        if raw is None:
            raise fail(at, self.value.label, "required field missing (status)")
        mapped = self.map.get(norm_key(raw))
        if mapped is None:
            raise fail(at, self.value.label, f"unknown channel status {raw!r}; add it to the spec's status map")
        return mapped, channel_status


def _status(value: Any, where: str) -> OrderStatus:
    try:
        return OrderStatus(value)
    except ValueError as exc:
        names = ", ".join(s.value for s in OrderStatus)
        raise InvalidChannelSpec(f"{where}: {value!r} is not a canonical status ({names})") from exc


class _KeyPart:
    """external_id + version, shared by orders and status messages."""

    def __init__(self, raw: dict[str, Any], where: str) -> None:
        if "external_id" not in raw:
            raise InvalidChannelSpec(f"{where}.external_id: required")
        self.external_id = compile_value(raw["external_id"], f"{where}.external_id", default_as="str")
        self.version = compile_value(raw["version"], f"{where}.version") if "version" in raw else None

    def key(self, ctx: Ctx, obj: Any, at: str) -> tuple[str, str]:
        external_id = str(_required(self.external_id, ctx, obj, at, "external_id"))
        version = self.version.get(ctx, obj, at) if self.version is not None else None
        # No version field (or none in this message): the content itself is the version,
        # so the same bytes dedup and any change makes a new version.
        return external_id, content_hash(obj) if version is None else version_text(version)


class StatusMapper(_KeyPart):
    """A compiled ``status_message:`` section."""

    _KEYS = frozenset({"external_id", "version", "status", "updated_at"})

    def __init__(self, raw: Any, where: str, *, money_unit: str) -> None:
        raw = _check_keys(raw, self._KEYS, where)
        super().__init__(raw, where)
        if "status" not in raw:
            raise InvalidChannelSpec(f"{where}.status: required")
        self.status = StatusMap(raw["status"], f"{where}.status")
        self.updated_at = _optional_time(raw, "updated_at", where)

    def map(self, ctx: Ctx, obj: Any, at: str) -> MappedStatus:
        """Map a status notification."""
        external_id = str(_required(self.external_id, ctx, obj, at, "external_id"))
        status, channel_status = self.status.apply(ctx, obj, at)
        updated_at = self.updated_at.get(ctx, obj, at) if self.updated_at else None
        return MappedStatus(external_id=external_id, status=status, channel_status=channel_status,
                            updated_at=updated_at)


def _optional_time(raw: dict[str, Any], key: str, where: str) -> Value | None:
    return compile_value(raw[key], f"{where}.{key}", default_as="time") if key in raw else None


class LineMapper:
    """A compiled ``lines:`` block: the list path plus per-item fields."""

    _KEYS = frozenset({"path", "sku", "title", "quantity", "unit_price", "discount", "tax", "skip_when",
                       "merge_same_sku"})

    def __init__(self, raw: Any, where: str, *, money_unit: str) -> None:
        raw = _check_keys(raw, self._KEYS, where)
        for key in ("path", "sku", "quantity", "unit_price"):
            if key not in raw:
                raise InvalidChannelSpec(f"{where}.{key}: required")
        try:
            self.steps = compile_path(raw["path"])
        except ValueError as exc:
            raise InvalidChannelSpec(f"{where}.path: {exc}") from exc
        self.label = str(raw["path"])
        self.sku = compile_value(raw["sku"], f"{where}.sku", default_as="str")
        self.title = compile_value(raw["title"], f"{where}.title", default_as="str") if "title" in raw else None
        self.quantity = compile_value(raw["quantity"], f"{where}.quantity", default_as="int")
        self.unit_price = compile_value(raw["unit_price"], f"{where}.unit_price", money_unit=money_unit,
                                        default_as="money")
        self.discount = (compile_value(raw["discount"], f"{where}.discount", money_unit=money_unit,
                                       default_as="money") if "discount" in raw else None)
        self.tax = (compile_value(raw["tax"], f"{where}.tax", money_unit=money_unit, default_as="money")
                    if "tax" in raw else None)
        self.skip_when = compile_condition(raw["skip_when"], f"{where}.skip_when") if "skip_when" in raw else None
        self.merge = bool(raw.get("merge_same_sku", False))

    def map(self, ctx: Ctx, obj: Any, at: str) -> tuple[MappedLine, ...]:
        """Map every item of the line list; at least one line is required."""
        items = read(obj, self.steps)
        if type(items) is not list or not items:
            raise fail(at, self.label, "required field missing (an order needs at least one line)")
        currency = ctx.currency
        assert currency is not None  # set by OrderMapper before lines are read
        zero = Money(0, currency)
        lines: list[MappedLine] = []
        for i, item in enumerate(items):
            item_at = f"{at}{self.label}[{i}]."
            if self.skip_when is not None and self.skip_when(ctx, item):
                continue
            quantity = _required(self.quantity, ctx, item, item_at, "quantity")
            if quantity <= 0:
                raise fail(item_at, self.quantity.label, f"quantity must be positive, got {quantity}")
            ctx.quantity = quantity
            sku = _required(self.sku, ctx, item, item_at, "sku")
            unit_price = _required(self.unit_price, ctx, item, item_at, "unit_price")
            title = self.title.get(ctx, item, item_at) if self.title else None
            discount = (self.discount.get(ctx, item, item_at) if self.discount else None) or zero
            tax = (self.tax.get(ctx, item, item_at) if self.tax else None) or zero
            lines.append(MappedLine(sku=sku, title=title, quantity=quantity, unit_price=unit_price,
                                    discount=discount, tax=tax))
        ctx.quantity = None
        if not lines:
            raise fail(at, self.label, "every line was skipped; an order needs at least one line")
        return tuple(_merge(lines)) if self.merge else tuple(lines)


def _merge(lines: list[MappedLine]) -> list[MappedLine]:
    # Channels that send one line per unit (TikTok Shop) become one line per SKU and price.
    merged: dict[tuple[str, int], MappedLine] = {}
    for line in lines:
        key = (line.sku, line.unit_price.amount)
        seen = merged.get(key)
        if seen is None:
            merged[key] = line
        else:
            merged[key] = MappedLine(sku=line.sku, title=seen.title or line.title,
                                     quantity=seen.quantity + line.quantity, unit_price=line.unit_price,
                                     discount=seen.discount + line.discount, tax=seen.tax + line.tax)
    return list(merged.values())


class OrderMapper(_KeyPart):
    """A compiled ``order:`` section."""

    _KEYS = frozenset({"external_id", "version", "status", "currency", "placed_at", "paid_at", "updated_at",
                       "lines", "shipping_fee", "discount", "buyer", "shipping_address", "tags",
                       "payment_method", "attributes"})
    _ADDRESS = ("country", "province", "city", "district", "detail", "postcode", "name", "phone")

    def __init__(self, raw: Any, where: str, *, money_unit: str) -> None:
        raw = _check_keys(raw, self._KEYS, where)
        super().__init__(raw, where)
        for key in ("status", "currency", "placed_at", "lines"):
            if key not in raw:
                raise InvalidChannelSpec(f"{where}.{key}: required")
        self.status = StatusMap(raw["status"], f"{where}.status")
        self.currency = compile_value(raw["currency"], f"{where}.currency", default_as="str")
        self.placed_at = compile_value(raw["placed_at"], f"{where}.placed_at", default_as="time")
        self.paid_at = _optional_time(raw, "paid_at", where)
        self.updated_at = _optional_time(raw, "updated_at", where)
        self.lines = LineMapper(raw["lines"], f"{where}.lines", money_unit=money_unit)
        self.shipping_fee = self._money(raw, "shipping_fee", where, money_unit)
        self.discount = self._money(raw, "discount", where, money_unit)
        buyer = _check_keys(raw.get("buyer", {}), frozenset({"name", "phone", "email"}), f"{where}.buyer")
        self.buyer = {k: compile_value(v, f"{where}.buyer.{k}", default_as="str") for k, v in buyer.items()}
        address = _check_keys(raw.get("shipping_address", {}), frozenset({"when", *self._ADDRESS}),
                              f"{where}.shipping_address")
        self.address_when = (compile_condition(address["when"], f"{where}.shipping_address.when")
                             if "when" in address else None)
        self.address = {k: compile_value(v, f"{where}.shipping_address.{k}", default_as="str")
                        for k, v in address.items() if k != "when"}
        if self.address and "country" not in self.address:
            raise InvalidChannelSpec(f"{where}.shipping_address.country: required when an address is mapped")
        tags = _check_keys(raw.get("tags", {}), frozenset({"value", "add"}), f"{where}.tags")
        self.tags_value = (compile_value(tags["value"], f"{where}.tags.value", default_as="list")
                           if "value" in tags else None)
        self.tags_add: list[tuple[Condition, str]] = []
        for i, raw_rule in enumerate(tags.get("add", [])):
            rule = _check_keys(raw_rule, frozenset({"when", "tag"}), f"{where}.tags.add[{i}]")
            if "when" not in rule or not rule.get("tag"):
                raise InvalidChannelSpec(f"{where}.tags.add[{i}]: needs 'when' and 'tag'")
            self.tags_add.append((compile_condition(rule["when"], f"{where}.tags.add[{i}].when"), str(rule["tag"])))
        self.payment_method = (compile_value(raw["payment_method"], f"{where}.payment_method", default_as="str")
                               if "payment_method" in raw else None)
        attributes = _check_keys(raw.get("attributes", {}), frozenset(raw.get("attributes", {})),
                                 f"{where}.attributes")
        self.attributes = {str(k): compile_value(v, f"{where}.attributes.{k}") for k, v in attributes.items()}

    @staticmethod
    def _money(raw: dict[str, Any], key: str, where: str, money_unit: str) -> Value | None:
        if key not in raw:
            return None
        return compile_value(raw[key], f"{where}.{key}", money_unit=money_unit, default_as="money")

    def map(self, ctx: Ctx, obj: Any, at: str) -> MappedOrder:
        """Map a full order object."""
        external_id = str(_required(self.external_id, ctx, obj, at, "external_id"))
        currency = str(_required(self.currency, ctx, obj, at, "currency")).strip().upper()
        try:
            currency_exponent(currency)
        except Exception as exc:
            raise fail(at, self.currency.label, f"{currency!r} is not an ISO 4217 currency code") from exc
        ctx.currency = currency
        status, channel_status = self.status.apply(ctx, obj, at)
        zero = Money(0, currency)
        return MappedOrder(
            external_id=external_id,
            status=status,
            channel_status=channel_status,
            currency=currency,
            placed_at=_required(self.placed_at, ctx, obj, at, "placed_at"),
            updated_at=self.updated_at.get(ctx, obj, at) if self.updated_at else None,
            paid_at=self.paid_at.get(ctx, obj, at) if self.paid_at else None,
            lines=self.lines.map(ctx, obj, at),
            shipping_fee=(self.shipping_fee.get(ctx, obj, at) if self.shipping_fee else None) or zero,
            discount=(self.discount.get(ctx, obj, at) if self.discount else None) or zero,
            buyer=Buyer(**{k: v.get(ctx, obj, at) for k, v in self.buyer.items()}),
            shipping_address=self._address(ctx, obj, at),
            tags=self._tags(ctx, obj, at),
            payment_method=self.payment_method.get(ctx, obj, at) if self.payment_method else None,
            attributes={k: _json_safe(v.get(ctx, obj, at)) for k, v in self.attributes.items()},
        )

    def _address(self, ctx: Ctx, obj: Any, at: str) -> Address | None:
        if not self.address or (self.address_when is not None and not self.address_when(ctx, obj)):
            return None
        values = {k: v.get(ctx, obj, at) for k, v in self.address.items()}
        if all(v is None for v in values.values()):
            return None
        if values.get("country") is None:
            raise fail(at, self.address["country"].label, "required field missing (shipping_address.country)")
        return Address(**values)

    def _tags(self, ctx: Ctx, obj: Any, at: str) -> tuple[str, ...]:
        tags: list[str] = list(self.tags_value.get(ctx, obj, at) or []) if self.tags_value else []
        tags.extend(tag for condition, tag in self.tags_add if condition(ctx, obj))
        return tuple(dict.fromkeys(tags))


def _json_safe(value: Any) -> Any:
    if isinstance(value, Money):
        return value.to_decimal_string()
    if isinstance(value, datetime):
        return value.isoformat()
    return value

"""What every compiled piece of a mapping spec shares: the mapping context, spec errors and
the few helpers that name payload fields in errors, compare values and hash content."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orderhub.adapters.channels.paths import InvalidPath, compile_path
from orderhub.domain.errors import MappingFailed


class InvalidChannelSpec(ValueError):
    """Raised when a channel mapping file is broken: bad YAML, an unknown key, a bad path,
    converter, zone or status. The message names the file and the key (``order.lines.sku``)."""


class Ctx:
    """What a mapping needs besides the object being read: headers, zone, currency, line quantity."""

    __slots__ = ("currency", "headers", "quantity", "zone")

    def __init__(self, headers: Mapping[str, str], zone: ZoneInfo) -> None:
        self.headers = headers
        self.zone = zone
        self.currency: str | None = None
        self.quantity: int | None = None


Getter = Callable[[Ctx, Any, str], Any]
Condition = Callable[[Ctx, Any], bool]


class Value:
    """A compiled value spec: ``get(ctx, obj, where)`` reads and converts; ``label`` names it in errors.

    ``where`` is the payload path of ``obj`` (``""``, ``"data."``, ``"line_items[2]."``) so that
    an error names the exact field, e.g. ``line_items[2].price``.
    """

    __slots__ = ("get", "label")

    def __init__(self, get: Getter, label: str) -> None:
        self.get = get
        self.label = label


def fail(where: str, label: str, reason: str) -> MappingFailed:
    """A MappingFailed naming the payload field ``where + label``."""
    field = f"{where}{label}"
    return MappingFailed(f"{field}: {reason}", field=field)


def norm_key(value: Any) -> str:
    """How raw values and YAML map keys are compared: ``105``, ``"105"`` and ``105.0``-free text alike."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def content_hash(obj: Any) -> str:
    """A stable digest of a JSON value (keys sorted, no whitespace): same content, same hash."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def load_zone(name: Any, where: str) -> ZoneInfo:
    """ZoneInfo for an IANA name; InvalidChannelSpec naming ``where`` otherwise."""
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidChannelSpec(f"{where}: {name!r} is not an IANA time zone (e.g. Asia/Shanghai, UTC)") from exc


def spec_path(text: Any, where: str) -> tuple[str | int | None, ...]:
    """Compile a path found in a spec; InvalidChannelSpec naming ``where`` when it is malformed."""
    try:
        return compile_path(text)
    except InvalidPath as exc:
        raise InvalidChannelSpec(f"{where}: {exc}") from exc

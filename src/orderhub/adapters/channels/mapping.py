"""Channel mapping specs: one declarative YAML file per channel, compiled once into fast mappers.

"Adding a channel or a changed field is a mapping file edit": the built-in specs live in
``adapters/channels/specs/*.yaml``; files in an extra directory (``$ORDERHUB_HOME/channels``)
override or extend them. The format is documented in ``docs/channels.md``.

A :class:`ChannelSpec` does three things for the gateway:

* :meth:`ChannelSpec.parse_body` — raw bytes to a payload (JSON, or a form-encoded ping);
* :meth:`ChannelSpec.identify` — the cheap dedup key (external id, event version, kind);
* :meth:`ChannelSpec.map` — the full canonical :data:`~orderhub.domain.channels.model.Mapped`
  (an order, a status notification, an after-sale case or Ignored).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import yaml

from orderhub.adapters.channels.aftersale_mapping import AfterSaleMapper
from orderhub.adapters.channels.order_mapping import OrderMapper, StatusMapper
from orderhub.adapters.channels.paths import compile_path, read
from orderhub.adapters.channels.signatures import SCHEMES
from orderhub.adapters.channels.values import (
    MONEY_UNITS,
    Condition,
    Ctx,
    InvalidChannelSpec,
    compile_condition,
    content_hash,
    load_zone,
)
from orderhub.domain.channels.model import Ignored, Mapped, MessageKey
from orderhub.domain.errors import DomainError, MappingFailed, UnreadableMessage

BUILTIN_DIR = Path(__file__).resolve().parent / "specs"
KINDS = ("order", "status", "aftersale", "ignore")

__all__ = ["BUILTIN_DIR", "ChannelSpec", "InvalidChannelSpec", "SpecRegistry", "UnknownChannel", "load_registry"]


class UnknownChannel(DomainError):
    """Raised when a channel name has no mapping spec (neither built in nor in the extra directory)."""

    code = "unknown_channel"


class _Message:
    """One entry of ``messages:``: when it applies, which kind it is and where the object sits."""

    __slots__ = ("kind", "reason", "root", "root_label", "when")

    def __init__(self, raw: Any, where: str) -> None:
        if not isinstance(raw, dict):
            raise InvalidChannelSpec(f"{where}: expected a mapping such as {{kind: order}}")
        unknown = set(raw) - {"when", "kind", "root", "reason"}
        if unknown:
            raise InvalidChannelSpec(f"{where}: unknown key(s) {sorted(unknown)}; allowed: kind, when, root, reason")
        self.kind = raw.get("kind", "order")
        if self.kind not in KINDS:
            raise InvalidChannelSpec(f"{where}.kind: {self.kind!r} is not one of {list(KINDS)}")
        self.when: Condition | None = compile_condition(raw["when"], f"{where}.when") if "when" in raw else None
        self.reason = str(raw.get("reason", "not an order message"))
        root = raw.get("root")
        try:
            self.root = compile_path(root) if root else ()
        except ValueError as exc:
            raise InvalidChannelSpec(f"{where}.root: {exc}") from exc
        self.root_label = f"{root}." if root else ""


class ChannelSpec:
    """One channel's compiled mapping spec (see docs/channels.md)."""

    _TOP = frozenset({"channel", "display_name", "description", "timezone", "signature", "signature_header",
                      "body", "money_unit", "poll", "messages", "order", "status_message", "aftersale",
                      "notes"})

    def __init__(self, channel: str, raw: Any, *, source: str = "<spec>") -> None:
        try:
            self._compile(channel, raw)
        except InvalidChannelSpec as exc:
            raise InvalidChannelSpec(f"{source}: {exc}") from exc
        self.source = source

    def _compile(self, channel: str, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise InvalidChannelSpec("the file must be a YAML mapping (channel:, order:, ...)")
        unknown = set(raw) - self._TOP
        if unknown:
            raise InvalidChannelSpec(f"unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(self._TOP)}")
        if "channel" in raw and raw["channel"] != channel:
            raise InvalidChannelSpec(f"channel: {raw['channel']!r} must match the file name {channel!r}")
        self.channel: str = channel
        self.display_name: str = str(raw.get("display_name", channel))
        self.timezone: str = str(raw.get("timezone", "UTC"))
        self._zone = load_zone(self.timezone, "timezone")
        self.signature: str = str(raw.get("signature", "none"))
        if self.signature not in SCHEMES:
            raise InvalidChannelSpec(f"signature: {self.signature!r} is not one of {sorted(SCHEMES)}")
        header = raw.get("signature_header")
        self.signature_header: str | None = str(header).lower() if header else None
        self.body: str = str(raw.get("body", "json"))
        if self.body not in ("json", "json_or_form"):
            raise InvalidChannelSpec(f"body: {self.body!r} is not json or json_or_form")
        money_unit = str(raw.get("money_unit", "decimal"))
        if money_unit not in MONEY_UNITS:
            raise InvalidChannelSpec(f"money_unit: {money_unit!r} is not one of {list(MONEY_UNITS)}")
        poll = raw.get("poll")
        if poll is not None and not isinstance(poll, dict):
            raise InvalidChannelSpec("poll: expected a mapping")
        self.poll: dict[str, Any] | None = poll
        messages = raw.get("messages", [{"kind": "order"}])
        if not isinstance(messages, list) or not messages:
            raise InvalidChannelSpec("messages: expected a non-empty list")
        self._messages = [_Message(m, f"messages[{i}]") for i, m in enumerate(messages)]
        kinds = {m.kind for m in self._messages}
        if "order" not in raw:
            raise InvalidChannelSpec("order: required (how a full order maps)")
        self._order = OrderMapper(raw["order"], "order", money_unit=money_unit)
        self._status: StatusMapper | None = None
        if "status_message" in raw:
            self._status = StatusMapper(raw["status_message"], "status_message", money_unit=money_unit)
        elif "status" in kinds:
            raise InvalidChannelSpec("status_message: required because messages has a 'status' kind")
        self._aftersale: AfterSaleMapper | None = None
        if "aftersale" in raw:
            self._aftersale = AfterSaleMapper(raw["aftersale"], "aftersale", money_unit=money_unit)
        elif "aftersale" in kinds:
            raise InvalidChannelSpec("aftersale: required because messages has an 'aftersale' kind")

    def __repr__(self) -> str:
        return f"ChannelSpec({self.channel!r}, source={self.source!r})"

    # ------------------------------------------------------------------------------------

    def parse_body(self, body: bytes, headers: Mapping[str, str]) -> Any:
        """Raw bytes to a payload; UnreadableMessage when the body is neither JSON nor (if allowed) a form."""
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UnreadableMessage(f"body is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
        try:
            payload = json.loads(text)
        except ValueError as exc:
            if self.body == "json_or_form" and text and "=" in text and not text.lstrip().startswith(("{", "[")):
                # WooCommerce's ping on webhook creation is `webhook_id=<id>`, form-encoded.
                return dict(parse_qsl(text, keep_blank_values=True))
            raise UnreadableMessage(f"body is not valid JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise UnreadableMessage(f"body is JSON but not an object (got {type(payload).__name__})")
        return payload

    def _select(self, payload: Any, ctx: Ctx) -> tuple[_Message, Any]:
        for message in self._messages:
            if message.when is None or message.when(ctx, payload):
                if not message.root:
                    return message, payload
                obj = read(payload, message.root)
                if message.kind != "ignore" and type(obj) is not dict:
                    raise MappingFailed(f"{message.root_label[:-1]}: required object missing",
                                        field=message.root_label[:-1])
                return message, obj
        raise MappingFailed("message: no entry of the spec's `messages` list matches this message", field="message")

    def identify(self, payload: Any, headers: Mapping[str, str]) -> MessageKey:
        """The inbox dedup key of a message: external id, event version and kind (cheap)."""
        ctx = Ctx(headers, self._zone)
        message, obj = self._select(payload, ctx)
        if message.kind == "ignore":
            digest = content_hash(payload)
            return MessageKey(external_id=f"ignored-{digest[7:]}", event_version=digest, kind="ignore")
        mapper: OrderMapper | StatusMapper | AfterSaleMapper | None = (
            self._order if message.kind == "order" else self._aftersale if message.kind == "aftersale"
            else self._status)
        assert mapper is not None  # guaranteed at compile time
        external_id, version = mapper.key(ctx, obj, message.root_label)
        return MessageKey(external_id=external_id, event_version=version, kind=message.kind)

    def map(self, payload: Any, headers: Mapping[str, str], *, timezone: str | None = None) -> Mapped:
        """Map a message to a canonical order, status, after-sale or Ignored; MappingFailed names the field."""
        zone = self._zone if timezone is None else load_zone_for_shop(timezone)
        ctx = Ctx(headers, zone)
        message, obj = self._select(payload, ctx)
        if message.kind == "ignore":
            return Ignored(reason=message.reason)
        if message.kind == "status":
            assert self._status is not None
            return self._status.map(ctx, obj, message.root_label)
        if message.kind == "aftersale":
            assert self._aftersale is not None
            return self._aftersale.map(ctx, obj, message.root_label)
        return self._order.map(ctx, obj, message.root_label)


def load_zone_for_shop(name: str) -> Any:
    """The shop's zone; an unknown name is a MappingFailed on ``timezone`` (the shop is misconfigured)."""
    try:
        return load_zone(name, "timezone")
    except InvalidChannelSpec as exc:
        raise MappingFailed(f"timezone: the shop's zone {name!r} is not an IANA time zone", field="timezone") from exc


class SpecRegistry:
    """The channels OrderHub knows, by name."""

    def __init__(self, specs: Mapping[str, ChannelSpec]) -> None:
        self._specs = dict(specs)

    def get(self, channel: str) -> ChannelSpec:
        """The spec of ``channel``; UnknownChannel if there is none."""
        spec = self._specs.get(channel)
        if spec is None:
            raise UnknownChannel(
                f"no mapping spec for channel {channel!r}; known: {', '.join(sorted(self._specs))}", field="channel"
            )
        return spec

    def channels(self) -> list[str]:
        """Every channel name, sorted."""
        return sorted(self._specs)


def load_spec_file(path: Path) -> ChannelSpec:
    """Load and compile one spec file; InvalidChannelSpec names the file and the key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidChannelSpec(f"{path}: can't read the YAML: {exc}") from exc
    return ChannelSpec(path.stem, raw, source=str(path))


def load_registry(extra_dir: Path | None = None) -> SpecRegistry:
    """Built-in specs, overridden or extended by ``*.yaml`` in ``extra_dir`` (if it exists)."""
    files = {path.stem: path for path in sorted(BUILTIN_DIR.glob("*.yaml"))}
    if extra_dir is not None and extra_dir.is_dir():
        files.update({path.stem: path for path in sorted(extra_dir.glob("*.yaml"))})
    return SpecRegistry({name: load_spec_file(path) for name, path in files.items()})

"""Command handlers of the channel gateway: shops, receiving messages into the inbox,
replaying dead-lettered messages and resuming a channel after its breaker tripped."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orderhub.adapters.channels.mapping import ChannelSpec, SpecRegistry, UnknownChannel
from orderhub.adapters.channels.signatures import verify_signature
from orderhub.adapters.db.channels import InboxRow
from orderhub.adapters.db.errors import DuplicateKeyError
from orderhub.adapters.metrics import Metrics
from orderhub.domain import ids
from orderhub.domain.channels.breaker import BreakerState, breaker_transition
from orderhub.domain.channels.inbox import REPLAYABLE, InboxSource, InboxStatus, inbox_transition
from orderhub.domain.channels.shop import Shop
from orderhub.domain.commands import ReceiveChannelMessage, RegisterShop, ReplayInbox, ResumeChannel
from orderhub.domain.errors import InvalidShop, MappingFailed, SignatureInvalid, UnreadableMessage
from orderhub.domain.events import ChannelResumed, InboxReplayed, ShopRegistered
from orderhub.service_layer.errors import ChannelNotFound, InvalidInput, ShopAlreadyExists, ShopNotFound
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

# Headers worth keeping with a message (topics, delivery ids, timestamps); signatures and
# credentials are never stored.
KEPT_HEADER_PREFIXES = ("x-shopify-", "x-wc-webhook-", "x-orderhub-", "content-type", "user-agent")
DROPPED_HEADERS = frozenset({"x-shopify-hmac-sha256", "x-wc-webhook-signature", "x-orderhub-signature",
                             "authorization", "cookie"})
MAX_HEADER_VALUE = 500


@dataclass(frozen=True, slots=True)
class Received:
    """What receiving a channel message did: ``accepted`` (new), ``duplicate`` (its dedup key
    was stored before: ``message_id`` is the earlier message) or ``rejected`` (unreadable)."""

    status: str
    message_id: str
    tenant_id: str
    reason: str | None = None


class ShopCache:
    """Shops by (channel, code), kept for ``ttl`` seconds: every webhook needs its shop's
    secret, and shops change rarely. Only found shops are cached (a shop registered a
    moment ago is found at once), and a signature that fails against a cached secret is
    checked again against the database before the push is refused (a rotated secret takes
    effect at once)."""

    def __init__(self, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._shops: dict[tuple[str, str], tuple[float, Shop]] = {}

    def get(self, uow: SqlAlchemyUnitOfWork, channel: str, code: str, *, fresh: bool = False) -> Shop | None:
        """The shop, from the cache unless ``fresh`` or expired."""
        now = self._clock()
        hit = self._shops.get((channel, code))
        if hit is not None and not fresh and now - hit[0] < self._ttl:
            return hit[1]
        shop = uow.shops.by_code(channel, code)
        if shop is None:
            self._shops.pop((channel, code), None)
        else:
            self._shops[(channel, code)] = (now, shop)
        return shop


def register_shop(cmd: RegisterShop, uow: SqlAlchemyUnitOfWork, *, specs: SpecRegistry) -> Shop:
    """Register a shop for a channel that has a mapping spec."""
    try:
        specs.get(cmd.channel)
    except UnknownChannel as exc:
        raise InvalidShop(f"channel: no mapping spec for {cmd.channel!r}; known channels: "
                          f"{', '.join(specs.channels())}", field="channel") from exc
    Shop.validate(code=cmd.code, name=cmd.name, secret=cmd.secret, timezone=cmd.timezone)
    with uow:
        uow.act_as(cmd.actor)
        now = uow.clock.now()
        shop = Shop(id=ids.new_id("shp"), tenant_id=cmd.actor.tenant_id, code=cmd.code, channel=cmd.channel,
                    name=cmd.name.strip(), secret=cmd.secret, timezone=cmd.timezone, settings=dict(cmd.settings),
                    created_at=now)
        try:
            uow.shops.add(shop, now=now)
        except DuplicateKeyError as exc:
            raise ShopAlreadyExists(exc.message, field="code") from exc
        uow.record(ShopRegistered(tenant_id=shop.tenant_id, shop_id=shop.id, code=shop.code, channel=shop.channel,
                                  name=shop.name, occurred_at=now))
        uow.commit()
        return shop


def _kept_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v[:MAX_HEADER_VALUE] for k, v in headers.items()
            if k.startswith(KEPT_HEADER_PREFIXES) and k not in DROPPED_HEADERS}


def receive_channel_message(cmd: ReceiveChannelMessage, uow: SqlAlchemyUnitOfWork, *, specs: SpecRegistry,
                            metrics: Metrics, shops: ShopCache | None = None) -> Received:
    """Verify, key and store one channel message in the inbox (DESIGN.md §2 step 1).

    Nothing is parsed beyond what the dedup key needs; mapping happens in the normalizer.
    A bad signature is counted on the shop and raised (nothing else is stored); an
    unreadable body is stored as ``rejected`` and raised; a message whose key fields are
    missing is stored under a content-derived key so the normalizer dead-letters it with
    the field path.
    """
    try:
        spec = specs.get(cmd.channel)
    except UnknownChannel as exc:
        raise ChannelNotFound(f"no channel named {cmd.channel!r}; known channels: "
                              f"{', '.join(specs.channels())}", field="channel") from exc
    try:
        source = InboxSource(cmd.source)
    except ValueError as exc:
        raise InvalidInput(f"source: unknown message source {cmd.source!r}", field="source") from exc
    headers = {k.lower(): v for k, v in cmd.headers.items()}
    shops = shops or ShopCache(ttl=0)
    with uow:
        shop = shops.get(uow, cmd.channel, cmd.shop_code)
        if shop is None or not shop.active or (cmd.tenant_id is not None and shop.tenant_id != cmd.tenant_id):
            raise ShopNotFound(f"no {cmd.channel} shop with code {cmd.shop_code!r}; register it first "
                               f"(POST /api/v1/shops or `orderhub shops add`)", field="shop_code")
        if cmd.verify:
            try:
                _verify(spec, cmd, headers, shop)
            except SignatureInvalid:
                shop = shops.get(uow, cmd.channel, cmd.shop_code, fresh=True)
                try:
                    if shop is None:
                        raise
                    _verify(spec, cmd, headers, shop)
                except SignatureInvalid:
                    if shop is not None:
                        uow.shops.count_signature_failure(shop)
                        uow.commit()
                    metrics.signature_failures.labels(cmd.channel).inc()
                    raise
            assert shop is not None
        now = uow.clock.now()
        content_hash = hashlib.sha256(cmd.body).hexdigest()
        key = _message_key(spec, cmd.body, headers, content_hash)
        status = InboxStatus.REJECTED if key.rejection is not None else InboxStatus.PENDING
        error, rejection = key.error, key.rejection
        row = InboxRow(tenant_id=shop.tenant_id, message_id=ids.new_id("in"), channel=cmd.channel,
                       shop=shop.code, source=source.value, external_id=key.external_id[:200],
                       event_version=key.version[:100], kind=key.kind, status=status.value,
                       headers=_kept_headers(headers),
                       body=cmd.body, content_hash=content_hash, received_at=now,
                       error_code=error[0] if error else None, error_field=error[1] if error else None,
                       last_error=error[2] if error else None)
        if not uow.inbox.add(row):
            existing = uow.inbox.existing_message_id(row) or row.message_id
            metrics.channel_messages.labels(cmd.channel, source.value, "duplicate").inc()
            return Received("duplicate", existing, shop.tenant_id)
        uow.commit()
    if rejection is not None:
        metrics.channel_messages.labels(cmd.channel, source.value, "rejected").inc()
        raise UnreadableMessage(f"{rejection.message} (kept as inbox message {row.message_id})",
                                field=rejection.field)
    metrics.channel_messages.labels(cmd.channel, source.value, "accepted").inc()
    return Received("accepted", row.message_id, shop.tenant_id)


@dataclass(frozen=True, slots=True)
class _Key:
    external_id: str
    version: str
    kind: str
    error: tuple[str, str | None, str] | None = None
    rejection: UnreadableMessage | None = None


def _message_key(spec: ChannelSpec, body: bytes, headers: dict[str, str], content_hash: str) -> _Key:
    """The dedup key of a message; a content-derived one when the payload can't give it."""
    fallback = f"sha256:{content_hash[:48]}"
    try:
        key = spec.identify(spec.parse_body(body, headers), headers)
    except UnreadableMessage as exc:
        return _Key(fallback, "content", "unknown", (exc.code, exc.field, exc.message), exc)
    except MappingFailed as exc:
        # Kept under a content key; the normalizer maps it again and dead-letters it with the path.
        return _Key(fallback, "content", "unknown", (exc.code, exc.field, exc.message))
    return _Key(key.external_id, key.event_version, key.kind)


def _verify(spec: ChannelSpec, cmd: ReceiveChannelMessage, headers: dict[str, str], shop: Shop) -> None:
    # Shopee signs the full callback URL; behind a proxy the URL we see differs from the one
    # the channel called, so a shop may state its public one (settings.webhook_url).
    url = _str_or_none(shop.settings.get("webhook_url")) or cmd.url or ""
    verify_signature(spec.signature, body=cmd.body, headers=headers, secret=shop.secret, url=url,
                     app_key=_str_or_none(shop.settings.get("app_key")), header=spec.signature_header)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def replay_inbox(cmd: ReplayInbox, uow: SqlAlchemyUnitOfWork) -> int:
    """Send the tenant's dead-lettered (or parked) messages back to the normalizer."""
    states: list[str] = []
    for name in cmd.statuses:
        try:
            state = InboxStatus(name)
        except ValueError as exc:
            raise InvalidInput(f"status: unknown inbox status {name!r}", field="status") from exc
        if state not in REPLAYABLE:
            raise InvalidInput(f"status: only {', '.join(sorted(s.value for s in REPLAYABLE))} messages can be "
                               f"replayed, not {name!r}", field="status")
        inbox_transition(state, InboxStatus.PENDING)  # a replay sends it back to pending
        states.append(state.value)
    with uow:
        uow.act_as(cmd.actor)
        now = uow.clock.now()
        count = uow.inbox.requeue(cmd.actor.tenant_id, tuple(states), channel=cmd.channel, now=now)
        if count:
            uow.record(InboxReplayed(tenant_id=cmd.actor.tenant_id, count=count, states=tuple(states),
                                     channel=cmd.channel, occurred_at=now))
        uow.commit()
        return count


def resume_channel(cmd: ResumeChannel, uow: SqlAlchemyUnitOfWork) -> int:
    """Close the channel's breaker and requeue its parked messages; returns how many."""
    with uow:
        uow.act_as(cmd.actor)
        tenant = cmd.actor.tenant_id
        now = uow.clock.now()
        breaker_transition(uow.channel_state.breaker_state(tenant, cmd.channel), BreakerState.CLOSED)
        uow.channel_state.set_breaker(tenant, cmd.channel, BreakerState.CLOSED, reason=None, now=now,
                                      by=cmd.actor.actor)
        uow.channel_state.resolve_alerts(tenant, f"channel:{cmd.channel}", "channel_breaker_open", now)
        uow.channel_state.reset_conflicts(tenant, cmd.channel, now.date().isoformat())
        inbox_transition(InboxStatus.PARKED, InboxStatus.PENDING)
        count = uow.inbox.requeue(tenant, (InboxStatus.PARKED.value,), channel=cmd.channel, now=now)
        uow.record(ChannelResumed(tenant_id=tenant, channel=cmd.channel, requeued=count, occurred_at=now))
        uow.commit()
        return count

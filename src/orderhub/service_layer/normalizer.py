"""The normalizer (DESIGN.md §2 steps 2–3): claims inbox messages, maps them through their
channel's spec, applies filter rules, and creates or moves the canonical order — the order
change, the message's outcome, audit entries and outbox rows in ONE transaction.

Messages are processed in batches: claimed in a short transaction, mapped outside any
transaction (pure CPU), then applied together in one unit of work so the audit chain head
is locked once per batch. If anything in the batch fails at the database, the batch is
rolled back and its messages are applied one by one, so one bad message can't hold up
the others and never takes them down with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from orderhub.adapters.channels.mapping import SpecRegistry, UnknownChannel
from orderhub.adapters.db import queue
from orderhub.adapters.db.errors import DuplicateKeyError, StaleVersionError
from orderhub.adapters.metrics import Metrics
from orderhub.adapters.rules import OrderFilters, RuleInvalid, compile_order_filters, default_rule_set, order_facts
from orderhub.domain import ids
from orderhub.domain.channels.breaker import BreakerPolicy, BreakerState, breaker_transition
from orderhub.domain.channels.inbox import InboxStatus, inbox_transition
from orderhub.domain.channels.model import Ignored, Mapped, MappedAfterSale, MappedOrder, MappedStatus
from orderhub.domain.errors import DomainError, InvalidTransition, MappingFailed
from orderhub.domain.events import ChannelBreakerOpened
from orderhub.domain.inventory.policy import InventoryPolicy
from orderhub.domain.orders.model import ApplyOutcome, Order, OrderEvent, OrderLine
from orderhub.domain.orders.states import OrderEventType, OrderStatus
from orderhub.domain.time import Clock
from orderhub.service_layer.aftersale import RefundPolicies
from orderhub.service_layer.aftersale_channel import apply_channel_aftersale
from orderhub.service_layer.inventory import (
    OrderState,
    after_order_change,
    publish_touched,
    reserve_for_order,
)
from orderhub.service_layer.inventory_policy import load_policy
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

log = structlog.get_logger(__name__)

LEASE = timedelta(seconds=60)
# A status notification for an order not seen yet waits for the order (webhook or poll)
# with growing delays, then is dead-lettered so an operator sees it.
STATUS_WAIT_ATTEMPTS = 8
STATUS_WAIT_BASE = timedelta(seconds=15)
FULFILMENT_STATUSES = frozenset({OrderStatus.PAID, OrderStatus.READY_TO_SHIP})
FILTER_KIND = "order_filters"


@dataclass
class BatchReport:
    """What one normalizer pass did."""

    claimed: int = 0
    applied: int = 0
    ignored: int = 0
    dead: int = 0
    parked: int = 0
    waiting: int = 0
    held: int = 0
    conflicts: int = 0

    def add(self, other: BatchReport) -> None:
        """Accumulate ``other`` into this report."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Work:
    """One claimed message and what mapping made of it."""

    row: Any
    mapped: Mapped | None = None
    failure: DomainError | None = None
    values: dict[str, Any] = field(default_factory=dict)


class FilterCache:
    """Compiled order-filter rule sets per tenant, recompiled when a new version is stored."""

    def __init__(self) -> None:
        self._compiled: dict[str, OrderFilters] = {}
        self._default: OrderFilters | None = None

    def for_tenant(self, uow: SqlAlchemyUnitOfWork, tenant_id: str) -> OrderFilters:
        """The tenant's current filters (the shipped defaults until it stores its own)."""
        latest = uow.rules.latest(tenant_id, FILTER_KIND)
        if latest is None:
            if self._default is None:
                self._default = compile_order_filters(default_rule_set(FILTER_KIND), version=0)
            return self._default
        version, body = latest
        cached = self._compiled.get(tenant_id)
        if cached is None or cached.version != version:
            try:
                cached = compile_order_filters(body, version=version)
            except RuleInvalid as exc:
                # A stored set that no longer compiles holds every order (with the reason)
                # rather than letting orders through unfiltered or stopping the worker.
                cached = OrderFilters.holding_all(version=version, problem=exc.message)
            self._compiled[tenant_id] = cached
        return cached


class Normalizer:
    """Turns pending inbox messages into canonical orders; safe to run in many processes."""

    def __init__(self, uow_factory: Callable[[], SqlAlchemyUnitOfWork], *, specs: SpecRegistry, clock: Clock,
                 metrics: Metrics, worker_id: str, batch_size: int = 100,
                 policy: BreakerPolicy | None = None, refund_policies: RefundPolicies | None = None) -> None:
        self._uow_factory = uow_factory
        self._refund_policies = refund_policies or RefundPolicies()
        self._specs = specs
        self._clock = clock
        self._metrics = metrics
        self._worker_id = worker_id
        self._batch_size = batch_size
        self._policy = policy or BreakerPolicy()
        self._filters = FilterCache()
        self._zones: dict[tuple[str, str], str | None] = {}
        self._batch_filters: dict[str, OrderFilters] = {}
        self._known: set[str] = set()
        self._batch_policies: dict[str, InventoryPolicy] = {}

    # ------------------------------------------------------------------ driving
    def run_once(self) -> BatchReport:
        """Claim one batch of due messages and process it; an empty report when idle."""
        with self._uow_factory() as uow:
            rows = uow.inbox.claim(worker_id=self._worker_id, now=self._clock.now(), lease=LEASE,
                                   limit=self._batch_size)
            poison = [r for r in rows if r.attempts >= STATUS_WAIT_ATTEMPTS and r.last_error == queue.LEASE_EXPIRED]
            if poison:
                # Taken over that often, the message kills whichever worker holds it: stop trying.
                uow.inbox.finish_many([(r.id, {
                    "status": _leaving(InboxStatus.DEAD), "error_code": "processing_failed", "outcome": "dead",
                    "processed_at": self._clock.now(),
                    "last_error": f"{r.attempts} workers stopped while processing this message; it is kept "
                                  "for inspection (orderhub inbox list --status dead)"}) for r in poison],
                    worker_id=self._worker_id)
                rows = [r for r in rows if r not in poison]
            for row in rows:
                if (row.channel, row.shop) not in self._zones:
                    shop = uow.shops.by_code(row.channel, row.shop)
                    self._zones[(row.channel, row.shop)] = shop.timezone if shop else None
            uow.commit()
        if not rows:
            return BatchReport(claimed=len(poison), dead=len(poison))
        work = [self._map(row) for row in rows]
        try:
            report = self._apply(work)
        except Exception:
            log.warning("normalizer_batch_failed_retrying_singly", size=len(work), exc_info=True)
            report = BatchReport()
            for item in work:
                try:
                    report.add(self._apply([self._map(item.row)]))
                except Exception as exc:  # one message's database failure stays with that message
                    log.exception("normalizer_message_failed", message_id=item.row.message_id)
                    self._fail_unexpected(item.row, exc)
        report.claimed = len(rows) + len(poison)
        report.dead += len(poison)
        return report

    def drain(self, *, max_batches: int = 1_000_000) -> BatchReport:
        """Process until no message is due (imports and tests use this)."""
        total = BatchReport()
        for _ in range(max_batches):
            report = self.run_once()
            if not report.claimed:
                break
            total.add(report)
        return total

    # ------------------------------------------------------------------ mapping (no I/O)
    def _map(self, row: Any) -> _Work:
        item = _Work(row=row)
        try:
            spec = self._specs.get(row.channel)
            headers = dict(row.headers or {})
            payload = spec.parse_body(bytes(row.body), headers)
            item.mapped = spec.map(payload, headers, timezone=self._shop_zone(row))
        except UnknownChannel as exc:
            item.failure = MappingFailed(f"no mapping spec for channel {row.channel!r}", field="channel")
            item.failure.__cause__ = exc
        except DomainError as exc:
            item.failure = exc
        return item

    def _shop_zone(self, row: Any) -> str | None:
        # Cached for the worker's life: a shop's zone is set at registration.
        return self._zones.get((row.channel, row.shop))

    # ------------------------------------------------------------------ applying (one transaction)
    def _apply(self, work: list[_Work]) -> BatchReport:
        report = BatchReport()
        with self._uow_factory() as uow:
            now = uow.clock.now()
            open_channels: dict[str, set[str]] = {}
            self._batch_filters = {}
            self._batch_policies = {}
            self._known = self._existing_orders(uow, work)
            self._lock_batch_stock(uow, work)
            for item in work:
                row = item.row
                tenant = row.tenant_id
                if tenant not in open_channels:
                    open_channels[tenant] = uow.channel_state.open_channels(tenant)
                if item.failure is not None:
                    self._dead(item, item.failure, now, report)
                elif row.channel in open_channels[tenant]:
                    item.values = {"status": _leaving(InboxStatus.PARKED), "processed_at": now,
                                   "last_error": f"channel {row.channel} is parked by its circuit breaker; "
                                                 f"resume it with `orderhub channels resume {row.channel}`"}
                    report.parked += 1
                elif isinstance(item.mapped, Ignored):
                    item.values = {"status": _leaving(InboxStatus.IGNORED), "processed_at": now,
                                   "outcome": "ignored", "last_error": item.mapped.reason}
                    report.ignored += 1
                elif isinstance(item.mapped, MappedOrder | MappedStatus):
                    try:
                        self._apply_one(uow, item, item.mapped, now=now, report=report,
                                        open_channels=open_channels[tenant])
                    except MappingFailed as exc:
                        self._dead(item, exc, now, report)
                    except (InvalidTransition, DuplicateKeyError, StaleVersionError):
                        raise
                    except DomainError as exc:  # the order itself is invalid (e.g. discount > total)
                        self._dead(item, exc, now, report)
                elif isinstance(item.mapped, MappedAfterSale):
                    try:
                        self._apply_aftersale(uow, item, item.mapped, now=now, report=report)
                    except (InvalidTransition, DuplicateKeyError, StaleVersionError):
                        raise
                    except DomainError as exc:  # asks more than is left, a line not on the order…
                        self._dead(item, exc, now, report)
            publish_touched(uow)
            written = uow.inbox.finish_many([(item.row.id, item.values) for item in work], worker_id=self._worker_id)
            if written != len(work):
                # Another worker took some messages over (our lease ran out): theirs is the outcome.
                log.warning("normalizer_lease_lost", lost=len(work) - written)
            uow.commit()
        for item in work:
            self._metrics.channel_processed.labels(item.row.channel, item.values.get("status", "?")).inc()
        return report

    @staticmethod
    def _existing_orders(uow: SqlAlchemyUnitOfWork, work: list[_Work]) -> set[str]:
        """The batch's orders that already exist, found with one query per tenant, so a new
        order costs no lookup of its own."""
        wanted: dict[str, list[str]] = {}
        for item in work:
            order_id = _order_id_of(item)
            if order_id is not None:
                wanted.setdefault(item.row.tenant_id, []).append(order_id)
        known: set[str] = set()
        for tenant_id, order_ids in wanted.items():
            known |= uow.orders.existing_ids(tenant_id, order_ids)
        return known

    def _lock_batch_stock(self, uow: SqlAlchemyUnitOfWork, work: list[_Work]) -> None:
        """Lock every stock row the batch may touch, up front and in primary-key order: the
        SKUs of its orders and the rows its existing orders hold. Locking them order by order
        instead would take rows in batch order, and two batches could then deadlock."""
        skus: dict[str, set[str]] = {}
        existing: dict[str, list[str]] = {}
        for item in work:
            row, mapped = item.row, item.mapped
            if isinstance(mapped, MappedOrder):
                skus.setdefault(row.tenant_id, set()).update(ln.sku for ln in mapped.lines)
            order_id = _order_id_of(item)
            if order_id is not None and order_id in self._known:
                existing.setdefault(row.tenant_id, []).append(order_id)
        for tenant_id in sorted(set(skus) | set(existing)):
            if not uow.inventory.warehouses(tenant_id):
                continue  # the tenant doesn't track stock
            known = existing.get(tenant_id, [])
            # Existing orders may give stock back (their reservations' rows) or reserve again
            # (their lines' SKUs, e.g. paid after an expiry).
            keys = uow.inventory.active_keys(tenant_id, known)
            wanted = skus.get(tenant_id, set()) | uow.orders.skus_of(tenant_id, known)
            uow.inventory.lock_stock(tenant_id, skus=wanted, keys=keys)

    def _inventory_policy(self, uow: SqlAlchemyUnitOfWork, tenant_id: str) -> InventoryPolicy:
        policy = self._batch_policies.get(tenant_id)
        if policy is None:  # read once per tenant and batch
            policy = self._batch_policies[tenant_id] = load_policy(uow, tenant_id)
        return policy

    def _dead(self, item: _Work, exc: DomainError, now: datetime, report: BatchReport) -> None:
        field_path = exc.field or "?"
        item.values = {"status": _leaving(InboxStatus.DEAD), "processed_at": now, "error_code": exc.code,
                       "error_field": field_path[:200], "last_error": exc.message, "outcome": "dead",
                       "attempts": item.row.attempts + 1}
        self._metrics.mapping_failures.labels(item.row.channel, field_path[:100]).inc()
        report.dead += 1

    def _apply_one(self, uow: SqlAlchemyUnitOfWork, item: _Work, mapped: MappedOrder | MappedStatus, *,
                   now: datetime, report: BatchReport, open_channels: set[str]) -> None:
        row = item.row
        order_id = ids.order_id(row.tenant_id, row.channel, row.shop, mapped.external_id)
        order = uow.orders.get(row.tenant_id, order_id) if order_id in self._known or order_id in uow.orders.seen \
            else None
        if order is None and isinstance(mapped, MappedStatus):
            self._wait_for_order(item, mapped.external_id, f"status {mapped.channel_status!r}", "external_id",
                                 now=now, report=report)
            return
        if order is None:
            assert isinstance(mapped, MappedOrder)
            order = self._create(uow, row, mapped, now, report)
            outcome = ApplyOutcome.APPLIED
        else:
            loaded = order.version
            was_unpaid = order.status is OrderStatus.PENDING_PAYMENT
            before = OrderState.of(order)
            try:
                outcome = order.follow_channel(mapped.status, channel_status=mapped.channel_status,
                                               key=row.message_id, occurred_at=self._when(mapped, now), now=now)
            except InvalidTransition as exc:
                outcome = None
                self._conflict(uow, row, order, now, open_channels)
                report.conflicts += 1
                item.values = {"status": _leaving(InboxStatus.APPLIED), "processed_at": now, "order_id": order.id,
                               "outcome": "conflict", "last_error": exc.message}
                return
            if outcome is ApplyOutcome.IGNORED_STALE:
                self._conflict(uow, row, order, now, open_channels)
                report.conflicts += 1
            if outcome is ApplyOutcome.APPLIED:
                after_order_change(uow, order, before, now=now)
            if (was_unpaid and order.status in FULFILMENT_STATUSES and isinstance(mapped, MappedOrder)):
                self._filter(uow, row, order, mapped, now=now, report=report)
            if order.version != loaded:
                uow.orders.save(order, loaded_version=loaded)
        item.values = {"status": _leaving(InboxStatus.APPLIED), "processed_at": now, "order_id": order.id,
                       "outcome": outcome.value if outcome else "applied"}
        report.applied += 1

    def _apply_aftersale(self, uow: SqlAlchemyUnitOfWork, item: _Work, mapped: MappedAfterSale, *, now: datetime,
                         report: BatchReport) -> None:
        """A channel after-sale notification: applied to its case; one for an order that
        hasn't arrived yet waits for it like a status notification does."""
        row = item.row
        order_id = ids.order_id(row.tenant_id, row.channel, row.shop, mapped.order_external_id)
        order = uow.orders.get(row.tenant_id, order_id) if order_id in self._known or order_id in uow.orders.seen \
            else None
        if order is None:
            self._wait_for_order(item, mapped.order_external_id, f"after-sale case {mapped.external_ref!r}",
                                 "order_external_id", now=now, report=report)
            return
        loaded = order.version
        result = apply_channel_aftersale(uow, order, mapped, policies=self._refund_policies, now=now)
        if order.version != loaded:
            uow.orders.save(order, loaded_version=loaded)
        item.values = {"status": _leaving(InboxStatus.APPLIED), "processed_at": now, "order_id": order.id,
                       "outcome": f"aftersale_{result.outcome}"}
        report.applied += 1

    def _wait_for_order(self, item: _Work, external_id: str, what: str, field: str, *, now: datetime,
                        report: BatchReport) -> None:
        """A notification about an order that hasn't arrived: wait for the order (webhook or
        poll) with growing delays, then dead-letter it so an operator sees it."""
        attempts = item.row.attempts + 1
        if attempts >= STATUS_WAIT_ATTEMPTS:
            self._dead(item, MappingFailed(f"{what} is for order {external_id!r}, which never arrived; poll or "
                                           "backfill the shop, then replay", field=field), now, report)
            item.values["error_code"] = "order_unknown"
            return
        item.values = {"status": _leaving(InboxStatus.PENDING), "attempts": attempts,
                       "next_attempt_at": now + STATUS_WAIT_BASE * (2 ** (attempts - 1)),
                       "last_error": f"waiting for order {external_id!r} to arrive"}
        report.waiting += 1

    @staticmethod
    def _when(mapped: MappedOrder | MappedStatus, now: datetime) -> datetime:
        # The channel's own update time orders events; clamp clocks running ahead of ours.
        when = mapped.updated_at or now
        return min(when, now)

    def _create(self, uow: SqlAlchemyUnitOfWork, row: Any, mapped: MappedOrder, now: datetime,
                report: BatchReport) -> Order:
        lines = [OrderLine.build(i + 1, sku=ln.sku, title=ln.title, quantity=ln.quantity, unit_price=ln.unit_price,
                                 discount=ln.discount, tax=ln.tax, currency=mapped.currency)
                 for i, ln in enumerate(mapped.lines)]
        # An order the channel reports held (JD LOCKED, paused…) is stored as paid and held here,
        # so the hold has OrderHub's reason and a release has somewhere to return to.
        held_by_channel = mapped.status is OrderStatus.ON_HOLD
        status = OrderStatus.PAID if held_by_channel else mapped.status
        order = Order.create(
            tenant_id=row.tenant_id, channel=row.channel, shop=row.shop, external_id=mapped.external_id,
            currency=mapped.currency, status=status, lines=lines, shipping_fee=mapped.shipping_fee,
            discount=mapped.discount, buyer=mapped.buyer, shipping_address=mapped.shipping_address,
            tags=mapped.tags, placed_at=min(mapped.placed_at, now), paid_at=_paid_at(mapped, now), now=now,
            channel_status=mapped.channel_status, raw_ref=row.message_id)
        # Stock first (the rows are already locked for the batch), then the holds: an order held
        # for review keeps its stock.
        reserve_for_order(uow, order, policy=self._inventory_policy(uow, row.tenant_id), now=now)
        if held_by_channel:
            order.apply(OrderEvent(type=OrderEventType.HOLD, occurred_at=now, key=f"{row.message_id}:channel_hold",
                                   reason=f"the channel reports the order held ({mapped.channel_status})"[:500]),
                        now=now)
        elif mapped.status in FULFILMENT_STATUSES and order.status is not OrderStatus.ON_HOLD:
            self._filter(uow, row, order, mapped, now=now, report=report)
        uow.orders.stage(order)
        return order

    def _filter(self, uow: SqlAlchemyUnitOfWork, row: Any, order: Order, mapped: MappedOrder, *, now: datetime,
                report: BatchReport) -> None:
        filters = self._batch_filters.get(row.tenant_id)
        if filters is None:  # read once per tenant and batch
            filters = self._batch_filters[row.tenant_id] = self._filters.for_tenant(uow, row.tenant_id)
        decision = filters.decide(order_facts(mapped, channel=row.channel, shop=row.shop))
        if decision.tags:
            order.tags = tuple(dict.fromkeys((*order.tags, *decision.tags)))
        if decision.held:
            reason = f"filter rule {decision.rule!r} (order_filters v{filters.version}): {decision.reason}"
            order.apply(OrderEvent(type=OrderEventType.HOLD, occurred_at=now, key=f"{row.message_id}:filter",
                                   reason=reason[:500]), now=now)
            report.held += 1

    def _conflict(self, uow: SqlAlchemyUnitOfWork, row: Any, order: Order, now: datetime,
                  open_channels: set[str]) -> None:
        tenant, channel = row.tenant_id, row.channel
        today = uow.channel_state.add_conflict(tenant, channel, now.date().isoformat())
        if channel in open_channels:
            return
        reason = self._policy.trip_reason(channel=channel, conflicts_today=today, order_id=order.id,
                                          order_conflicts=order.conflict_count)
        if reason is None:
            return
        state = breaker_transition(uow.channel_state.breaker_state(tenant, channel), BreakerState.OPEN)
        uow.channel_state.set_breaker(tenant, channel, state, reason=reason, now=now)
        uow.channel_state.add_alert(
            tenant_id=tenant, alert_id=ids.new_id("alr"), kind="channel_breaker_open", severity="critical",
            subject=f"channel:{channel}", now=now,
            message=f"{channel} messages are parked: {reason}. Check the channel, then run "
                    f"`orderhub channels resume {channel}`.",
            details={"channel": channel, "conflicts_today": today, "order_id": order.id})
        uow.record(ChannelBreakerOpened(tenant_id=tenant, channel=channel, reason=reason, occurred_at=now))
        open_channels.add(channel)
        log.warning("channel_breaker_opened", tenant=tenant, channel=channel, reason=reason)

    def _fail_unexpected(self, row: Any, exc: Exception) -> None:
        with self._uow_factory() as uow:
            now = uow.clock.now()
            attempts = row.attempts + 1
            values: dict[str, Any] = {"attempts": attempts, "last_error": f"{type(exc).__name__}: {exc}"[:2000]}
            if attempts >= STATUS_WAIT_ATTEMPTS:
                values |= {"status": _leaving(InboxStatus.DEAD), "error_code": "processing_failed",
                           "processed_at": now, "outcome": "dead"}
            else:
                values |= {"status": _leaving(InboxStatus.PENDING),
                           "next_attempt_at": now + STATUS_WAIT_BASE * (2 ** (attempts - 1))}
            uow.inbox.finish(row.id, worker_id=self._worker_id, values=values)
            uow.commit()


def _order_id_of(item: _Work) -> str | None:
    """The OrderHub id of the order a mapped message is about (None: not about an order)."""
    row, mapped = item.row, item.mapped
    if isinstance(mapped, MappedOrder | MappedStatus):
        return ids.order_id(row.tenant_id, row.channel, row.shop, mapped.external_id)
    if isinstance(mapped, MappedAfterSale):
        return ids.order_id(row.tenant_id, row.channel, row.shop, mapped.order_external_id)
    return None


def _leaving(target: InboxStatus) -> str:
    """The state a claimed (in-progress) message moves to, checked against the inbox's table."""
    return inbox_transition(InboxStatus.IN_PROGRESS, target).value


def _paid_at(mapped: MappedOrder, now: datetime) -> datetime | None:
    if mapped.status in (OrderStatus.CANCELLED, OrderStatus.ON_HOLD) and mapped.paid_at is None:
        return None
    if mapped.status is OrderStatus.PENDING_PAYMENT:
        return None
    paid = mapped.paid_at or mapped.placed_at
    return min(max(paid, mapped.placed_at), now)


def describe(report: BatchReport) -> str:
    """One line for logs and the CLI."""
    return json.dumps(report.__dict__, sort_keys=True)

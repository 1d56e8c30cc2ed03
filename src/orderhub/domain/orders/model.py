"""The Order aggregate: canonical order, its lines, buyer and address, and how order
events change it.

Everything here is pure: no I/O, no clock (times are parameters), no framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from orderhub.domain import ids
from orderhub.domain.errors import (
    EventKeyReused,
    InvalidEventKey,
    InvalidOrder,
    InvalidTime,
    InvalidTransition,
    VersionMismatch,
)
from orderhub.domain.events import Event, OrderCreated, OrderEventApplied, OrderEventIgnoredStale
from orderhub.domain.money import MAX_MINOR_UNITS, Money
from orderhub.domain.orders.states import (
    CONTROL_EVENTS,
    HOLDABLE,
    PROGRESS_RANK,
    PROGRESS_TARGET,
    OrderEventType,
    OrderStatus,
    PaymentStatus,
    is_backwards,
    transition,
)
from orderhub.domain.time import ensure_utc

MAX_QUANTITY = 1_000_000
MAX_LINES = 500
MAX_EVENT_KEY = 150
# How far an event's own clock may run ahead of ours, or behind the order's placement.
CLOCK_SKEW = timedelta(minutes=10)
# Applied keys are remembered together with the event type they were used for, joined by
# the ASCII unit separator (keys may not contain control characters).
_KEY_SEPARATOR = "\x1f"


def _check_event_key(key: str) -> None:
    if not key.strip() or len(key) > MAX_EVENT_KEY or any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise InvalidEventKey(f"key: event keys are 1–{MAX_EVENT_KEY} printable characters, got {key[:40]!r}",
                              field="key")


@dataclass(frozen=True, slots=True)
class Buyer:
    """Who bought. Phone and e-mail are kept exactly as the channel gave them (often masked)."""

    name: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Address:
    """A shipping address; Chinese addresses use province / city / district."""

    country: str
    province: str | None = None
    city: str | None = None
    district: str | None = None
    detail: str | None = None
    postcode: str | None = None
    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line of an order: ``quantity`` × ``unit_price`` of ``sku``, less ``discount``, plus ``tax``."""

    line_no: int
    sku: str
    title: str | None
    quantity: int
    unit_price: Money
    discount: Money
    tax: Money

    @property
    def gross(self) -> Money:
        """quantity × unit price, before discount and tax."""
        return self.unit_price * self.quantity

    @property
    def total(self) -> Money:
        """What the buyer pays for this line."""
        return self.gross - self.discount + self.tax

    @staticmethod
    def build(line_no: int, *, sku: str, title: str | None, quantity: int, unit_price: Money,
              discount: Money, tax: Money, currency: str) -> OrderLine:
        """Validate and build a line; ``line_no`` is 1-based and names the line in errors."""
        where = f"lines[{line_no - 1}]"
        if not isinstance(sku, str) or not sku.strip():
            raise InvalidOrder(f"{where}.sku: every line needs a SKU", field=f"{where}.sku")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
            raise InvalidOrder(f"{where}.quantity: must be a whole number above zero, got {quantity!r}",
                               field=f"{where}.quantity")
        if quantity > MAX_QUANTITY:
            raise InvalidOrder(f"{where}.quantity: {quantity} is above the limit of {MAX_QUANTITY}",
                               field=f"{where}.quantity")
        for name, money in (("unit_price", unit_price), ("discount", discount), ("tax", tax)):
            if money.currency != currency:
                raise InvalidOrder(f"{where}.{name}: currency {money.currency} differs from the order's {currency}",
                                   field=f"{where}.{name}")
            if money.is_negative:
                raise InvalidOrder(f"{where}.{name}: must not be negative", field=f"{where}.{name}")
        line = OrderLine(line_no, sku.strip(), title, quantity, unit_price, discount, tax)
        if line.gross.amount + tax.amount > MAX_MINOR_UNITS:
            raise InvalidOrder(f"{where}.quantity: {quantity} × {unit_price.to_decimal_string()} is too large to "
                               "store", field=f"{where}.quantity")
        if line.gross < discount:
            raise InvalidOrder(f"{where}.discount: {discount.to_decimal_string()} is more than the line's "
                               f"{line.gross.to_decimal_string()}", field=f"{where}.discount")
        return line


class ApplyOutcome(StrEnum):
    """What applying an order event did."""

    APPLIED = "applied"            # the order changed
    DUPLICATE = "duplicate"        # this event key was applied before: nothing changed
    UNCHANGED = "unchanged"        # the order already was where the event points
    IGNORED_STALE = "ignored_stale"  # the order had moved past it: recorded as a conflict


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """A request to change an order: what happened, when, and an optional dedup ``key``."""

    type: OrderEventType
    occurred_at: datetime
    key: str | None = None
    reason: str | None = None
    expected_version: int | None = None


@dataclass(eq=False)
class Order:
    """The canonical order aggregate (DESIGN.md §3)."""

    id: str
    tenant_id: str
    channel: str
    shop: str
    external_id: str
    currency: str
    status: OrderStatus
    payment_status: PaymentStatus
    lines: list[OrderLine]
    shipping_fee: Money
    discount: Money
    buyer: Buyer
    shipping_address: Address | None
    tags: tuple[str, ...]
    channel_status: str | None
    placed_at: datetime
    paid_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None
    completed_at: datetime | None
    status_changed_at: datetime
    created_at: datetime
    updated_at: datetime
    version: int = 1
    held_from: OrderStatus | None = None
    hold_reason: str | None = None
    cancel_reason: str | None = None
    conflict_count: int = 0
    raw_ref: str | None = None
    applied_event_keys: set[str] = field(default_factory=set)
    # Keys applied in this unit of work, for the repository to persist.
    new_event_keys: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, *, tenant_id: str, channel: str, shop: str, external_id: str, currency: str,
               status: OrderStatus, lines: list[OrderLine], shipping_fee: Money, discount: Money,
               buyer: Buyer, shipping_address: Address | None, tags: tuple[str, ...],
               placed_at: datetime, paid_at: datetime | None, now: datetime,
               channel_status: str | None = None, raw_ref: str | None = None) -> Order:
        """Validate a new order and record an :class:`OrderCreated` event."""
        for name, value in (("channel", channel), ("shop", shop), ("external_id", external_id)):
            if not isinstance(value, str) or not value.strip():
                raise InvalidOrder(f"{name}: must be a non-empty string", field=name)
        if status is OrderStatus.ON_HOLD:
            raise InvalidOrder("status: an order can't be created on hold; create it and send a 'hold' event "
                               "with a reason", field="status")
        if not lines:
            raise InvalidOrder("lines: an order needs at least one line", field="lines")
        if len(lines) > MAX_LINES:
            raise InvalidOrder(f"lines: at most {MAX_LINES} lines per order", field="lines")
        for name, money in (("shipping_fee", shipping_fee), ("discount", discount)):
            if money.currency != currency:
                raise InvalidOrder(f"{name}: currency {money.currency} differs from the order's {currency}", field=name)
            if money.is_negative:
                raise InvalidOrder(f"{name}: must not be negative", field=name)
        placed = ensure_utc(placed_at, field="placed_at")
        paid = ensure_utc(paid_at, field="paid_at") if paid_at is not None else None
        now = ensure_utc(now, field="now")
        if placed > now + CLOCK_SKEW:
            raise InvalidOrder(f"placed_at: {placed.isoformat()} is in the future", field="placed_at")
        if paid is not None and status is OrderStatus.PENDING_PAYMENT:
            raise InvalidOrder("paid_at: an order pending payment has no payment time; send status 'paid' "
                               "or leave paid_at out", field="paid_at")
        if paid is not None and not placed - CLOCK_SKEW <= paid <= now + CLOCK_SKEW:
            raise InvalidOrder(f"paid_at: {paid.isoformat()} is before placed_at or in the future", field="paid_at")
        paid_statuses = {OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED}
        payment = PaymentStatus.UNPAID if status in paid_statuses and paid is None else PaymentStatus.PAID
        if payment is PaymentStatus.PAID and paid is None:
            paid = placed
        # An order that arrives already further along gets the stamps of the steps it skipped
        # (when OrderHub learnt of them: the channel didn't say).
        rank = PROGRESS_RANK.get(status, 0)
        shipped = now if rank >= PROGRESS_RANK[OrderStatus.PARTIALLY_SHIPPED] else None
        delivered = now if rank >= PROGRESS_RANK[OrderStatus.DELIVERED] else None
        completed = now if status is OrderStatus.COMPLETED else None
        order = cls(
            id=ids.order_id(tenant_id, channel, shop, external_id), tenant_id=tenant_id,
            channel=channel, shop=shop, external_id=external_id, currency=currency, status=status,
            payment_status=payment, lines=list(lines), shipping_fee=shipping_fee, discount=discount,
            buyer=buyer, shipping_address=shipping_address, tags=tuple(dict.fromkeys(tags)),
            channel_status=channel_status, placed_at=placed, paid_at=paid, shipped_at=shipped,
            delivered_at=delivered, cancelled_at=now if status is OrderStatus.CANCELLED else None,
            completed_at=completed, status_changed_at=now, created_at=now, updated_at=now, raw_ref=raw_ref,
        )
        if order.subtotal.amount + shipping_fee.amount > MAX_MINOR_UNITS:
            raise InvalidOrder("lines: the order total is too large to store", field="lines")
        if order.subtotal + shipping_fee < discount:
            raise InvalidOrder("discount: the order discount is larger than the lines and shipping together",
                               field="discount")
        order.events.append(OrderCreated(
            tenant_id=tenant_id, order_id=order.id, channel=channel, shop=shop, external_id=external_id,
            status=status.value, total_minor=order.total.amount, currency=currency, occurred_at=now,
            snapshot=order.snapshot(),
        ))
        return order

    @property
    def buyer_key(self) -> str:
        """Who the buyer is across this channel's orders: ``<channel>:<email | phone | name>``,
        the first given (channels mask them alike for one buyer); the order itself when none
        is. The after-sale policy reads a buyer's history by it."""
        ident = self.buyer.email or self.buyer.phone or self.buyer.name or f"order:{self.id}"
        return f"{self.channel}:{ident}"[:300]

    # ------------------------------------------------------------------ money
    @property
    def subtotal(self) -> Money:
        """Sum of line totals (after line discounts, with line tax)."""
        total = Money.zero(self.currency)
        for line in self.lines:
            total = total + line.total
        return total

    @property
    def total(self) -> Money:
        """What the buyer pays: lines + shipping − order discount."""
        return self.subtotal + self.shipping_fee - self.discount

    # ------------------------------------------------------------------ events
    def apply(self, event: OrderEvent, *, now: datetime) -> ApplyOutcome:
        """Apply an order event; the only way an order's status changes after creation.

        Idempotent: an event whose ``key`` was applied before changes nothing. A progress
        event that would move the order backwards is recorded as ignored-stale and counted
        as a conflict. A transition the table forbids raises InvalidTransition and leaves
        the order untouched.
        """
        now = ensure_utc(now, field="now")
        occurred_at = ensure_utc(event.occurred_at, field="occurred_at")
        token = None
        if event.key is not None:
            _check_event_key(event.key)
            token = f"{event.key}{_KEY_SEPARATOR}{event.type.value}"
            if token in self.applied_event_keys:
                return ApplyOutcome.DUPLICATE
            used_for = [k.rpartition(_KEY_SEPARATOR)[2] for k in self.applied_event_keys
                        if k.rpartition(_KEY_SEPARATOR)[0] == event.key]
            if used_for:
                raise EventKeyReused(f"key {event.key!r} was already used for a {used_for[0]!r} event on order "
                                     f"{self.id}; use a new key for a new event", field="key")
        if occurred_at > now + CLOCK_SKEW or occurred_at < self.placed_at - CLOCK_SKEW:
            raise InvalidTime(f"occurred_at: {occurred_at.isoformat()} is outside the order's life (placed "
                              f"{self.placed_at.isoformat()}, now {now.isoformat()})", field="occurred_at")
        if event.expected_version is not None and event.expected_version != self.version:
            raise VersionMismatch(
                f"order {self.id} is at version {self.version}, not {event.expected_version}; "
                "reload it and retry", field="expected_version")

        if event.type in CONTROL_EVENTS:
            outcome = self._apply_control(event, occurred_at)
        else:
            outcome = self._apply_progress(event, occurred_at)

        if token is not None:
            self.applied_event_keys.add(token)
            self.new_event_keys.append(token)
        if outcome in (ApplyOutcome.APPLIED, ApplyOutcome.IGNORED_STALE):
            self.version += 1
            self.updated_at = now
        return outcome

    def _move(self, target: OrderStatus, event: OrderEvent, occurred_at: datetime) -> ApplyOutcome:
        before = self.status
        self.status = transition(before, target)
        if before is OrderStatus.ON_HOLD:
            # Leaving the hold (release or cancel): nothing is held any more.
            self.held_from = None
            self.hold_reason = None
        self.status_changed_at = occurred_at
        self._stamp(target, occurred_at, event.reason)
        self._record_applied(event, before, occurred_at)
        return ApplyOutcome.APPLIED

    def _record_applied(self, event: OrderEvent, before: OrderStatus, occurred_at: datetime) -> None:
        self.events.append(OrderEventApplied(
            tenant_id=self.tenant_id, order_id=self.id, event_type=event.type.value,
            from_status=before.value, to_status=self.status.value, reason=event.reason,
            event_key=event.key, occurred_at=occurred_at, version=self.version + 1,
        ))

    def _stamp(self, target: OrderStatus, at: datetime, reason: str | None) -> None:
        if target is OrderStatus.PAID or (target in (OrderStatus.READY_TO_SHIP, OrderStatus.SHIPPED,
                                                     OrderStatus.PARTIALLY_SHIPPED)
                                          and self.payment_status is PaymentStatus.UNPAID):
            self.payment_status = PaymentStatus.PAID
            self.paid_at = self.paid_at or at
        if target in (OrderStatus.SHIPPED, OrderStatus.PARTIALLY_SHIPPED):
            self.shipped_at = self.shipped_at or at
        elif target is OrderStatus.DELIVERED:
            self.delivered_at = at
        elif target is OrderStatus.COMPLETED:
            self.completed_at = at
        elif target is OrderStatus.CANCELLED:
            self.cancelled_at = at
            self.cancel_reason = reason

    def _apply_control(self, event: OrderEvent, occurred_at: datetime) -> ApplyOutcome:
        if event.type is OrderEventType.HOLD:
            if self.status is OrderStatus.ON_HOLD:
                return ApplyOutcome.UNCHANGED
            if self.status not in HOLDABLE:
                transition(self.status, OrderStatus.ON_HOLD)  # raises with the allowed targets
            held_from = self.status
            outcome = self._move(OrderStatus.ON_HOLD, event, occurred_at)
            self.held_from = held_from
            self.hold_reason = event.reason or "manual"
            return outcome
        if event.type is OrderEventType.RELEASE:
            if self.status is not OrderStatus.ON_HOLD or self.held_from is None:
                raise InvalidTransition(f"order {self.id} is {self.status.value!r}, not on hold; nothing to release",
                                        field="type")
            return self._move(self.held_from, event, occurred_at)
        # cancel
        if self.status is OrderStatus.CANCELLED:
            return ApplyOutcome.UNCHANGED
        return self._move(OrderStatus.CANCELLED, event, occurred_at)

    def _apply_progress(self, event: OrderEvent, occurred_at: datetime) -> ApplyOutcome:
        target = PROGRESS_TARGET[event.type]
        if target is self.status:
            return ApplyOutcome.UNCHANGED
        if self.status is OrderStatus.ON_HOLD and event.type is OrderEventType.MARK_PAID:
            # Payment arriving for a held order is recorded; the hold stays until released.
            if self.payment_status is PaymentStatus.PAID:
                return ApplyOutcome.UNCHANGED
            self.payment_status = PaymentStatus.PAID
            self.paid_at = occurred_at
            if self.held_from is OrderStatus.PENDING_PAYMENT:
                self.held_from = OrderStatus.PAID
            self._record_applied(event, self.status, occurred_at)
            return ApplyOutcome.APPLIED
        if self.status is OrderStatus.ON_HOLD:
            # Only 'release' (or 'cancel') ends a hold: a channel event can't move a held order on.
            if target is self.held_from:
                return ApplyOutcome.UNCHANGED
            raise InvalidTransition(
                f"order {self.id} is on hold ({self.hold_reason}); release it before applying "
                f"{event.type.value!r}", field="type")
        stale = is_backwards(self.status, target)
        if stale and self.status is OrderStatus.CANCELLED and occurred_at > self.status_changed_at:
            stale = False  # happened after the cancel: a real conflict the caller must resolve
        if stale:
            self.conflict_count += 1
            self.events.append(OrderEventIgnoredStale(
                tenant_id=self.tenant_id, order_id=self.id, channel=self.channel,
                event_type=event.type.value, current_status=self.status.value,
                requested_status=target.value, event_key=event.key, occurred_at=occurred_at,
                conflict_count=self.conflict_count,
            ))
            return ApplyOutcome.IGNORED_STALE
        return self._move(target, event, occurred_at)

    def follow_channel(self, target: OrderStatus, *, channel_status: str | None, key: str, occurred_at: datetime,
                       now: datetime) -> ApplyOutcome:
        """Bring the order to the status its channel now reports, through the state table.

        A channel may skip steps OrderHub tracks (a pending order reported as shipped): the
        skipped progress events are applied in order, each under its own key derived from
        ``key`` so a replay of the same message is a duplicate. A report that would move the
        order backwards (status jumping) is ignored-stale and counted as a conflict; one the
        table refuses (a shipped order reported cancelled) raises InvalidTransition.
        """
        steps = self._channel_steps(target)
        if not steps:
            if target is OrderStatus.PENDING_PAYMENT and is_backwards(self.status, target):
                return self._ignore_stale_pending(key, ensure_utc(occurred_at, field="occurred_at"),
                                                  ensure_utc(now, field="now"))
            return ApplyOutcome.UNCHANGED
        outcomes = [self.apply(OrderEvent(type=step, occurred_at=occurred_at, key=f"{key}:{step.value}",
                                          reason=f"channel status {channel_status}" if channel_status else None),
                               now=now) for step in steps]
        if ApplyOutcome.APPLIED in outcomes:
            if channel_status is not None:
                self.channel_status = channel_status
            return ApplyOutcome.APPLIED
        for outcome in (ApplyOutcome.IGNORED_STALE, ApplyOutcome.UNCHANGED):
            if outcome in outcomes:
                return outcome
        return ApplyOutcome.DUPLICATE

    def _channel_steps(self, target: OrderStatus) -> list[OrderEventType]:
        """The order events that take this order to ``target`` (empty: nothing to do)."""
        if target is self.status or target is OrderStatus.PENDING_PAYMENT:
            return []
        if target is OrderStatus.CANCELLED:
            return [OrderEventType.CANCEL]
        if target is OrderStatus.ON_HOLD:
            return [OrderEventType.HOLD]
        final = next(e for e, t in PROGRESS_TARGET.items() if t is target)
        current = self.status
        if current is OrderStatus.ON_HOLD or is_backwards(current, target):
            return [final]  # the state machine decides: unchanged, stale or refused
        steps: list[OrderEventType] = []
        if current is OrderStatus.PENDING_PAYMENT and target is not OrderStatus.PAID:
            steps.append(OrderEventType.MARK_PAID)
            current = OrderStatus.PAID
        if target in (OrderStatus.DELIVERED, OrderStatus.COMPLETED) and current in (OrderStatus.PAID,
                                                                                      OrderStatus.READY_TO_SHIP):
            steps.append(OrderEventType.SHIP)
            current = OrderStatus.SHIPPED
        if target is OrderStatus.COMPLETED and current in (OrderStatus.SHIPPED, OrderStatus.PARTIALLY_SHIPPED):
            steps.append(OrderEventType.DELIVER)
        steps.append(final)
        return steps

    def _ignore_stale_pending(self, key: str, occurred_at: datetime, now: datetime) -> ApplyOutcome:
        # "Unpaid" has no order event of its own (nothing moves an order back to it), so a
        # late unpaid report is recorded here, under its key like any other event.
        _check_event_key(key)
        token = f"{key}{_KEY_SEPARATOR}mark_pending"
        if token in self.applied_event_keys:
            return ApplyOutcome.DUPLICATE
        self.applied_event_keys.add(token)
        self.new_event_keys.append(token)
        self.conflict_count += 1
        self.version += 1
        self.updated_at = now
        self.events.append(OrderEventIgnoredStale(
            tenant_id=self.tenant_id, order_id=self.id, channel=self.channel, event_type="mark_pending",
            current_status=self.status.value, requested_status=OrderStatus.PENDING_PAYMENT.value, event_key=key,
            occurred_at=occurred_at, conflict_count=self.conflict_count,
        ))
        return ApplyOutcome.IGNORED_STALE

    def used_event_keys(self) -> set[str]:
        """The dedup keys of events applied to this order (without the event types)."""
        return {k.rpartition(_KEY_SEPARATOR)[0] for k in self.applied_event_keys}

    # ------------------------------------------------------------------ views
    def snapshot(self) -> dict[str, Any]:
        """A JSON-safe summary used for audit payload digests and outgoing webhooks."""
        return {
            "id": self.id, "channel": self.channel, "shop": self.shop, "external_id": self.external_id,
            "status": self.status.value, "payment_status": self.payment_status.value,
            "currency": self.currency, "total": self.total.amount,
            "lines": [{"sku": ln.sku, "quantity": ln.quantity, "unit_price": ln.unit_price.amount,
                       "discount": ln.discount.amount, "tax": ln.tax.amount} for ln in self.lines],
            "shipping_fee": self.shipping_fee.amount, "discount": self.discount.amount,
            "tags": list(self.tags), "placed_at": self.placed_at.isoformat(),
        }

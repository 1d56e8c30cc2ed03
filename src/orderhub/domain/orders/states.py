"""The canonical order status table (DESIGN.md §3), as data, and the one function that
changes an order's status.

Two kinds of order events exist:

* *progress* events move the order forward along the flow
  pending_payment → paid → ready_to_ship → partially_shipped → shipped → delivered →
  completed. Channels deliver them late and out of order, so one that would move the
  order backwards is *stale*: it is recorded and counted, never applied.
* *control* events (hold, release, cancel) are operator or risk decisions; one that the
  table doesn't allow is an error, not stale noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from orderhub.domain.errors import InvalidTransition, UnknownOrderEvent


class OrderStatus(StrEnum):
    """Canonical order status; see DESIGN.md §3 for meanings."""

    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    ON_HOLD = "on_hold"
    READY_TO_SHIP = "ready_to_ship"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class PaymentStatus(StrEnum):
    """Whether the buyer's money has arrived."""

    UNPAID = "unpaid"
    PAID = "paid"


class OrderEventType(StrEnum):
    """Things that can happen to an order (``POST /orders/{id}/events`` ``type``)."""

    MARK_PAID = "mark_paid"
    HOLD = "hold"
    RELEASE = "release"
    CANCEL = "cancel"
    READY_TO_SHIP = "ready_to_ship"
    SHIP_PARTIAL = "ship_partial"
    SHIP = "ship"
    DELIVER = "deliver"
    COMPLETE = "complete"


S = OrderStatus

# Allowed status changes. Anything not listed is rejected (or, for a backwards progress
# event, ignored as stale). on_hold → X is only taken towards the status the order was
# held from (see Order.release).
TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.ON_HOLD, S.CANCELLED}),
    S.PAID: frozenset({S.ON_HOLD, S.READY_TO_SHIP, S.PARTIALLY_SHIPPED, S.SHIPPED, S.CANCELLED}),
    S.ON_HOLD: frozenset({S.PENDING_PAYMENT, S.PAID, S.READY_TO_SHIP, S.CANCELLED}),
    S.READY_TO_SHIP: frozenset({S.ON_HOLD, S.PARTIALLY_SHIPPED, S.SHIPPED, S.CANCELLED}),
    S.PARTIALLY_SHIPPED: frozenset({S.SHIPPED, S.DELIVERED}),
    S.SHIPPED: frozenset({S.DELIVERED}),
    S.DELIVERED: frozenset({S.COMPLETED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}

TERMINAL: frozenset[OrderStatus] = frozenset(s for s, targets in TRANSITIONS.items() if not targets)

# Position along the forward flow; used to recognise stale (backwards) progress events.
# on_hold and cancelled are side states and carry no rank.
PROGRESS_RANK: Mapping[OrderStatus, int] = {
    S.PENDING_PAYMENT: 0,
    S.PAID: 1,
    S.READY_TO_SHIP: 2,
    S.PARTIALLY_SHIPPED: 3,
    S.SHIPPED: 4,
    S.DELIVERED: 5,
    S.COMPLETED: 6,
}

# Progress events and the status each one moves the order to.
PROGRESS_TARGET: Mapping[OrderEventType, OrderStatus] = {
    OrderEventType.MARK_PAID: S.PAID,
    OrderEventType.READY_TO_SHIP: S.READY_TO_SHIP,
    OrderEventType.SHIP_PARTIAL: S.PARTIALLY_SHIPPED,
    OrderEventType.SHIP: S.SHIPPED,
    OrderEventType.DELIVER: S.DELIVERED,
    OrderEventType.COMPLETE: S.COMPLETED,
}

CONTROL_EVENTS: frozenset[OrderEventType] = frozenset(
    {OrderEventType.HOLD, OrderEventType.RELEASE, OrderEventType.CANCEL}
)

# Statuses an order may be held from (and so released back to).
HOLDABLE: frozenset[OrderStatus] = frozenset(s for s, t in TRANSITIONS.items() if S.ON_HOLD in t)


def parse_event_type(value: str) -> OrderEventType:
    """Parse an event type name; raise UnknownOrderEvent listing the valid names."""
    try:
        return OrderEventType(value)
    except ValueError as exc:
        names = ", ".join(e.value for e in OrderEventType)
        raise UnknownOrderEvent(f"unknown order event {value!r}; expected one of: {names}", field="type") from exc


def is_allowed(current: OrderStatus, target: OrderStatus) -> bool:
    """True when the table allows ``current`` → ``target``."""
    return target in TRANSITIONS[current]


def is_backwards(current: OrderStatus, target: OrderStatus) -> bool:
    """True when moving to ``target`` would undo progress the order has already made."""
    if current is S.CANCELLED:
        # Anything arriving for a cancelled order (paid, shipped…) was overtaken by the cancel.
        return target is not S.CANCELLED
    if current not in PROGRESS_RANK or target not in PROGRESS_RANK:
        return False
    return PROGRESS_RANK[target] < PROGRESS_RANK[current]


def transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    """The one function that changes an order status: returns ``target`` or raises.

    Raises :class:`InvalidTransition` naming the allowed targets when the table forbids
    the change.
    """
    if not is_allowed(current, target):
        allowed = ", ".join(sorted(t.value for t in TRANSITIONS[current])) or "none (final status)"
        raise InvalidTransition(
            f"an order in status {current.value!r} can't move to {target.value!r}; allowed: {allowed}",
            field="type",
        )
    return target

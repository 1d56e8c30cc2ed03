"""Reservations: stock held for an order line, with their states as data and the one
function that changes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from orderhub.domain.errors import InvalidTransition
from orderhub.domain.inventory.stock import Bucket

# How long an unpaid order holds stock unless the channel's policy says otherwise.
DEFAULT_UNPAID_HOLD = timedelta(minutes=15)


class ReservationStatus(StrEnum):
    """Where a reservation is in its life."""

    ACTIVE = "active"          # holding stock
    RELEASED = "released"      # given back: order cancelled, or repaired as phantom
    EXPIRED = "expired"        # given back: the order stayed unpaid past expires_at
    CONSUMED = "consumed"      # shipped: the stock left the warehouse


R = ReservationStatus

RESERVATION_TRANSITIONS: Mapping[ReservationStatus, frozenset[ReservationStatus]] = {
    R.ACTIVE: frozenset({R.RELEASED, R.EXPIRED, R.CONSUMED}),
    R.RELEASED: frozenset(),
    R.EXPIRED: frozenset(),
    R.CONSUMED: frozenset(),
}


def reservation_transition(current: ReservationStatus, target: ReservationStatus) -> ReservationStatus:
    """Return ``target`` when the table allows it; raise InvalidTransition otherwise."""
    if target not in RESERVATION_TRANSITIONS[current]:
        raise InvalidTransition(f"a reservation that is {current.value!r} can't become {target.value!r}",
                                field="reservation")
    return target


@dataclass(frozen=True, slots=True)
class Reservation:
    """``quantity`` of ``sku`` in ``warehouse`` held for line ``line_no`` of ``order_id``."""

    id: str
    order_id: str
    line_no: int
    warehouse: str
    sku: str
    quantity: int
    bucket: Bucket
    status: ReservationStatus
    created_at: datetime
    expires_at: datetime | None = None      # unpaid orders only
    promise_date: date | None = None        # presale: when the goods are promised

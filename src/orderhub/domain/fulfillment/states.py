"""The shipment status table (DESIGN.md §3), as data, and the one function that changes a
shipment's status; plus the warehouse scan steps and line kinds.

Two phases share the table:

* *warehouse* statuses (created → waybill_issued → picking → picked → packed) are moved by
  scans; any of them may be cancelled. A carrier event may also move one straight to
  ``handed_over``: the carrier has the parcel even if our handover scan hasn't arrived yet
  (see ``Shipment.apply_tracking``). The scan rules, not the table, make the warehouse
  weigh before its own handover scan.
* *carrier* statuses (handed_over and later) are moved by tracking events. Failed delivery
  attempts send a parcel back ``out_for_delivery → in_transit`` (re-routed); an exception may
  resolve into any carrier status.

Decision on ``returning``: it leads only to ``returned`` (or ``exception``, a return lost on
the way). A parcel on its way back carries the same waybill, so a carrier "delivered" event
while returning means the return reached the sender, and ``Shipment.apply_tracking`` maps it
to ``returned`` rather than allowing ``returning → delivered``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from orderhub.domain.errors import InvalidShipmentTransition


class ShipmentStatus(StrEnum):
    """Where a shipment is, from the warehouse's first record to the buyer (or back)."""

    CREATED = "created"
    WAYBILL_ISSUED = "waybill_issued"
    PICKING = "picking"
    PICKED = "picked"
    PACKED = "packed"
    HANDED_OVER = "handed_over"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURNING = "returning"
    RETURNED = "returned"
    CANCELLED = "cancelled"


class ScanStep(StrEnum):
    """A warehouse scan step, in the order a shipment goes through them."""

    PICK = "pick"
    VERIFY = "verify"
    PACK = "pack"
    WEIGH = "weigh"
    HANDOVER = "handover"


class LineKind(StrEnum):
    """What a shipment line is: ordered goods, or a gift / promotional item added to the
    parcel. Gifts and promos are picked and verified like goods: a missing gift is a complaint."""

    GOODS = "goods"
    GIFT = "gift"
    PROMO = "promo"


S = ShipmentStatus

# Allowed status changes; anything not listed is refused. No self loops: an event that leaves
# the status where it is isn't a transition.
TRANSITIONS: Mapping[ShipmentStatus, frozenset[ShipmentStatus]] = {
    S.CREATED: frozenset({S.WAYBILL_ISSUED, S.CANCELLED}),
    S.WAYBILL_ISSUED: frozenset({S.PICKING, S.HANDED_OVER, S.CANCELLED}),
    S.PICKING: frozenset({S.PICKED, S.HANDED_OVER, S.CANCELLED}),
    S.PICKED: frozenset({S.PACKED, S.HANDED_OVER, S.CANCELLED}),
    S.PACKED: frozenset({S.HANDED_OVER, S.CANCELLED}),
    S.HANDED_OVER: frozenset({S.IN_TRANSIT, S.OUT_FOR_DELIVERY, S.DELIVERED, S.EXCEPTION, S.RETURNING}),
    S.IN_TRANSIT: frozenset({S.OUT_FOR_DELIVERY, S.DELIVERED, S.EXCEPTION, S.RETURNING}),
    S.OUT_FOR_DELIVERY: frozenset({S.IN_TRANSIT, S.DELIVERED, S.EXCEPTION, S.RETURNING}),
    S.EXCEPTION: frozenset({S.IN_TRANSIT, S.OUT_FOR_DELIVERY, S.DELIVERED, S.RETURNING, S.RETURNED}),
    S.RETURNING: frozenset({S.RETURNED, S.EXCEPTION}),
    S.DELIVERED: frozenset(),
    S.RETURNED: frozenset(),
    S.CANCELLED: frozenset(),
}

TERMINAL: frozenset[ShipmentStatus] = frozenset(s for s, targets in TRANSITIONS.items() if not targets)

# Statuses in which the parcel is still in the warehouse: scans and cancellation apply.
IN_WAREHOUSE: frozenset[ShipmentStatus] = frozenset(
    {S.CREATED, S.WAYBILL_ISSUED, S.PICKING, S.PICKED, S.PACKED}
)


def is_allowed(current: ShipmentStatus, target: ShipmentStatus) -> bool:
    """True when the table allows ``current`` → ``target``."""
    return target in TRANSITIONS[current]


def transition(current: ShipmentStatus, target: ShipmentStatus) -> ShipmentStatus:
    """The one function that changes a shipment status: returns ``target`` or raises.

    Raises :class:`InvalidShipmentTransition` naming the allowed targets when the table
    forbids the change.
    """
    if not is_allowed(current, target):
        allowed = ", ".join(sorted(t.value for t in TRANSITIONS[current])) or "none (final status)"
        raise InvalidShipmentTransition(
            f"a shipment in status {current.value!r} can't move to {target.value!r}; allowed: {allowed}",
            field="status",
        )
    return target

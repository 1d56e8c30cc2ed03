"""The tracking milestone vocabulary (DESIGN.md §3): the widely used 9 tags, each with
sub-status codes in the ``<Tag>_NNN`` style (``Delivered_001``, ``Exception_010``…).

Every carrier's raw codes map onto these through code tables (``adapters/carriers/codes``);
the shipment's status follows the milestone (``domain/fulfillment``).
"""

from __future__ import annotations

from enum import StrEnum


class Milestone(StrEnum):
    """Where a parcel is, whatever code its carrier used to say so."""

    PENDING = "pending"
    INFO_RECEIVED = "info_received"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    ATTEMPT_FAIL = "attempt_fail"
    DELIVERED = "delivered"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    EXCEPTION = "exception"
    EXPIRED = "expired"


# The sub-status prefix of each milestone (AfterShip's tag spelling): a sub-status code
# ``InTransit_003`` belongs to ``in_transit``.
SUB_STATUS_PREFIX: dict[Milestone, str] = {
    Milestone.PENDING: "Pending",
    Milestone.INFO_RECEIVED: "InfoReceived",
    Milestone.IN_TRANSIT: "InTransit",
    Milestone.OUT_FOR_DELIVERY: "OutForDelivery",
    Milestone.ATTEMPT_FAIL: "AttemptFail",
    Milestone.DELIVERED: "Delivered",
    Milestone.AVAILABLE_FOR_PICKUP: "AvailableForPickup",
    Milestone.EXCEPTION: "Exception",
    Milestone.EXPIRED: "Expired",
}

# Sub-statuses with a meaning of their own for the shipment (returns).
RETURNING = "Exception_010"
RETURNED = "Exception_011"


def milestone_of_sub_status(sub_status: str) -> Milestone | None:
    """The milestone a sub-status code belongs to (``"Delivered_003"`` → delivered), or None."""
    prefix, _, number = sub_status.partition("_")
    if not number.isdigit():
        return None
    for milestone, name in SUB_STATUS_PREFIX.items():
        if name == prefix:
            return milestone
    return None

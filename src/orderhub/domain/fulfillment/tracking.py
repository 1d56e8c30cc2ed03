"""Carrier tracking as the shipment sees it: one normalized tracking event
(:class:`TrackingUpdate`), what applying it did (:class:`TrackingOutcome`), and which shipment
status each milestone means (:func:`status_for`).

Carrier raw codes are mapped to a milestone and sub-status before they get here (code tables
in the carrier adapters); an unknown code never reaches the shipment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from orderhub.domain.fulfillment.states import ShipmentStatus
from orderhub.domain.tracking.milestones import RETURNED, RETURNING, Milestone

S = ShipmentStatus


@dataclass(frozen=True, slots=True)
class TrackingUpdate:
    """One carrier checkpoint, already mapped: the carrier's raw ``code``, its milestone and
    sub-status (``InTransit_003``…), when it happened and the carrier's own words."""

    code: str
    milestone: Milestone
    sub_status: str
    occurred_at: datetime
    description: str = ""


class TrackingOutcome(StrEnum):
    """What applying a tracking event did to the shipment."""

    APPLIED = "applied"      # milestone and/or status changed
    STALE = "stale"          # older than the newest event applied: recorded, nothing changed
    UNCHANGED = "unchanged"  # same milestone and sub-status as now (a newer one still counts as a sign of life)
    IGNORED = "ignored"      # the shipment is closed (delivered, returned, cancelled): recorded, nothing changed


# The status each milestone moves a shipment to; None: the milestone says nothing about
# where the parcel is (the carrier only has the label data).
MILESTONE_STATUS: Mapping[Milestone, ShipmentStatus | None] = {
    Milestone.PENDING: None,
    Milestone.INFO_RECEIVED: None,
    Milestone.IN_TRANSIT: S.IN_TRANSIT,
    Milestone.OUT_FOR_DELIVERY: S.OUT_FOR_DELIVERY,
    # A failed attempt or a parcel waiting at a pickup point is still on its last mile.
    Milestone.ATTEMPT_FAIL: S.OUT_FOR_DELIVERY,
    Milestone.AVAILABLE_FOR_PICKUP: S.OUT_FOR_DELIVERY,
    Milestone.DELIVERED: S.DELIVERED,
    Milestone.EXCEPTION: S.EXCEPTION,
    # The carrier stopped tracking it without a delivery: someone must look at it.
    Milestone.EXPIRED: S.EXCEPTION,
}

# Exception sub-statuses with a meaning of their own.
SUB_STATUS_STATUS: Mapping[str, ShipmentStatus] = {
    RETURNING: S.RETURNING,
    RETURNED: S.RETURNED,
}


def status_for(milestone: Milestone, sub_status: str, current: ShipmentStatus) -> ShipmentStatus | None:
    """The shipment status a tracking event points to, or None when it points to none.

    Used by ``Shipment.apply_tracking``. A "delivered" event while the shipment is returning
    is the return reaching the sender (same waybill), so it means ``returned``.
    """
    if milestone is Milestone.EXCEPTION and sub_status in SUB_STATUS_STATUS:
        return SUB_STATUS_STATUS[sub_status]
    target = MILESTONE_STATUS[milestone]
    if target is S.DELIVERED and current is S.RETURNING:
        return S.RETURNED
    return target

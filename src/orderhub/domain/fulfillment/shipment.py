"""The Shipment aggregate: what leaves a warehouse for (part of) an order, how warehouse scans
move it (pick → verify → pack → weigh → handover) and how carrier tracking moves it after.

Every method validates everything first and only then changes the shipment, bumping
``version`` once and appending events; a rejected call leaves it exactly as it was. The scan
rules themselves (what each step needs) live in ``domain/fulfillment/scanning.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from orderhub.domain.errors import InvalidShipment, InvalidTime, ScanRejected, ShipmentClosed
from orderhub.domain.events import (
    Event,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentScanned,
    ShipmentStalled,
    TrackingUpdated,
    WaybillIssued,
)
from orderhub.domain.fulfillment.scanning import (
    Scan,
    ScanPlan,
    ScanResult,
    ShipmentLine,
    WeightTolerance,
    next_step,
    plan_scan,
)
from orderhub.domain.fulfillment.states import (
    IN_WAREHOUSE,
    TERMINAL,
    ShipmentStatus,
    is_allowed,
    transition,
)
from orderhub.domain.fulfillment.tracking import TrackingOutcome, TrackingUpdate, status_for
from orderhub.domain.time import ensure_utc
from orderhub.domain.tracking.milestones import Milestone

__all__ = ["Scan", "ScanResult", "Shipment", "ShipmentLine", "WeightTolerance"]

MAX_LINES = 500
MAX_QUANTITY = 1_000_000
MAX_STALL_LEVEL = 3
# How far a device's or carrier's clock may run ahead of ours before a time is refused.
CLOCK_SKEW = timedelta(minutes=10)

S = ShipmentStatus


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidShipment(f"{name}: must be a non-empty string", field=name)
    return value.strip()


def _whole(value: object, name: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidShipment(f"{name}: must be a whole number from {low} to {high}, got {value!r}", field=name)
    return value


def _checked_line(line: ShipmentLine, index: int) -> ShipmentLine:
    where = f"lines[{index}]"
    _whole(line.line_no, f"{where}.line_no", low=1, high=MAX_LINES * 100)
    sku = _text(line.sku, f"{where}.sku")
    _whole(line.quantity, f"{where}.quantity", low=1, high=MAX_QUANTITY)
    _whole(line.unit_weight_g, f"{where}.unit_weight_g", low=0, high=1_000_000_000)
    barcode = None if line.barcode is None else _text(line.barcode, f"{where}.barcode")
    if line.picked != 0 or line.verified != 0:
        raise InvalidShipment(f"{where}: a new shipment line has nothing picked or verified yet", field=where)
    # A copy, so the caller's list can't change the shipment behind its back.
    return replace(line, sku=sku, barcode=barcode)


@dataclass(eq=False)
class Shipment:
    """A parcel (or the plan for one) leaving a warehouse for an order (DESIGN.md §3)."""

    id: str
    tenant_id: str
    order_id: str
    warehouse: str
    lines: list[ShipmentLine]
    status: ShipmentStatus
    version: int
    created_at: datetime
    updated_at: datetime
    # Reset whenever the shipment makes progress (scan, waybill, new tracking); stalls count from it.
    last_progress_at: datetime
    carrier: str | None = None
    service: str | None = None
    routing_rule: str | None = None
    wave: str | None = None
    priority: int = 0
    waybill_no: str | None = None
    expected_weight_g: int = 0
    weight_g: int | None = None
    weight_flagged: bool = False
    milestone: Milestone | None = None
    sub_status: str | None = None
    # The newest carrier event time applied; older events are stale.
    last_event_at: datetime | None = None
    stall_level: int = 0
    compensation_flag: bool = False
    handed_over_at: datetime | None = None
    delivered_at: datetime | None = None
    cancel_reason: str | None = None
    events: list[Event] = field(default_factory=list, compare=False)

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, *, id: str, tenant_id: str, order_id: str, warehouse: str,
               lines: list[ShipmentLine], carrier: str | None, service: str | None, routing_rule: str | None,
               wave: str | None, priority: int, now: datetime) -> Shipment:
        """Validate a new shipment (status ``created``, version 1) and record ShipmentCreated.

        Raises :class:`InvalidShipment` for blank ids, no lines, a quantity below one, a
        duplicate line number, or lines that claim to be picked already.
        """
        for name, value in (("id", id), ("tenant_id", tenant_id), ("order_id", order_id), ("warehouse", warehouse)):
            _text(value, name)
        if not lines:
            raise InvalidShipment("lines: a shipment needs at least one line", field="lines")
        if len(lines) > MAX_LINES:
            raise InvalidShipment(f"lines: at most {MAX_LINES} lines per shipment", field="lines")
        checked = [_checked_line(line, i) for i, line in enumerate(lines)]
        seen: set[int] = set()
        for i, line in enumerate(checked):
            if line.line_no in seen:
                raise InvalidShipment(f"lines[{i}].line_no: line number {line.line_no} appears twice",
                                      field=f"lines[{i}].line_no")
            seen.add(line.line_no)
        _whole(priority, "priority", low=-1_000_000, high=1_000_000)
        now = ensure_utc(now, field="now")
        shipment = cls(
            id=id, tenant_id=tenant_id, order_id=order_id, warehouse=warehouse.strip(), lines=checked,
            status=S.CREATED, version=1, created_at=now, updated_at=now, last_progress_at=now,
            carrier=carrier, service=service, routing_rule=routing_rule, wave=wave, priority=priority,
            expected_weight_g=sum(line.unit_weight_g * line.quantity for line in checked),
        )
        shipment.events.append(ShipmentCreated(
            tenant_id=tenant_id, shipment_id=id, order_id=order_id, warehouse=shipment.warehouse, carrier=carrier,
            service=service, routing_rule=routing_rule, wave=wave, priority=priority,
            expected_weight_g=shipment.expected_weight_g,
            lines=tuple(line.to_json() for line in checked), occurred_at=now,
        ))
        return shipment

    # ------------------------------------------------------------------ state
    @property
    def fully_picked(self) -> bool:
        """Every line (gifts and promos too) is picked to its quantity."""
        return all(line.picked >= line.quantity for line in self.lines)

    @property
    def fully_verified(self) -> bool:
        """Every line is verified to its quantity (which implies fully picked)."""
        return all(line.verified >= line.quantity for line in self.lines)

    @property
    def is_open(self) -> bool:
        """Not in a final status (delivered, returned, cancelled)."""
        return self.status not in TERMINAL

    @property
    def next_step(self) -> str | None:
        """The scan step the warehouse should do next (``"issue_waybill"`` before the waybill),
        or None once the parcel has left the warehouse or was cancelled."""
        return next_step(self)

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe state, for conflict answers to devices and for API responses."""
        return {
            "id": self.id, "order_id": self.order_id, "status": self.status.value, "version": self.version,
            "waybill_no": self.waybill_no, "weight_g": self.weight_g, "weight_flagged": self.weight_flagged,
            "expected_weight_g": self.expected_weight_g, "next_step": self.next_step,
            "milestone": self.milestone.value if self.milestone is not None else None, "sub_status": self.sub_status,
            "lines": [line.to_json() for line in self.lines],
        }

    def _touch(self, now: datetime, *, progress: bool) -> None:
        self.version += 1
        self.updated_at = now
        if progress:
            self.last_progress_at = now
            self.stall_level = 0

    # ------------------------------------------------------------------ waybill
    def issue_waybill(self, waybill_no: str, *, now: datetime) -> bool:
        """Record the carrier's waybill number (created → waybill_issued).

        Returns False when the same number is already recorded (a retried request).
        Raises :class:`InvalidShipment` for a blank number or a different one when one exists,
        :class:`ShipmentClosed` when the shipment was cancelled.
        """
        number = _text(waybill_no, "waybill_no")
        now = ensure_utc(now, field="now")
        if self.waybill_no is not None:
            if self.waybill_no == number:
                return False
            raise InvalidShipment(f"waybill_no: shipment {self.id} already has waybill {self.waybill_no!r}; "
                                  "cancel it and create a new shipment to change carriers", field="waybill_no")
        if self.status is S.CANCELLED:
            raise ShipmentClosed(f"shipment {self.id} is cancelled; no waybill can be issued", status=self.status.value)
        before = self.status
        target = transition(before, S.WAYBILL_ISSUED)
        self.status = target
        self.waybill_no = number
        self._touch(now, progress=True)
        self.events.append(WaybillIssued(
            tenant_id=self.tenant_id, shipment_id=self.id, order_id=self.order_id, waybill_no=number,
            carrier=self.carrier, from_status=before.value, to_status=target.value, occurred_at=now,
        ))
        return True

    # ------------------------------------------------------------------ warehouse scans
    def scan(self, scan: Scan, *, now: datetime, tolerance: WeightTolerance) -> ScanResult:
        """Apply one warehouse scan and say what it did.

        Raises :class:`ShipmentClosed` once the shipment was handed over or cancelled and
        :class:`ScanRejected` (with ``expected``) for a scan that doesn't fit: unknown barcode,
        too many, step out of order, no waybill yet. Nothing changes when it raises.
        """
        now = ensure_utc(now, field="now")
        at = ensure_utc(scan.occurred_at, field="occurred_at")
        if at > now + CLOCK_SKEW:
            raise InvalidTime(f"occurred_at: scan time {at.isoformat()} is in the future", field="occurred_at")
        if self.status not in IN_WAREHOUSE:
            raise ShipmentClosed(f"shipment {self.id} is {self.status.value}: it has left the warehouse "
                                 "or was cancelled; no more scans", status=self.status.value)
        if self.status is S.CREATED:
            raise ScanRejected(f"shipment {self.id} has no waybill yet; issue the waybill before scanning",
                               field="step", expected={"step": "issue_waybill", "status": self.status.value})
        plan = plan_scan(self, scan, tolerance)
        return self._carry_out(scan, plan, at=at, now=now)

    def _carry_out(self, scan: Scan, plan: ScanPlan, *, at: datetime, now: datetime) -> ScanResult:
        before = self.status
        target = before
        for step in plan.statuses:
            target = transition(target, step)
        for line, count in plan.picks:
            line.picked += count
        for line, count in plan.verifies:
            line.verified += count
        if plan.weight_g is not None:
            self.weight_g = plan.weight_g
            self.weight_flagged = plan.weight_flagged
        if target is S.HANDED_OVER:
            self.handed_over_at = at
        self.status = target
        self._touch(now, progress=True)
        changed = target is not before
        self.events.append(ShipmentScanned(
            tenant_id=self.tenant_id, shipment_id=self.id, order_id=self.order_id, scan_id=scan.scan_id,
            step=scan.step.value, operator=scan.operator, device_id=scan.device_id, barcode=plan.barcode,
            quantity=scan.quantity, weight_g=plan.weight_g, flags=plan.flags, line_no=plan.line_no,
            from_status=before.value if changed else None, to_status=target.value if changed else None,
            version=self.version, occurred_at=at,
        ))
        return ScanResult(scan_id=scan.scan_id, step=scan.step, status=target, line_no=plan.line_no,
                          flags=plan.flags, version=self.version)

    # ------------------------------------------------------------------ carrier tracking
    def apply_tracking(self, update: TrackingUpdate, *, now: datetime) -> TrackingOutcome:
        """Apply one mapped carrier event; the only way a shipment moves after handover.

        * closed shipment (delivered, returned, cancelled): ``ignored`` and recorded — an
          "in transit" arriving after "delivered" changes nothing;
        * older than the newest event applied: ``stale`` and recorded — except an event that
          closes the shipment (delivered, returned), which is applied whenever it arrives so a
          late push is never lost;
        * same milestone and sub-status as now: ``unchanged``; when newer, it still counts as
          a sign of life (the parcel moved hub to hub) and resets the stall clock;
        * otherwise ``applied``: milestone and sub-status recorded, the status follows where
          the table allows (the return leg's in-transit scans leave ``returning`` as it is).

        A carrier event on a shipment still in the warehouse (waybill issued … packed) means the
        carrier has the parcel even though our handover scan hasn't arrived: it is taken as an
        implicit handover (``handed_over_at`` = the carrier's time). "Pending" and "info
        received" don't count: the carrier only has the label data.

        Raises InvalidTime for a naive or future time, InvalidShipment for a blank code and
        InvalidShipmentTransition for tracking on a shipment without a waybill.
        """
        now = ensure_utc(now, field="now")
        at = ensure_utc(update.occurred_at, field="occurred_at")
        _text(update.code, "code")
        if at > now + CLOCK_SKEW:
            raise InvalidTime(f"occurred_at: carrier event time {at.isoformat()} is in the future", field="occurred_at")
        same = update.milestone is self.milestone and update.sub_status == self.sub_status
        if not self.is_open:
            if same:
                return TrackingOutcome.UNCHANGED
            self._record_tracking(update, at, TrackingOutcome.IGNORED, before=None, after=None, implicit=False)
            return TrackingOutcome.IGNORED

        before = self.status
        target = status_for(update.milestone, update.sub_status, before)
        after = before
        implicit = before in IN_WAREHOUSE and target is not None
        if implicit:
            after = transition(after, S.HANDED_OVER)
        if target is not None and target is not after and is_allowed(after, target):
            after = transition(after, target)
        closes = after in TERMINAL
        newer = self.last_event_at is None or at > self.last_event_at
        if self.last_event_at is not None and at < self.last_event_at and not closes:
            if same:
                return TrackingOutcome.UNCHANGED
            self._record_tracking(update, at, TrackingOutcome.STALE, before=None, after=None, implicit=False)
            return TrackingOutcome.STALE
        if same and not implicit:
            if newer:
                self.last_event_at = at
                self._touch(now, progress=True)
            return TrackingOutcome.UNCHANGED

        self.status = after
        if implicit:
            self.handed_over_at = at
        if after is S.DELIVERED:
            self.delivered_at = at
        self.milestone = update.milestone
        self.sub_status = update.sub_status
        if newer:
            self.last_event_at = at
        self._touch(now, progress=True)
        changed = after is not before
        self._record_tracking(update, at, TrackingOutcome.APPLIED, before=before if changed else None,
                              after=after if changed else None, implicit=implicit)
        return TrackingOutcome.APPLIED

    def _record_tracking(self, update: TrackingUpdate, at: datetime, outcome: TrackingOutcome, *,
                         before: ShipmentStatus | None, after: ShipmentStatus | None, implicit: bool) -> None:
        self.events.append(TrackingUpdated(
            tenant_id=self.tenant_id, shipment_id=self.id, order_id=self.order_id, waybill_no=self.waybill_no,
            code=update.code, milestone=update.milestone.value, sub_status=update.sub_status, outcome=outcome.value,
            from_status=before.value if before is not None else None,
            to_status=after.value if after is not None else None,
            implicit_handover=implicit, description=update.description, occurred_at=at,
        ))

    # ------------------------------------------------------------------ stalls and cancellation
    def raise_stall(self, level: int, *, now: datetime) -> bool:
        """Raise the stall level (1–3) when the shipment has made no progress for too long.

        Only ever upward: returns False when the level is not above the current one or the
        shipment is closed (closed shipments never stall). Level 3 flags it for compensation.
        Raises InvalidShipment for a level outside 1–3.
        """
        _whole(level, "level", low=1, high=MAX_STALL_LEVEL)
        now = ensure_utc(now, field="now")
        if not self.is_open or level <= self.stall_level:
            return False
        self.stall_level = level
        if level >= MAX_STALL_LEVEL:
            self.compensation_flag = True
        self._touch(now, progress=False)
        self.events.append(ShipmentStalled(
            tenant_id=self.tenant_id, shipment_id=self.id, order_id=self.order_id, level=level,
            milestone=self.milestone.value if self.milestone is not None else None, since=self.last_progress_at,
            compensation=self.compensation_flag, occurred_at=now,
        ))
        return True

    def cancel(self, reason: str, *, now: datetime) -> bool:
        """Cancel the shipment while it is still in the warehouse.

        Returns False when it already is cancelled. Raises InvalidShipment for a blank reason
        and InvalidShipmentTransition once it was handed over (the carrier has it: intercept or
        return it instead).
        """
        why = _text(reason, "reason")
        now = ensure_utc(now, field="now")
        if self.status is S.CANCELLED:
            return False
        before = self.status
        self.status = transition(before, S.CANCELLED)
        self.cancel_reason = why
        self._touch(now, progress=False)
        self.events.append(ShipmentCancelled(
            tenant_id=self.tenant_id, shipment_id=self.id, order_id=self.order_id, from_status=before.value,
            reason=why, occurred_at=now,
        ))
        return True

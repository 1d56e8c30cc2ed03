"""Warehouse scanning: shipment lines, scans, the weight tolerance, and the rules that decide
what one scan may do to a shipment (:func:`plan_scan`).

Planning is separate from applying: :func:`plan_scan` only reads the shipment and either
raises :class:`ScanRejected` or returns a :class:`ScanPlan`, which ``Shipment.scan`` then
carries out. So a rejected scan can't leave a half-changed shipment behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orderhub.domain.errors import InvalidPolicy, ScanRejected
from orderhub.domain.fulfillment.states import LineKind, ScanStep, ShipmentStatus

if TYPE_CHECKING:
    from orderhub.domain.fulfillment.shipment import Shipment

S = ShipmentStatus
WEIGHT_FLAG = "weight_out_of_tolerance"
MAX_WEIGHT_G = 1_000_000_000


@dataclass
class ShipmentLine:
    """One line of a shipment: ``quantity`` of ``sku`` to pick and verify. ``barcode`` is what
    the scanner reads; None means the SKU itself is printed as the barcode."""

    line_no: int
    sku: str
    quantity: int
    kind: LineKind = LineKind.GOODS
    barcode: str | None = None
    unit_weight_g: int = 0
    picked: int = 0
    verified: int = 0

    @property
    def scan_code(self) -> str:
        """The code a scanner reads for this line."""
        return self.barcode if self.barcode is not None else self.sku

    def matches(self, barcode: str) -> bool:
        """True when a scanned ``barcode`` is this line's (scanners may add whitespace)."""
        return barcode.strip() == self.scan_code

    def to_json(self) -> dict[str, Any]:
        """JSON-safe view of the line and its progress."""
        return {"line_no": self.line_no, "sku": self.sku, "kind": self.kind.value, "barcode": self.scan_code,
                "quantity": self.quantity, "unit_weight_g": self.unit_weight_g, "picked": self.picked,
                "verified": self.verified}


@dataclass(frozen=True, slots=True)
class Scan:
    """One scan from a warehouse device. ``scan_id`` is the device's own id for it, so a scan
    sent twice (offline sync retry) is recognised as a duplicate by the caller."""

    scan_id: str
    step: ScanStep
    operator: str
    device_id: str | None
    occurred_at: datetime
    barcode: str | None = None
    quantity: int = 1
    weight_g: int | None = None


@dataclass(frozen=True, slots=True)
class WeightTolerance:
    """How far a parcel's weighed weight may be from the expected one before it is flagged:
    the larger of ``percent`` of the expected weight and ``min_grams``."""

    percent: int = 10
    min_grams: int = 50

    def __post_init__(self) -> None:
        for name, value in (("percent", self.percent), ("min_grams", self.min_grams)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidPolicy(f"weight_tolerance.{name}: must be a whole number ≥ 0, got {value!r}",
                                    field=f"weight_tolerance.{name}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, path: str = "weight_tolerance") -> WeightTolerance:
        """Build from a rule-set mapping ``{"percent": 10, "min_grams": 50}`` (both optional).
        Raises InvalidPolicy naming the bad key."""
        unknown = sorted(set(data) - {"percent", "min_grams"})
        if unknown:
            raise InvalidPolicy(f"{path}.{unknown[0]}: unknown setting; expected percent, min_grams",
                                field=f"{path}.{unknown[0]}")
        try:
            return cls(percent=data.get("percent", 10), min_grams=data.get("min_grams", 50))
        except InvalidPolicy as exc:
            name = (exc.field or "").rpartition(".")[2]
            raise InvalidPolicy(exc.message.replace("weight_tolerance.", f"{path}.", 1),
                                field=f"{path}.{name}") from exc

    def allows(self, expected_g: int, actual_g: int) -> bool:
        """True when ``actual_g`` is within tolerance of ``expected_g``."""
        diff = abs(actual_g - expected_g)
        # Integer arithmetic: diff ≤ expected × percent / 100 without rounding.
        return diff <= self.min_grams or diff * 100 <= expected_g * self.percent


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What an accepted scan did: the shipment's status and version after it, the line it
    counted against (pick / verify) and warnings such as ``weight_out_of_tolerance``."""

    scan_id: str
    step: ScanStep
    status: ShipmentStatus
    line_no: int | None
    flags: tuple[str, ...]
    version: int


@dataclass(frozen=True)
class ScanPlan:
    """What an accepted scan will change; built by :func:`plan_scan`, applied by ``Shipment.scan``."""

    statuses: tuple[ShipmentStatus, ...] = ()
    picks: tuple[tuple[ShipmentLine, int], ...] = ()
    verifies: tuple[tuple[ShipmentLine, int], ...] = ()
    barcode: str | None = None
    line_no: int | None = None
    weight_g: int | None = None
    weight_flagged: bool = False
    flags: tuple[str, ...] = ()


def next_step(shipment: Shipment) -> str | None:
    """The step the warehouse should scan next, ``"issue_waybill"`` before the waybill, or None
    when the shipment has left the warehouse or was cancelled."""
    status = shipment.status
    if status is S.CREATED:
        return "issue_waybill"
    if status in (S.WAYBILL_ISSUED, S.PICKING):
        return ScanStep.PICK.value
    if status is S.PICKED:
        return (ScanStep.PACK if shipment.fully_verified else ScanStep.VERIFY).value
    if status is S.PACKED:
        return (ScanStep.HANDOVER if shipment.weight_g is not None else ScanStep.WEIGH).value
    return None


# The statuses in which each step may be scanned at all; its own rules then decide.
STEP_STATUSES: Mapping[ScanStep, frozenset[ShipmentStatus]] = {
    ScanStep.PICK: frozenset({S.WAYBILL_ISSUED, S.PICKING}),
    ScanStep.VERIFY: frozenset({S.PICKED}),
    ScanStep.PACK: frozenset({S.PICKED}),
    ScanStep.WEIGH: frozenset({S.PACKED}),
    ScanStep.HANDOVER: frozenset({S.PACKED}),
}


def plan_scan(shipment: Shipment, scan: Scan, tolerance: WeightTolerance) -> ScanPlan:
    """Decide what ``scan`` does to ``shipment`` (in the warehouse, with a waybill) without
    changing it; raise :class:`ScanRejected` saying what was expected instead."""
    _check_shape(scan)
    step = ScanStep(scan.step)
    if shipment.status not in STEP_STATUSES[step]:
        expected = next_step(shipment)
        raise ScanRejected(f"step {step.value!r} is out of order: shipment {shipment.id} is "
                           f"{shipment.status.value}; expected step {expected!r}",
                           field="step", expected={"step": expected, "status": shipment.status.value})
    if step is ScanStep.PICK:
        return _plan_pick(shipment, scan)
    if step is ScanStep.VERIFY:
        return _plan_verify(shipment, scan)
    if step is ScanStep.PACK:
        return _plan_pack(shipment)
    if step is ScanStep.WEIGH:
        return _plan_weigh(shipment, scan, tolerance)
    return _plan_handover(shipment)


def _check_shape(scan: Scan) -> None:
    if not isinstance(scan.scan_id, str) or not scan.scan_id.strip():
        raise ScanRejected("scan_id: every scan needs the device's id for it", field="scan_id")
    if not isinstance(scan.operator, str) or not scan.operator.strip():
        raise ScanRejected("operator: every scan names the operator who made it", field="operator")
    if isinstance(scan.quantity, bool) or not isinstance(scan.quantity, int) or scan.quantity < 1:
        raise ScanRejected(f"quantity: must be a whole number ≥ 1, got {scan.quantity!r}", field="quantity",
                           expected={"quantity": "whole number ≥ 1"})
    if scan.step not in tuple(ScanStep):
        steps = ", ".join(s.value for s in ScanStep)
        raise ScanRejected(f"step: unknown scan step {scan.step!r}; expected one of: {steps}", field="step",
                           expected={"steps": [s.value for s in ScanStep]})


def _outstanding(lines: list[ShipmentLine], *, verify: bool) -> dict[str, int]:
    """What is still to scan, per barcode: left to pick, or picked but not yet verified."""
    left: dict[str, int] = {}
    for line in lines:
        count = line.picked - line.verified if verify else line.quantity - line.picked
        if count > 0:
            left[line.scan_code] = left.get(line.scan_code, 0) + count
    return left


def _take(shipment: Shipment, scan: Scan, *, verify: bool) -> tuple[str, tuple[tuple[ShipmentLine, int], ...]]:
    """Spread a pick or verify scan over the lines its barcode matches, in line order."""
    action = "verify" if verify else "pick"
    left = _outstanding(shipment.lines, verify=verify)
    if scan.barcode is None or not scan.barcode.strip():
        raise ScanRejected(f"barcode: a {action} scan needs a barcode; expected one of: {_listing(left)}",
                           field="barcode", expected={"barcodes": left})
    barcode = scan.barcode.strip()
    matching = [line for line in shipment.lines if line.matches(barcode)]
    if not matching:
        raise ScanRejected(f"barcode {barcode!r} is not on shipment {shipment.id}; expected one of: {_listing(left)}",
                           field="barcode", expected={"barcodes": left})
    available = left.get(barcode, 0)
    if available == 0:
        done = "picked" if not verify else "verified (or not picked yet)"
        raise ScanRejected(f"barcode {barcode!r} is already fully {done}; expected one of: {_listing(left)}",
                           field="barcode", expected={"barcodes": left})
    if scan.quantity > available:
        raise ScanRejected(f"{scan.quantity} × {barcode!r} is more than the {available} left to {action}",
                           field="quantity", expected={"barcode": barcode, "remaining": available})
    taken: list[tuple[ShipmentLine, int]] = []
    wanted = scan.quantity
    for line in matching:
        room = line.picked - line.verified if verify else line.quantity - line.picked
        count = min(room, wanted)
        if count > 0:
            taken.append((line, count))
            wanted -= count
    return barcode, tuple(taken)


def _listing(left: dict[str, int]) -> str:
    return ", ".join(f"{code} × {count}" for code, count in left.items()) or "nothing (all done)"


def _plan_pick(shipment: Shipment, scan: Scan) -> ScanPlan:
    barcode, picks = _take(shipment, scan, verify=False)
    statuses: list[ShipmentStatus] = []
    if shipment.status is S.WAYBILL_ISSUED:
        statuses.append(S.PICKING)
    counted = {id(line): count for line, count in picks}
    if all(line.picked + counted.get(id(line), 0) >= line.quantity for line in shipment.lines):
        statuses.append(S.PICKED)
    return ScanPlan(statuses=tuple(statuses), picks=picks, barcode=barcode, line_no=picks[0][0].line_no)


def _plan_verify(shipment: Shipment, scan: Scan) -> ScanPlan:
    if shipment.fully_verified:
        raise ScanRejected(f"every line of shipment {shipment.id} is verified; expected step 'pack'",
                           field="step", expected={"step": ScanStep.PACK.value, "status": shipment.status.value})
    barcode, verifies = _take(shipment, scan, verify=True)
    return ScanPlan(verifies=verifies, barcode=barcode, line_no=verifies[0][0].line_no)


def _plan_pack(shipment: Shipment) -> ScanPlan:
    missing = [line for line in shipment.lines if line.verified < line.quantity]
    if missing:
        detail = ", ".join(f"line {line.line_no} ({line.scan_code}, {line.kind.value}): "
                           f"{line.verified}/{line.quantity} verified" for line in missing)
        raise ScanRejected(f"can't pack shipment {shipment.id}: lines lack verification: {detail}",
                           field="step", expected={"step": ScanStep.VERIFY.value,
                                                   "barcodes": _outstanding(shipment.lines, verify=True),
                                                   "lines": [line.line_no for line in missing]})
    return ScanPlan(statuses=(S.PACKED,))


def _plan_weigh(shipment: Shipment, scan: Scan, tolerance: WeightTolerance) -> ScanPlan:
    weight = scan.weight_g
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 < weight <= MAX_WEIGHT_G:
        raise ScanRejected(f"weight_g: a weigh scan needs the parcel's weight in whole grams above zero, "
                           f"got {weight!r}", field="weight_g", expected={"weight_g": "whole grams > 0"})
    # Without unit weights there is nothing to compare against: the weight is recorded unflagged.
    flagged = shipment.expected_weight_g > 0 and not tolerance.allows(shipment.expected_weight_g, weight)
    return ScanPlan(weight_g=weight, weight_flagged=flagged, flags=(WEIGHT_FLAG,) if flagged else ())


def _plan_handover(shipment: Shipment) -> ScanPlan:
    if shipment.weight_g is None:
        raise ScanRejected(f"shipment {shipment.id} is packed but not weighed; expected step 'weigh'",
                           field="step", expected={"step": ScanStep.WEIGH.value, "status": shipment.status.value})
    # A flagged weight doesn't block the handover; the flag travels on so the device warns.
    return ScanPlan(statuses=(S.HANDED_OVER,), flags=(WEIGHT_FLAG,) if shipment.weight_flagged else ())

"""The shipment aggregate: status table, warehouse scans, carrier tracking, stalls, cancel."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orderhub.domain.errors import (
    DomainError,
    InvalidShipment,
    InvalidShipmentTransition,
    InvalidTime,
    ScanRejected,
    ShipmentClosed,
)
from orderhub.domain.events import (
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentScanned,
    ShipmentStalled,
    TrackingUpdated,
    WaybillIssued,
)
from orderhub.domain.fulfillment.scanning import next_step
from orderhub.domain.fulfillment.shipment import Scan, Shipment, ShipmentLine, WeightTolerance
from orderhub.domain.fulfillment.states import (
    IN_WAREHOUSE,
    TERMINAL,
    TRANSITIONS,
    LineKind,
    ScanStep,
    ShipmentStatus,
    transition,
)
from orderhub.domain.fulfillment.tracking import TrackingOutcome, TrackingUpdate, status_for
from orderhub.domain.tracking.milestones import RETURNED, RETURNING, SUB_STATUS_PREFIX, Milestone

S = ShipmentStatus
T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
TOL = WeightTolerance()


def lines() -> list[ShipmentLine]:
    return [
        ShipmentLine(line_no=1, sku="TEA-001", quantity=2, barcode="6901234000011", unit_weight_g=300),
        ShipmentLine(line_no=2, sku="GIFT-CUP", quantity=1, kind=LineKind.GIFT, unit_weight_g=200),
    ]


def shipment(**extra: Any) -> Shipment:
    kwargs: dict[str, Any] = {
        "id": "shp_1", "tenant_id": "ten_test", "order_id": "ord_1", "warehouse": "HZ-01", "lines": lines(),
        "carrier": "sf", "service": "standard", "routing_rule": "default", "wave": "W1", "priority": 0, "now": T0,
    }
    kwargs.update(extra)
    return Shipment.create(**kwargs)


def scan(step: ScanStep, barcode: str | None = None, *, quantity: int = 1, weight_g: int | None = None,
         n: int = 0) -> Scan:
    return Scan(scan_id=f"scan-{step.value}-{barcode}-{n}", step=step, operator="op1", device_id="dev1",
                occurred_at=T0 + timedelta(minutes=5), barcode=barcode, quantity=quantity, weight_g=weight_g)


def do(s: Shipment, step: ScanStep, barcode: str | None = None, **kw: Any) -> Any:
    return s.scan(scan(step, barcode, **kw), now=T0 + timedelta(minutes=6), tolerance=TOL)


def with_waybill() -> Shipment:
    s = shipment()
    s.issue_waybill("SF100", now=T0)
    return s


def packed(weight: int | None = 800) -> Shipment:
    s = with_waybill()
    do(s, ScanStep.PICK, "6901234000011", quantity=2)
    do(s, ScanStep.PICK, "GIFT-CUP")
    do(s, ScanStep.VERIFY, "6901234000011", quantity=2)
    do(s, ScanStep.VERIFY, "GIFT-CUP")
    do(s, ScanStep.PACK)
    if weight is not None:
        do(s, ScanStep.WEIGH, weight_g=weight)
    return s


def handed_over() -> Shipment:
    s = packed()
    do(s, ScanStep.HANDOVER)
    return s


def status(s: Shipment) -> ShipmentStatus:
    """The status, unnarrowed: mypy would otherwise pin it to the last value asserted."""
    return s.status


def state(s: Shipment) -> dict[str, Any]:
    return {**s.snapshot(), "updated_at": s.updated_at, "events": len(s.events), "handed_over_at": s.handed_over_at,
            "last_progress_at": s.last_progress_at}


def track(milestone: Milestone, at: datetime, sub_status: str | None = None, code: str = "X") -> TrackingUpdate:
    sub = sub_status or f"{SUB_STATUS_PREFIX[milestone]}_001"
    return TrackingUpdate(code=code, milestone=milestone, sub_status=sub, occurred_at=at)


NOW = T0 + timedelta(days=3)


# --------------------------------------------------------------------------- table
ALLOWED = [(a, b) for a, targets in TRANSITIONS.items() for b in sorted(targets)]


@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_every_allowed_transition_returns_the_target(current: ShipmentStatus, target: ShipmentStatus) -> None:
    assert transition(current, target) is target


@pytest.mark.parametrize(("current", "target"), [
    (S.CREATED, S.PICKING), (S.PACKED, S.IN_TRANSIT), (S.HANDED_OVER, S.CANCELLED), (S.IN_TRANSIT, S.IN_TRANSIT),
    (S.DELIVERED, S.RETURNING), (S.RETURNING, S.DELIVERED), (S.RETURNED, S.IN_TRANSIT), (S.CANCELLED, S.CREATED),
    (S.OUT_FOR_DELIVERY, S.PACKED),
])
def test_refused_transition_names_the_allowed_targets(current: ShipmentStatus, target: ShipmentStatus) -> None:
    with pytest.raises(InvalidShipmentTransition) as err:
        transition(current, target)
    assert err.value.code == "invalid_shipment_transition"
    assert "allowed:" in err.value.message


def test_table_shape() -> None:
    assert set(TRANSITIONS) == set(ShipmentStatus)
    assert {S.DELIVERED, S.RETURNED, S.CANCELLED} == TERMINAL
    assert all(s not in targets for s, targets in TRANSITIONS.items())  # no self loops
    assert all(S.CANCELLED in TRANSITIONS[s] for s in IN_WAREHOUSE)
    assert not any(S.CANCELLED in TRANSITIONS[s] for s in set(ShipmentStatus) - IN_WAREHOUSE)


# --------------------------------------------------------------------------- create / waybill
def test_create_computes_expected_weight_and_records_event() -> None:
    s = shipment()
    assert (s.status, s.version, s.expected_weight_g, s.last_progress_at) == (S.CREATED, 1, 800, T0)
    (event,) = s.events
    assert isinstance(event, ShipmentCreated)
    assert event.subject == ("shipment", "shp_1") and event.audit_action() == "shipment.created"
    assert event.payload()["order_id"] == "ord_1"
    json.dumps(event.payload())


@pytest.mark.parametrize(("bad", "field"), [
    ([], "lines"),
    ([ShipmentLine(line_no=1, sku="A", quantity=0)], "lines[0].quantity"),
    ([ShipmentLine(line_no=1, sku="A", quantity=1), ShipmentLine(line_no=1, sku="B", quantity=1)], "lines[1].line_no"),
    ([ShipmentLine(line_no=1, sku=" ", quantity=1)], "lines[0].sku"),
    ([ShipmentLine(line_no=1, sku="A", quantity=1, picked=1)], "lines[0]"),
])
def test_create_rejects_bad_lines(bad: list[ShipmentLine], field: str) -> None:
    with pytest.raises(InvalidShipment) as err:
        shipment(lines=bad)
    assert err.value.field == field and err.value.code == "invalid_shipment"


def test_create_rejects_naive_time() -> None:
    with pytest.raises(InvalidTime):
        shipment(now=datetime(2026, 1, 1))  # naive: the point of the test


def test_issue_waybill_is_idempotent_and_refuses_a_different_number() -> None:
    s = shipment()
    assert s.issue_waybill("SF100", now=T0 + timedelta(minutes=1)) is True
    assert (s.status, s.version, s.waybill_no) == (S.WAYBILL_ISSUED, 2, "SF100")
    assert isinstance(s.events[-1], WaybillIssued) and s.events[-1].statuses() == ("created", "waybill_issued")
    assert s.issue_waybill("SF100", now=T0 + timedelta(minutes=2)) is False
    assert s.version == 2
    with pytest.raises(InvalidShipment):
        s.issue_waybill("SF999", now=T0)
    assert s.waybill_no == "SF100"


# --------------------------------------------------------------------------- scans
def test_happy_path_with_gift_line() -> None:
    s = with_waybill()
    r = do(s, ScanStep.PICK, "6901234000011")
    assert (r.status, r.line_no, r.version) == (S.PICKING, 1, 3)
    assert s.events[-1].statuses() == ("waybill_issued", "picking")
    r = do(s, ScanStep.PICK, "6901234000011")
    assert (r.status, s.fully_picked) == (S.PICKING, False)  # the gift is still missing
    assert s.next_step == "pick"
    r = do(s, ScanStep.PICK, "GIFT-CUP")  # a gift has no barcode of its own: the SKU is scanned
    assert (r.status, r.line_no) == (S.PICKED, 2)
    assert all(line.picked == line.quantity for line in s.lines)
    assert s.events[-1].statuses() == ("picking", "picked")
    assert s.next_step == "verify"
    do(s, ScanStep.VERIFY, "6901234000011", quantity=2)
    assert (status(s), s.fully_verified) == (S.PICKED, False)
    do(s, ScanStep.VERIFY, "GIFT-CUP")
    assert (status(s), s.fully_verified, s.next_step) == (S.PICKED, True, "pack")
    assert do(s, ScanStep.PACK).status is S.PACKED
    assert s.next_step == "weigh"
    r = do(s, ScanStep.WEIGH, weight_g=820)
    assert (r.status, r.flags, s.weight_g, s.weight_flagged) == (S.PACKED, (), 820, False)
    r = do(s, ScanStep.HANDOVER)
    assert r.status is S.HANDED_OVER and s.handed_over_at == T0 + timedelta(minutes=5)
    assert s.version == 10
    assert next_step(s) is None
    scanned = [e for e in s.events if isinstance(e, ShipmentScanned)]
    assert [e.step for e in scanned] == ["pick", "pick", "pick", "verify", "verify", "pack", "weigh", "handover"]
    assert scanned[-1].payload()["order_id"] == "ord_1" and scanned[-1].audit_action() == "shipment.scanned"
    assert scanned[3].statuses() == (None, None)  # verify doesn't change the status
    json.dumps(s.snapshot())


def assert_rejected(s: Shipment, sc: Scan) -> ScanRejected:
    before = state(s)
    with pytest.raises(ScanRejected) as err:
        s.scan(sc, now=T0 + timedelta(minutes=6), tolerance=TOL)
    assert state(s) == before  # nothing changed, version included
    assert err.value.code == "scan_rejected"
    return err.value


def test_wrong_barcode_lists_what_is_expected() -> None:
    s = with_waybill()
    err = assert_rejected(s, scan(ScanStep.PICK, "999"))
    assert err.expected == {"barcodes": {"6901234000011": 2, "GIFT-CUP": 1}}
    assert "6901234000011 × 2" in err.message


def test_over_quantity_is_rejected_with_remaining() -> None:
    s = with_waybill()
    do(s, ScanStep.PICK, "6901234000011")
    err = assert_rejected(s, scan(ScanStep.PICK, "6901234000011", quantity=2))
    assert err.expected == {"barcode": "6901234000011", "remaining": 1}
    do(s, ScanStep.PICK, "6901234000011")
    err = assert_rejected(s, scan(ScanStep.PICK, "6901234000011"))
    assert err.expected == {"barcodes": {"GIFT-CUP": 1}}


@pytest.mark.parametrize("bad", [0, -1])
def test_quantity_must_be_positive(bad: int) -> None:
    assert_rejected(with_waybill(), scan(ScanStep.PICK, "GIFT-CUP", quantity=bad))


def test_step_out_of_order_names_status_and_next_step() -> None:
    s = with_waybill()
    err = assert_rejected(s, scan(ScanStep.PACK))
    assert err.expected == {"step": "pick", "status": "waybill_issued"}
    assert "waybill_issued" in err.message and "'pick'" in err.message
    p = packed(weight=None)
    err = assert_rejected(p, scan(ScanStep.HANDOVER))
    assert err.expected["step"] == "weigh"
    err = assert_rejected(p, scan(ScanStep.PICK, "GIFT-CUP"))
    assert err.expected == {"step": "weigh", "status": "packed"}


def test_pack_requires_every_line_verified() -> None:
    s = with_waybill()
    do(s, ScanStep.PICK, "6901234000011", quantity=2)
    do(s, ScanStep.PICK, "GIFT-CUP")
    do(s, ScanStep.VERIFY, "6901234000011", quantity=2)
    err = assert_rejected(s, scan(ScanStep.PACK))
    assert "line 2 (GIFT-CUP, gift): 0/1 verified" in err.message
    assert err.expected == {"step": "verify", "barcodes": {"GIFT-CUP": 1}, "lines": [2]}


def test_verify_only_what_was_picked() -> None:
    s = with_waybill()
    do(s, ScanStep.PICK, "6901234000011", quantity=2)
    do(s, ScanStep.PICK, "GIFT-CUP")
    do(s, ScanStep.VERIFY, "GIFT-CUP")
    assert_rejected(s, scan(ScanStep.VERIFY, "GIFT-CUP"))
    err = assert_rejected(s, scan(ScanStep.VERIFY, "6901234000011", quantity=3))
    assert err.expected == {"barcode": "6901234000011", "remaining": 2}


def test_scan_before_waybill_is_rejected() -> None:
    s = shipment()
    err = assert_rejected(s, scan(ScanStep.PICK, "GIFT-CUP"))
    assert err.expected["step"] == "issue_waybill" and "no waybill yet" in err.message


def test_weigh_needs_a_positive_weight() -> None:
    s = packed(weight=None)
    for bad in (None, 0, -5):
        err = assert_rejected(s, scan(ScanStep.WEIGH, weight_g=bad))
        assert err.field == "weight_g"


def test_weight_out_of_tolerance_is_flagged_and_cleared_by_a_good_reweigh() -> None:
    s = packed(weight=None)
    r = do(s, ScanStep.WEIGH, weight_g=1000)  # expected 800: 200 g off, tolerance max(50, 80)
    assert r.flags == ("weight_out_of_tolerance",) and s.weight_flagged and s.weight_g == 1000
    assert s.events[-1].payload()["flags"] == ["weight_out_of_tolerance"]
    r = do(s, ScanStep.WEIGH, weight_g=870, n=1)
    assert r.flags == () and not s.weight_flagged


def test_flagged_weight_still_hands_over_carrying_the_flag() -> None:
    s = packed(weight=2000)
    assert do(s, ScanStep.HANDOVER).flags == ("weight_out_of_tolerance",)
    assert s.status is S.HANDED_OVER


@pytest.mark.parametrize(("expected", "actual", "ok"), [
    (800, 880, True), (800, 881, False), (800, 720, True), (800, 719, False),
    (100, 150, True), (100, 151, False), (0, 50, True), (10_000, 11_000, True), (10_000, 11_001, False),
])
def test_weight_tolerance(expected: int, actual: int, ok: bool) -> None:
    assert WeightTolerance(percent=10, min_grams=50).allows(expected, actual) is ok


def test_closed_shipment_refuses_scans() -> None:
    s = handed_over()
    before = state(s)
    with pytest.raises(ShipmentClosed) as err:
        s.scan(scan(ScanStep.WEIGH, weight_g=800), now=NOW, tolerance=TOL)
    assert err.value.code == "shipment_closed" and state(s) == before
    c = with_waybill()
    c.cancel("buyer cancelled", now=T0)
    with pytest.raises(ShipmentClosed):
        c.scan(scan(ScanStep.PICK, "GIFT-CUP"), now=NOW, tolerance=TOL)


def test_future_scan_time_is_refused() -> None:
    s = with_waybill()
    ahead = Scan(scan_id="s1", step=ScanStep.PICK, operator="op1", device_id="dev1",
                 occurred_at=T0 + timedelta(hours=1), barcode="GIFT-CUP")
    with pytest.raises(InvalidTime):
        s.scan(ahead, now=T0, tolerance=TOL)
    assert s.version == 2


# --------------------------------------------------------------------------- cancel
def test_cancel_before_handover_only() -> None:
    s = with_waybill()
    assert s.cancel("out of stock", now=T0 + timedelta(hours=1)) is True
    assert (s.status, s.cancel_reason) == (S.CANCELLED, "out of stock")
    assert isinstance(s.events[-1], ShipmentCancelled) and s.events[-1].statuses() == ("waybill_issued", "cancelled")
    assert s.cancel("again", now=T0) is False
    h = handed_over()
    with pytest.raises(InvalidShipmentTransition):
        h.cancel("too late", now=NOW)
    assert h.status is S.HANDED_OVER


# --------------------------------------------------------------------------- tracking
def test_tracking_in_order() -> None:
    s = handed_over()
    assert s.apply_tracking(track(Milestone.IN_TRANSIT, T0 + timedelta(hours=2)), now=NOW) is TrackingOutcome.APPLIED
    assert (status(s), s.milestone, s.last_event_at) == (S.IN_TRANSIT, Milestone.IN_TRANSIT, T0 + timedelta(hours=2))
    ev = s.events[-1]
    assert isinstance(ev, TrackingUpdated) and ev.statuses() == ("handed_over", "in_transit")
    assert ev.payload()["order_id"] == "ord_1" and ev.audit_action() == "shipment.tracking_updated"
    assert s.apply_tracking(track(Milestone.OUT_FOR_DELIVERY, T0 + timedelta(hours=20)), now=NOW) \
        is TrackingOutcome.APPLIED
    assert s.apply_tracking(track(Milestone.ATTEMPT_FAIL, T0 + timedelta(hours=22)), now=NOW) \
        is TrackingOutcome.APPLIED
    assert status(s) is S.OUT_FOR_DELIVERY and s.events[-1].statuses() == (None, None)
    assert s.apply_tracking(track(Milestone.IN_TRANSIT, T0 + timedelta(hours=23)), now=NOW) is TrackingOutcome.APPLIED
    assert status(s) is S.IN_TRANSIT  # re-routed after the failed attempt
    assert s.apply_tracking(track(Milestone.DELIVERED, T0 + timedelta(hours=30)), now=NOW) is TrackingOutcome.APPLIED
    assert (status(s), s.delivered_at, s.is_open) == (S.DELIVERED, T0 + timedelta(hours=30), False)


def test_stale_event_is_recorded_not_applied() -> None:
    s = handed_over()
    s.apply_tracking(track(Milestone.OUT_FOR_DELIVERY, T0 + timedelta(hours=5)), now=NOW)
    version = s.version
    out = s.apply_tracking(track(Milestone.IN_TRANSIT, T0 + timedelta(hours=3)), now=NOW)
    assert out is TrackingOutcome.STALE
    assert (status(s), s.milestone, s.version) == (S.OUT_FOR_DELIVERY, Milestone.OUT_FOR_DELIVERY, version)
    ev = s.events[-1]
    assert isinstance(ev, TrackingUpdated) and ev.outcome == "stale" and ev.reason_text()


def test_late_delivered_is_applied_and_nothing_moves_a_delivered_shipment() -> None:
    s = handed_over()
    s.apply_tracking(track(Milestone.OUT_FOR_DELIVERY, T0 + timedelta(hours=10)), now=NOW)
    out = s.apply_tracking(track(Milestone.DELIVERED, T0 + timedelta(hours=9)), now=NOW)
    assert out is TrackingOutcome.APPLIED and s.status is S.DELIVERED
    assert s.delivered_at == T0 + timedelta(hours=9) and s.last_event_at == T0 + timedelta(hours=10)
    version = s.version
    out = s.apply_tracking(track(Milestone.IN_TRANSIT, T0 + timedelta(hours=12)), now=NOW)
    assert out is TrackingOutcome.IGNORED and s.status is S.DELIVERED and s.version == version
    assert s.events[-1].payload()["outcome"] == "ignored"
    assert s.apply_tracking(track(Milestone.DELIVERED, T0 + timedelta(hours=9)), now=NOW) is TrackingOutcome.UNCHANGED


def test_same_milestone_newer_counts_as_progress_without_an_event() -> None:
    s = handed_over()
    s.apply_tracking(track(Milestone.IN_TRANSIT, T0 + timedelta(hours=2)), now=T0 + timedelta(hours=2))
    s.raise_stall(1, now=T0 + timedelta(hours=5))
    events, version = len(s.events), s.version
    six = T0 + timedelta(hours=6)
    out = s.apply_tracking(track(Milestone.IN_TRANSIT, six, code="HUB2"), now=six)
    assert out is TrackingOutcome.UNCHANGED
    assert (s.stall_level, s.last_progress_at, s.last_event_at) == (0, T0 + timedelta(hours=6), T0 + timedelta(hours=6))
    assert len(s.events) == events and s.version == version + 1
    # the exact repeat changes nothing at all
    assert s.apply_tracking(track(Milestone.IN_TRANSIT, T0 + timedelta(hours=6)), now=NOW) is TrackingOutcome.UNCHANGED
    assert s.version == version + 1


def test_carrier_event_before_handover_scan_is_an_implicit_handover() -> None:
    s = packed()
    at = T0 + timedelta(hours=1)
    out = s.apply_tracking(track(Milestone.IN_TRANSIT, at), now=NOW)
    assert out is TrackingOutcome.APPLIED
    assert (status(s), s.handed_over_at) == (S.IN_TRANSIT, at)
    ev = s.events[-1]
    assert isinstance(ev, TrackingUpdated) and ev.implicit_handover and ev.statuses() == ("packed", "in_transit")
    assert "handed over" in (ev.reason_text() or "")
    with pytest.raises(ShipmentClosed):  # the late handover scan finds it gone
        s.scan(scan(ScanStep.HANDOVER), now=NOW, tolerance=TOL)


def test_info_received_before_handover_is_not_a_handover() -> None:
    s = with_waybill()
    assert s.apply_tracking(track(Milestone.INFO_RECEIVED, T0 + timedelta(minutes=30)), now=NOW) \
        is TrackingOutcome.APPLIED
    assert (status(s), s.milestone, s.handed_over_at) == (S.WAYBILL_ISSUED, Milestone.INFO_RECEIVED, None)


def test_tracking_without_waybill_is_refused() -> None:
    s = shipment()
    with pytest.raises(InvalidShipmentTransition):
        s.apply_tracking(track(Milestone.IN_TRANSIT, T0), now=NOW)
    assert s.version == 1 and s.milestone is None


def test_returning_and_returned_sub_statuses() -> None:
    s = handed_over()
    s.apply_tracking(track(Milestone.IN_TRANSIT, T0 + timedelta(hours=1)), now=NOW)
    s.apply_tracking(track(Milestone.EXCEPTION, T0 + timedelta(hours=2), RETURNING), now=NOW)
    assert status(s) is S.RETURNING
    # the return leg's own in-transit scans leave it returning
    assert s.apply_tracking(track(Milestone.IN_TRANSIT, T0 + timedelta(hours=3)), now=NOW) is TrackingOutcome.APPLIED
    assert (status(s), s.milestone) == (S.RETURNING, Milestone.IN_TRANSIT)
    s.apply_tracking(track(Milestone.EXCEPTION, T0 + timedelta(hours=9), RETURNED), now=NOW)
    assert status(s) is S.RETURNED and not s.is_open


def test_delivered_while_returning_means_returned() -> None:
    assert status_for(Milestone.DELIVERED, "Delivered_001", S.RETURNING) is S.RETURNED
    assert status_for(Milestone.DELIVERED, "Delivered_001", S.IN_TRANSIT) is S.DELIVERED
    assert status_for(Milestone.EXPIRED, "Expired_001", S.IN_TRANSIT) is S.EXCEPTION
    assert status_for(Milestone.AVAILABLE_FOR_PICKUP, "AvailableForPickup_001", S.IN_TRANSIT) is S.OUT_FOR_DELIVERY
    assert status_for(Milestone.INFO_RECEIVED, "InfoReceived_001", S.PACKED) is None


def test_exception_then_recovery() -> None:
    s = handed_over()
    s.apply_tracking(track(Milestone.EXCEPTION, T0 + timedelta(hours=1)), now=NOW)
    assert status(s) is S.EXCEPTION
    s.apply_tracking(track(Milestone.OUT_FOR_DELIVERY, T0 + timedelta(hours=2)), now=NOW)
    assert status(s) is S.OUT_FOR_DELIVERY


def test_future_carrier_time_is_refused() -> None:
    s = handed_over()
    with pytest.raises(InvalidTime):
        s.apply_tracking(track(Milestone.IN_TRANSIT, NOW + timedelta(hours=1)), now=NOW)


# --------------------------------------------------------------------------- stalls
def test_raise_stall_only_upward_and_level_three_flags_compensation() -> None:
    s = handed_over()
    since = s.last_progress_at
    assert s.raise_stall(2, now=NOW) is True
    ev = s.events[-1]
    assert isinstance(ev, ShipmentStalled) and ev.level == 2 and ev.since == since and not ev.compensation
    assert s.raise_stall(1, now=NOW) is False and s.raise_stall(2, now=NOW) is False
    assert s.raise_stall(3, now=NOW) is True and s.compensation_flag
    with pytest.raises(InvalidShipment):
        s.raise_stall(4, now=NOW)


def test_closed_shipment_never_stalls() -> None:
    s = handed_over()
    s.apply_tracking(track(Milestone.DELIVERED, T0 + timedelta(hours=9)), now=NOW)
    assert s.raise_stall(3, now=NOW) is False and s.stall_level == 0


def test_all_errors_are_domain_errors() -> None:
    for cls in (InvalidShipment, InvalidShipmentTransition, ScanRejected, ShipmentClosed):
        assert issubclass(cls, DomainError)

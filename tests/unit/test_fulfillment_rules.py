"""Fulfillment rules around shipments: stall levels, account locks, offline sync versions, and
a property test of random scan sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderhub.domain.errors import DomainError, InvalidPolicy
from orderhub.domain.events import OperatorLocked
from orderhub.domain.fulfillment.devices import (
    AccountLockPolicy,
    devices_in_window,
    should_lock,
    version_conflict,
)
from orderhub.domain.fulfillment.shipment import Scan, Shipment, ShipmentLine, WeightTolerance
from orderhub.domain.fulfillment.stalls import StallPolicy, escalate
from orderhub.domain.fulfillment.states import TERMINAL, LineKind, ScanStep, ShipmentStatus, is_allowed
from orderhub.domain.fulfillment.tracking import TrackingUpdate
from orderhub.domain.tracking.milestones import RETURNED, RETURNING, SUB_STATUS_PREFIX, Milestone

T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def hours(h: float) -> datetime:
    return T0 + timedelta(hours=h)


# --------------------------------------------------------------------------- stall policy
def test_default_policy_levels() -> None:
    policy = StallPolicy()
    due = [policy.level_due(Milestone.IN_TRANSIT, T0, hours(h)) for h in (0, 1.99, 2, 5.9, 6, 23.9, 24, 100)]
    assert due == [0, 0, 1, 1, 2, 2, 3, 3]


def test_per_milestone_thresholds_fall_back_to_default() -> None:
    policy = StallPolicy.from_mapping({"in_transit": [12, 24, 72], "default": [1, 2, 3]})
    assert policy.level_due(Milestone.IN_TRANSIT, T0, hours(11)) == 0
    assert policy.level_due(Milestone.IN_TRANSIT, T0, hours(30)) == 2
    assert policy.level_due(Milestone.EXCEPTION, T0, hours(2)) == 2
    assert policy.level_due(None, T0, hours(3)) == 3  # still in the warehouse: default
    assert StallPolicy.from_mapping({}).hours_for(Milestone.DELIVERED) == (2, 6, 24)


def test_level_due_converts_time_zones() -> None:
    shanghai = T0.astimezone(ZoneInfo("Asia/Shanghai"))
    assert StallPolicy().level_due(None, shanghai, hours(6)) == 2


@pytest.mark.parametrize(("body", "field"), [
    ({"in_transit": [2, 2, 24]}, "stall_hours.in_transit[1]"),
    ({"in_transit": [2, 6, 0]}, "stall_hours.in_transit[2]"),
    ({"in_transit": [0, 6, 24]}, "stall_hours.in_transit[0]"),
    ({"in_transit": [2, "6", 24]}, "stall_hours.in_transit[1]"),
    ({"in_transit": [2, 6]}, "stall_hours.in_transit"),
    ({"in_transit": "2,6,24"}, "stall_hours.in_transit"),
    ({"teleported": [1, 2, 3]}, "stall_hours.teleported"),
])
def test_stall_policy_validation_names_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidPolicy) as err:
        StallPolicy.from_mapping(body)
    assert err.value.field == field and err.value.code == "invalid_policy"
    assert issubclass(InvalidPolicy, DomainError)


def moving_shipment() -> Shipment:
    s = Shipment.create(id="shp_1", tenant_id="t", order_id="o", warehouse="W", carrier="sf", service=None,
                        routing_rule=None, wave=None, priority=0, now=T0,
                        lines=[ShipmentLine(line_no=1, sku="A", quantity=1)])
    s.issue_waybill("SF1", now=T0)
    s.apply_tracking(TrackingUpdate(code="30", milestone=Milestone.IN_TRANSIT, sub_status="InTransit_001",
                                    occurred_at=T0), now=T0)
    return s


def test_escalate_walks_up_the_levels_and_progress_resets() -> None:
    policy = StallPolicy.from_mapping({"in_transit": [12, 24, 72]})
    s = moving_shipment()
    assert escalate(s, policy, now=hours(11)) is False
    assert escalate(s, policy, now=hours(25)) is True and s.stall_level == 2
    assert escalate(s, policy, now=hours(26)) is False
    s.apply_tracking(TrackingUpdate(code="40", milestone=Milestone.OUT_FOR_DELIVERY, sub_status="OutForDelivery_001",
                                    occurred_at=hours(30)), now=hours(30))
    assert (s.stall_level, s.last_progress_at) == (0, hours(30))
    assert escalate(s, policy, now=hours(200)) is True
    assert (s.stall_level, s.compensation_flag) == (3, True)  # default thresholds for out_for_delivery
    assert s.events[-1].payload()["milestone"] == "out_for_delivery"


# --------------------------------------------------------------------------- account lock
def test_should_lock_counts_distinct_devices_in_the_window() -> None:
    policy = AccountLockPolicy()
    now = hours(1)
    seen = [("a", now - timedelta(minutes=9)), ("a", now), ("b", now - timedelta(minutes=5))]
    assert should_lock(policy, seen, now) is False
    assert should_lock(policy, [*seen, ("c", now - timedelta(minutes=10))], now) is True
    assert should_lock(policy, [*seen, ("c", now - timedelta(minutes=11))], now) is False  # outside the window
    assert should_lock(policy, [*seen, ("c", now + timedelta(minutes=1))], now) is False   # not yet
    assert should_lock(AccountLockPolicy(enabled=False), [*seen, ("c", now)], now) is False
    assert devices_in_window(policy, [*seen, ("c", now)], now) == ("a", "b", "c")


def test_account_lock_policy_from_mapping() -> None:
    policy = AccountLockPolicy.from_mapping({"devices": 2, "window_minutes": 5, "enabled": True})
    assert (policy.devices, policy.window, policy.window_minutes) == (2, timedelta(minutes=5), 5)
    assert AccountLockPolicy.from_mapping({}) == AccountLockPolicy()
    bad: list[tuple[dict[str, object], str]] = [
        ({"devices": 1}, "account_lock.devices"), ({"window_minutes": 0}, "account_lock.window_minutes"),
        ({"enabled": "yes"}, "account_lock.enabled"), ({"devcies": 3}, "account_lock.devcies")]
    for body, field in bad:
        with pytest.raises(InvalidPolicy) as err:
            AccountLockPolicy.from_mapping(body)
        assert err.value.field == field


def test_operator_locked_event() -> None:
    ev = OperatorLocked(tenant_id="t", operator="op1", devices=("a", "b", "c"), window_minutes=10, occurred_at=T0)
    assert ev.subject == ("operator", "op1") and ev.audit_action() == "operator.locked"
    assert ev.payload() == {"operator": "op1", "devices": ["a", "b", "c"], "window_minutes": 10}


# --------------------------------------------------------------------------- sync versions
@pytest.mark.parametrize(("seen", "current", "base", "conflict"), [
    (5, 5, None, False),   # first scan of the batch, nobody changed it
    (5, 6, 5, False),      # later scans of the batch: only the batch's own first scan happened
    (5, 9, 5, False),      # … however many the batch applied
    (5, 6, None, True),    # someone else changed it before this batch touched it
    (4, 6, 5, True),       # the device's copy was already behind when the batch began
    (7, 6, None, True),    # the device claims a version the shipment never had
    (6, 6, 5, False),
])
def test_version_conflict_truth_table(seen: int, current: int, base: int | None, conflict: bool) -> None:
    assert version_conflict(seen, current, base) is conflict


# --------------------------------------------------------------------------- property
BARCODES = ["A", "B", "GIFT", "NOPE"]
# Each action either follows the shipment's next step (so sequences get far along the flow) or
# is an arbitrary scan, often a wrong one.
actions = st.tuples(st.booleans(), st.sampled_from(list(ScanStep)), st.sampled_from([*BARCODES, None]),
                    st.sampled_from([1] * 8 + [2, 4, 0, -1]), st.one_of(st.none(), st.integers(-10, 3000)))


def _follow(s: Shipment, weight: int | None) -> tuple[ScanStep, str | None, int | None]:
    step = ScanStep(s.next_step or "pick")
    verify = step is ScanStep.VERIFY
    open_codes = [line.scan_code for line in s.lines
                  if (line.picked - line.verified if verify else line.quantity - line.picked) > 0]
    return step, (open_codes[0] if open_codes else None), (weight if weight and weight > 0 else 500)


@settings(max_examples=300, deadline=None)
@given(st.lists(actions, min_size=10, max_size=60))
def test_random_scans_never_overcount_and_never_lower_the_version(
        sequence: list[tuple[bool, ScanStep, str | None, int, int | None]]) -> None:
    s = Shipment.create(
        id="shp_p", tenant_id="t", order_id="o", warehouse="W", carrier=None, service=None, routing_rule=None,
        wave=None, priority=0, now=T0,
        lines=[ShipmentLine(line_no=1, sku="A", quantity=2, unit_weight_g=100),
               ShipmentLine(line_no=2, sku="B", quantity=1, unit_weight_g=300),
               ShipmentLine(line_no=3, sku="GIFT", quantity=1, kind=LineKind.GIFT),
               ShipmentLine(line_no=4, sku="A2", barcode="A", quantity=1, kind=LineKind.PROMO)])
    s.issue_waybill("W1", now=T0)
    version = s.version
    for i, (follow, drawn_step, drawn_barcode, quantity, drawn_weight) in enumerate(sequence):
        step, barcode, weight = drawn_step, drawn_barcode, drawn_weight
        if follow and s.next_step is not None:
            step, barcode, weight = _follow(s, drawn_weight)
        sc = Scan(scan_id=f"s{i}", step=step, operator="op", device_id="d", occurred_at=T0, barcode=barcode,
                  quantity=quantity, weight_g=weight)
        try:
            result = s.scan(sc, now=T0, tolerance=WeightTolerance())
        except DomainError:
            assert s.version == version  # a refused scan changes nothing
        else:
            assert result.version == s.version == version + 1
            assert result.status is s.status
        version = s.version
        for line in s.lines:
            assert 0 <= line.verified <= line.picked <= line.quantity
        if s.status in (ShipmentStatus.PICKED, ShipmentStatus.PACKED, ShipmentStatus.HANDED_OVER):
            assert s.fully_picked
        if s.status in (ShipmentStatus.PACKED, ShipmentStatus.HANDED_OVER):
            assert s.fully_verified
        if s.status is ShipmentStatus.HANDED_OVER:
            assert s.weight_g is not None and s.handed_over_at is not None


TRACK_EVENTS = st.tuples(st.sampled_from(list(Milestone)), st.sampled_from(["_001", "_002", "RETURNING", "RETURNED"]),
                         st.integers(0, 200))


@settings(max_examples=200, deadline=None)
@given(st.lists(TRACK_EVENTS, max_size=25))
def test_random_tracking_never_reopens_and_last_event_never_goes_back(
        sequence: list[tuple[Milestone, str, int]]) -> None:
    s = moving_shipment()
    now = hours(300)
    for milestone, suffix, hour in sequence:
        sub = {"RETURNING": RETURNING, "RETURNED": RETURNED}.get(suffix, SUB_STATUS_PREFIX[milestone] + suffix)
        before, last = s.status, s.last_event_at
        s.apply_tracking(TrackingUpdate(code="c", milestone=milestone, sub_status=sub, occurred_at=hours(hour)),
                         now=now)
        if before in TERMINAL:
            assert s.status is before
        assert s.status is before or is_allowed(before, s.status)
        assert last is not None and s.last_event_at is not None and s.last_event_at >= last

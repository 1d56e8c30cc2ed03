"""Properties of the order state machine over random event sequences.

Events are drawn with keys from a small pool (so duplicates and key reuse happen often) and
with random ``occurred_at`` around a clock that only moves forward in fixed steps (so events
arrive late, early and out of order). No real clock is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from orderhub.domain.errors import EventKeyReused, InvalidTime, InvalidTransition, VersionMismatch
from orderhub.domain.events import OrderEventApplied, OrderEventIgnoredStale
from orderhub.domain.orders.model import ApplyOutcome, Order, OrderEvent
from orderhub.domain.orders.states import PROGRESS_RANK, TRANSITIONS, OrderEventType, OrderStatus, PaymentStatus
from tests.unit.factories import T0, order, snapshot

SETTINGS = settings(max_examples=200, derandomize=True, database=None, deadline=None)

E = OrderEventType
# Mostly orders that still have a way to go, so streams don't end in a final status at once.
CREATABLE = st.sampled_from([OrderStatus.PENDING_PAYMENT] * 4 + [OrderStatus.PAID] * 3
                            + sorted(set(OrderStatus) - {OrderStatus.ON_HOLD}))
KEYS = st.one_of(st.none(), st.sampled_from([f"k{i}" for i in range(8)]))
OFFSETS = st.integers(min_value=-180, max_value=180)  # minutes around the current clock
# Every event type, weighted towards the ones that keep an order moving (cancel is final).
EVENT_TYPES = st.sampled_from([E.MARK_PAID, E.READY_TO_SHIP, E.SHIP_PARTIAL, E.SHIP, E.DELIVER] * 3
                              + [E.HOLD, E.RELEASE] * 3 + [E.COMPLETE, E.CANCEL])
PAID_STATUSES = {OrderStatus.PAID, OrderStatus.READY_TO_SHIP, OrderStatus.PARTIALLY_SHIPPED,
                 OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED}


@dataclass(frozen=True)
class Step:
    type: OrderEventType
    key: str | None
    offset: int
    reason: str | None = None


STEPS = st.builds(Step, type=EVENT_TYPES, key=KEYS, offset=OFFSETS,
                  reason=st.sampled_from([None, "risk review", "买家要求"]))


def check_applied_event(event: OrderEventApplied) -> None:
    """An applied change is a transition the table allows (or a payment recorded while held),
    and never moves the order back along the progress ranks."""
    before, after = OrderStatus(event.from_status), OrderStatus(event.to_status)
    if before is after:
        assert (before, event.event_type) == (OrderStatus.ON_HOLD, OrderEventType.MARK_PAID.value), event
    else:
        assert after in TRANSITIONS[before], f"{before} -> {after} is not in the table ({event})"
    if before in PROGRESS_RANK and after in PROGRESS_RANK:
        assert PROGRESS_RANK[after] >= PROGRESS_RANK[before], event


def check_order(o: Order) -> None:
    """Invariants that hold for an order after any sequence of events."""
    assert o.status in TRANSITIONS
    assert (o.held_from is not None) == (o.status is OrderStatus.ON_HOLD)
    if o.held_from is not None:
        assert o.held_from in TRANSITIONS and OrderStatus.ON_HOLD in TRANSITIONS[o.held_from]
    if o.status in PAID_STATUSES:
        assert o.payment_status is PaymentStatus.PAID and o.paid_at is not None
    applied = [e for e in o.events if isinstance(e, OrderEventApplied)]
    stale = [e for e in o.events if isinstance(e, OrderEventIgnoredStale)]
    for event in applied:
        check_applied_event(event)
    # Every version bump is explained by exactly one recorded event, in order.
    assert o.version == 1 + len(applied) + len(stale)
    assert [e.version for e in applied] == sorted(e.version for e in applied)
    assert o.conflict_count == len(stale)
    assert [e.conflict_count for e in stale] == list(range(1, len(stale) + 1))
    if applied:
        assert applied[-1].to_status == o.status.value


def apply_step(o: Order, step: Step, now_minutes: int) -> ApplyOutcome | None:
    """Apply ``step`` and check what the outcome says against what changed. None = rejected."""
    now = T0 + timedelta(minutes=now_minutes)
    event = OrderEvent(type=step.type, occurred_at=now + timedelta(minutes=step.offset), key=step.key,
                       reason=step.reason)
    before = snapshot(o)
    try:
        # Our clock is never behind the event's own time (events from the future are refused).
        outcome = o.apply(event, now=max(now, event.occurred_at))
    except (InvalidTransition, EventKeyReused, InvalidTime):
        assert snapshot(o) == before, "a rejected event changed the order"
        return None
    new_events = o.events[len(before["events"]):]
    if outcome is ApplyOutcome.DUPLICATE:
        assert any(k.startswith(f"{step.key}\x1f") for k in before["applied_event_keys"])
        assert snapshot(o) == before
    elif outcome is ApplyOutcome.UNCHANGED:
        assert (o.status, o.version, o.conflict_count, new_events) == (
            before["status"], before["version"], before["conflict_count"], [])
    elif outcome is ApplyOutcome.IGNORED_STALE:
        assert (o.status, o.version, o.conflict_count) == (
            before["status"], before["version"] + 1, before["conflict_count"] + 1)
        assert len(new_events) == 1 and isinstance(new_events[0], OrderEventIgnoredStale)
    else:
        assert outcome is ApplyOutcome.APPLIED
        assert (o.version, o.conflict_count) == (before["version"] + 1, before["conflict_count"])
        assert len(new_events) == 1 and isinstance(new_events[0], OrderEventApplied)
        assert new_events[0].version == o.version
    if step.key is not None:
        assert step.key in o.used_event_keys()
    return outcome


class OrderMachine(RuleBasedStateMachine):
    """Random event streams against one order, checking the invariants after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.order: Order = order()
        self.minute = 0
        self.applied_keyed: list[Step] = []

    @initialize(status=CREATABLE)
    def create(self, status: OrderStatus) -> None:
        self.order = order(status)

    @rule(step=STEPS)
    def apply_event(self, step: Step) -> None:
        self.minute += 7
        outcome = apply_step(self.order, step, self.minute)
        if outcome is not None and step.key is not None:
            self.applied_keyed.append(step)

    @rule(wrong=st.integers(min_value=-2, max_value=50), step=STEPS)
    def apply_with_wrong_expected_version(self, wrong: int, step: Step) -> None:
        if wrong == self.order.version or step.key in self.order.used_event_keys():
            return  # a matching version, or a duplicate key (checked before the version), applies normally
        before = snapshot(self.order)
        event = OrderEvent(type=step.type, occurred_at=T0, key=step.key, expected_version=wrong)
        try:
            self.order.apply(event, now=T0 + timedelta(minutes=self.minute))
        except VersionMismatch:
            pass
        else:  # pragma: no cover - reported as a failure
            raise AssertionError("a stale expected_version was accepted")
        assert snapshot(self.order) == before

    @precondition(lambda self: bool(self.applied_keyed))
    @rule(data=st.data())
    def replay_an_applied_event(self, data: st.DataObject) -> None:
        step = data.draw(st.sampled_from(self.applied_keyed))
        before = snapshot(self.order)
        self.minute += 7
        assert apply_step(self.order, step, self.minute) is ApplyOutcome.DUPLICATE
        assert snapshot(self.order) == before

    @invariant()
    def order_is_consistent(self) -> None:
        check_order(self.order)


OrderMachine.TestCase.settings = settings(SETTINGS, stateful_step_count=30)
TestOrderMachine = OrderMachine.TestCase


@SETTINGS
@given(status=CREATABLE, steps=st.lists(STEPS, max_size=40))
def test_replaying_every_applied_keyed_event_changes_nothing(status: OrderStatus, steps: list[Step]) -> None:
    o = order(status)
    applied: list[Step] = []
    for minute, step in enumerate(steps, start=1):
        if apply_step(o, step, minute * 5) is not None and step.key is not None:
            applied.append(step)
    check_order(o)
    state = (o.status, o.version, o.conflict_count, o.payment_status, o.held_from)
    events = len(o.events)
    for minute, step in enumerate(applied, start=len(steps) + 1):
        assert apply_step(o, step, minute * 5) is ApplyOutcome.DUPLICATE
    assert (o.status, o.version, o.conflict_count, o.payment_status, o.held_from) == state
    assert len(o.events) == events


@SETTINGS
@given(status=CREATABLE, steps=st.lists(STEPS, max_size=40))
def test_the_same_stream_gives_the_same_order(status: OrderStatus, steps: list[Step]) -> None:
    """Applying is a function of the order and the event: two replicas fed the same stream agree."""
    a, b = order(status), order(status)
    for minute, step in enumerate(steps, start=1):
        assert apply_step(a, step, minute * 5) == apply_step(b, step, minute * 5)
    assert snapshot(a) == snapshot(b)

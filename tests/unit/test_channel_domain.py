"""The channel gateway's pure domain: following a channel's reported status through the
order state table, the inbox and breaker state tables, the breaker policy, shop checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderhub.domain.channels.breaker import BreakerPolicy, BreakerState, breaker_transition
from orderhub.domain.channels.inbox import INBOX_TRANSITIONS, REPLAYABLE, InboxStatus, inbox_transition
from orderhub.domain.channels.shop import Shop
from orderhub.domain.errors import InvalidShop, InvalidTransition
from orderhub.domain.orders.model import ApplyOutcome, Order, OrderEvent
from orderhub.domain.orders.states import PROGRESS_RANK, OrderEventType, OrderStatus
from tests.unit.factories import T0, order

S = OrderStatus
LATER = T0 + timedelta(minutes=5)


def follow(o: Order, target: OrderStatus, key: str, at: timedelta = timedelta(minutes=1)) -> ApplyOutcome:
    return o.follow_channel(target, channel_status=f"raw-{target.value}", key=key, occurred_at=T0 + at, now=LATER)


@pytest.mark.parametrize(("target", "events"), [
    (S.PAID, ["mark_paid"]),
    (S.SHIPPED, ["mark_paid", "ship"]),
    (S.DELIVERED, ["mark_paid", "ship", "deliver"]),
    (S.COMPLETED, ["mark_paid", "ship", "deliver", "complete"]),
    (S.PARTIALLY_SHIPPED, ["mark_paid", "ship_partial"]),
    (S.READY_TO_SHIP, ["mark_paid", "ready_to_ship"]),
    (S.CANCELLED, ["cancel"]),
])
def test_a_pending_order_follows_the_channel_through_every_skipped_step(target: OrderStatus,
                                                                        events: list[str]) -> None:
    o = order(S.PENDING_PAYMENT)
    o.events.clear()
    assert follow(o, target, "in_1") is ApplyOutcome.APPLIED
    assert o.status is target
    assert [e.event_type for e in o.events] == events  # type: ignore[attr-defined]
    assert o.channel_status == f"raw-{target.value}"
    # Replaying the same message changes nothing.
    version = o.version
    assert follow(o, target, "in_1") in (ApplyOutcome.DUPLICATE, ApplyOutcome.UNCHANGED)
    assert o.version == version


def test_late_reports_are_stale_conflicts_and_never_move_the_order_back() -> None:
    o = order(S.PAID)
    follow(o, S.SHIPPED, "in_2")
    assert follow(o, S.PAID, "in_3") is ApplyOutcome.IGNORED_STALE
    assert follow(o, S.PENDING_PAYMENT, "in_4") is ApplyOutcome.IGNORED_STALE
    assert o.status is S.SHIPPED and o.conflict_count == 2
    # The same late unpaid report again is a duplicate, not a third conflict.
    assert follow(o, S.PENDING_PAYMENT, "in_4") is ApplyOutcome.DUPLICATE
    assert o.conflict_count == 2


def test_a_refused_channel_report_raises_and_leaves_the_order_alone() -> None:
    o = order(S.PAID)
    follow(o, S.SHIPPED, "in_5")
    version = o.version
    with pytest.raises(InvalidTransition):
        follow(o, S.CANCELLED, "in_6")
    assert o.status is S.SHIPPED and o.version == version


def test_a_held_order_is_not_moved_on_by_its_channel() -> None:
    o = order(S.PAID)
    o.apply(OrderEvent(type=OrderEventType.HOLD, occurred_at=T0 + timedelta(minutes=1), reason="filter rule 'x'"),
            now=LATER)
    assert follow(o, S.PAID, "in_7") is ApplyOutcome.UNCHANGED
    with pytest.raises(InvalidTransition):
        follow(o, S.SHIPPED, "in_8")


@given(st.lists(st.sampled_from([s for s in S if s is not S.ON_HOLD]), min_size=1, max_size=12))
def test_whatever_the_channel_sends_the_order_never_regresses(reports: list[OrderStatus]) -> None:
    o = order(S.PENDING_PAYMENT)
    best = PROGRESS_RANK[S.PENDING_PAYMENT]
    for n, target in enumerate(reports):
        before = o.status
        try:
            follow(o, target, f"in_{n}", at=timedelta(seconds=n + 1))
        except InvalidTransition:
            assert o.status is before
            continue
        if o.status is not S.CANCELLED:
            assert PROGRESS_RANK[o.status] >= best
            best = PROGRESS_RANK[o.status]


def test_inbox_table_allows_only_listed_moves() -> None:
    assert inbox_transition(InboxStatus.DEAD, InboxStatus.PENDING) is InboxStatus.PENDING
    with pytest.raises(InvalidTransition, match="final state"):
        inbox_transition(InboxStatus.APPLIED, InboxStatus.PENDING)
    with pytest.raises(InvalidTransition):
        inbox_transition(InboxStatus.REJECTED, InboxStatus.PENDING)
    assert all(InboxStatus.PENDING in INBOX_TRANSITIONS[s] for s in REPLAYABLE)


def test_breaker_trips_on_daily_conflicts_or_one_order_jumping() -> None:
    policy = BreakerPolicy()
    quiet = dict(channel="jd", order_id="ord_1")
    assert policy.trip_reason(conflicts_today=15, order_conflicts=1, **quiet) is None
    assert "16 status conflicts" in (policy.trip_reason(conflicts_today=16, order_conflicts=1, **quiet) or "")
    assert "jumped status 4 times" in (policy.trip_reason(conflicts_today=2, order_conflicts=4, **quiet) or "")
    # Once past the line, the same order's next jump doesn't re-trip a resumed channel.
    assert policy.trip_reason(conflicts_today=2, order_conflicts=5, **quiet) is None
    assert breaker_transition(BreakerState.CLOSED, BreakerState.OPEN) is BreakerState.OPEN
    with pytest.raises(InvalidTransition, match="already closed"):
        breaker_transition(BreakerState.CLOSED, BreakerState.CLOSED)


@pytest.mark.parametrize(("changes", "field"), [
    ({"code": "has space"}, "code"), ({"code": ""}, "code"), ({"name": "  "}, "name"),
    ({"secret": "short"}, "secret"), ({"timezone": "Mars/Base"}, "timezone"),
])
def test_shop_validation_names_the_field(changes: dict[str, str], field: str) -> None:
    args = {"code": "tb-1", "name": "Tmall flagship", "secret": "s3cr3t-s3cr3t", "timezone": "Asia/Shanghai"}
    args.update(changes)
    with pytest.raises(InvalidShop) as caught:
        Shop.validate(**args)  # type: ignore[arg-type]
    assert caught.value.field == field

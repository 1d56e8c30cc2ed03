"""The order state machine: the transition table, order validation, and what each event does."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from orderhub.domain.errors import (
    CurrencyMismatch,
    DomainError,
    EventKeyReused,
    InvalidOrder,
    InvalidTime,
    InvalidTransition,
    UnknownOrderEvent,
    VersionMismatch,
)
from orderhub.domain.events import OrderCreated, OrderEventApplied, OrderEventIgnoredStale
from orderhub.domain.money import Money
from orderhub.domain.orders.model import MAX_LINES, MAX_QUANTITY, ApplyOutcome, Order, OrderEvent, OrderLine
from orderhub.domain.orders.states import (
    CONTROL_EVENTS,
    HOLDABLE,
    PROGRESS_RANK,
    PROGRESS_TARGET,
    TERMINAL,
    TRANSITIONS,
    OrderEventType,
    OrderStatus,
    PaymentStatus,
    is_backwards,
    parse_event_type,
    transition,
)
from tests.unit.factories import T0, line, order, snapshot

S = OrderStatus
E = OrderEventType


def ev(type_: OrderEventType, at: datetime = T0, **kw: Any) -> OrderEvent:
    return OrderEvent(type=type_, occurred_at=at, **kw)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


# --------------------------------------------------------------------------- the table
def test_every_status_is_in_the_table_and_targets_are_statuses() -> None:
    assert set(TRANSITIONS) == set(OrderStatus)
    for current, targets in TRANSITIONS.items():
        assert targets <= set(OrderStatus), current
        assert current not in targets, f"{current} lists itself as a target"


def test_terminal_statuses_have_no_exits() -> None:
    assert {S.COMPLETED, S.CANCELLED} == TERMINAL
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()
        for target in OrderStatus:
            with pytest.raises(InvalidTransition, match=r"allowed: none \(final status\)"):
                transition(status, target)


def test_the_table_matches_the_design() -> None:
    assert TRANSITIONS[S.PENDING_PAYMENT] == {S.PAID, S.ON_HOLD, S.CANCELLED}
    assert TRANSITIONS[S.SHIPPED] == {S.DELIVERED}
    assert TRANSITIONS[S.DELIVERED] == {S.COMPLETED}
    # Nothing can be cancelled once it has left the warehouse.
    for status in (S.PARTIALLY_SHIPPED, S.SHIPPED, S.DELIVERED, S.COMPLETED):
        assert S.CANCELLED not in TRANSITIONS[status]
    assert {S.PENDING_PAYMENT, S.PAID, S.READY_TO_SHIP} == HOLDABLE
    # Side states carry no progress rank; every other status does.
    assert set(PROGRESS_RANK) == set(OrderStatus) - {S.ON_HOLD, S.CANCELLED}
    assert set(PROGRESS_TARGET) | CONTROL_EVENTS == set(OrderEventType)
    assert not set(PROGRESS_TARGET) & CONTROL_EVENTS


@pytest.mark.parametrize(("current", "target"), [(c, t) for c in OrderStatus for t in OrderStatus])
def test_transition_follows_the_table(current: OrderStatus, target: OrderStatus) -> None:
    if target in TRANSITIONS[current]:
        assert transition(current, target) is target
        return
    with pytest.raises(InvalidTransition) as info:
        transition(current, target)
    message = str(info.value)
    assert f"{current.value!r} can't move to {target.value!r}" in message
    assert info.value.field == "type"
    assert info.value.code == "invalid_transition"
    if TRANSITIONS[current]:
        listed = message.split("allowed: ", 1)[1].split(", ")
        assert listed == sorted(t.value for t in TRANSITIONS[current])


def test_is_backwards() -> None:
    assert is_backwards(S.SHIPPED, S.PAID)
    assert is_backwards(S.COMPLETED, S.DELIVERED)
    assert not is_backwards(S.PAID, S.SHIPPED)
    assert not is_backwards(S.PAID, S.PAID)
    assert not is_backwards(S.ON_HOLD, S.PAID)
    assert is_backwards(S.CANCELLED, S.PAID)
    assert not is_backwards(S.CANCELLED, S.CANCELLED)


def test_parse_event_type() -> None:
    assert parse_event_type("ship") is E.SHIP
    with pytest.raises(UnknownOrderEvent, match="expected one of: mark_paid, hold") as info:
        parse_event_type("teleport")
    assert info.value.field == "type"


# --------------------------------------------------------------------------- creation
def test_create_builds_the_canonical_order() -> None:
    o = order(S.PAID, lines=[line(1, quantity=2, unit_price="59.90", discount="10.00", tax="1.50"),
                             line(2, sku="CUP-1", quantity=1, unit_price="20")],
              shipping_fee="8.00", discount="5.00", tags=("express", "gift", "express"),
              placed_at=datetime(2026, 11, 21, 10, 0, tzinfo=timezone(timedelta(hours=8))))
    assert o.subtotal == Money(11980 - 1000 + 150 + 2000, "CNY")
    assert o.total == Money(13130 + 800 - 500, "CNY")
    assert o.tags == ("express", "gift")
    assert o.placed_at == T0 and o.placed_at.utcoffset() == timedelta(0)
    assert o.payment_status is PaymentStatus.PAID and o.paid_at == T0
    assert o.version == 1 and o.conflict_count == 0 and o.held_from is None
    [created] = o.events
    assert isinstance(created, OrderCreated)
    assert (created.status, created.total_minor, created.currency) == ("paid", 13430, "CNY")
    assert created.snapshot["lines"][0] == {"sku": "TEA-001", "quantity": 2, "unit_price": 5990,
                                            "discount": 1000, "tax": 150}


def test_order_id_is_deterministic() -> None:
    assert order().id == order().id
    assert order().id != order(external_id="WEB-10002").id
    assert order().id != order(tenant_id="ten_other").id


def test_pending_payment_order_is_unpaid_and_cancelled_order_has_cancel_time() -> None:
    pending = order(S.PENDING_PAYMENT)
    assert pending.payment_status is PaymentStatus.UNPAID and pending.paid_at is None
    cancelled = order(S.CANCELLED, now=at(5))
    assert cancelled.cancelled_at == at(5) and cancelled.payment_status is PaymentStatus.UNPAID


def build_line(**overrides: Any) -> OrderLine:
    kwargs: dict[str, Any] = {"sku": "TEA-001", "title": None, "quantity": 1, "unit_price": Money(5990, "CNY"),
                              "discount": Money(0, "CNY"), "tax": Money(0, "CNY"), "currency": "CNY"}
    kwargs.update(overrides)
    return OrderLine.build(3, **kwargs)


@pytest.mark.parametrize(("overrides", "field"), [
    ({"sku": ""}, "lines[2].sku"),
    ({"sku": "   "}, "lines[2].sku"),
    ({"sku": None}, "lines[2].sku"),
    ({"quantity": 0}, "lines[2].quantity"),
    ({"quantity": -1}, "lines[2].quantity"),
    ({"quantity": True}, "lines[2].quantity"),
    ({"quantity": 1.0}, "lines[2].quantity"),
    ({"quantity": MAX_QUANTITY + 1}, "lines[2].quantity"),
    ({"unit_price": Money(-1, "CNY")}, "lines[2].unit_price"),
    ({"tax": Money(-1, "CNY")}, "lines[2].tax"),
    ({"discount": Money(-1, "CNY")}, "lines[2].discount"),
    ({"discount": Money(5991, "CNY")}, "lines[2].discount"),
    ({"quantity": 2, "discount": Money(11981, "CNY")}, "lines[2].discount"),
    ({"unit_price": Money(5990, "USD")}, "lines[2].unit_price"),
    ({"discount": Money(0, "USD")}, "lines[2].discount"),
    ({"tax": Money(0, "JPY")}, "lines[2].tax"),
])
def test_invalid_line_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidOrder) as info:
        build_line(**overrides)
    assert info.value.field == field
    assert str(info.value).startswith(field + ":")
    assert info.value.code == "invalid_order"


def test_valid_line_edge_cases() -> None:
    full_discount = build_line(quantity=2, discount=Money(11980, "CNY"))
    assert full_discount.total == Money(0, "CNY")
    assert build_line(sku="  TEA-001 ").sku == "TEA-001"
    assert build_line(unit_price=Money(0, "CNY")).total == Money(0, "CNY")  # free gift lines exist
    assert build_line(quantity=MAX_QUANTITY).quantity == MAX_QUANTITY


@pytest.mark.parametrize(("overrides", "error", "field"), [
    ({"lines": []}, InvalidOrder, "lines"),
    ({"lines": [line(i + 1) for i in range(MAX_LINES + 1)]}, InvalidOrder, "lines"),
    ({"status": S.ON_HOLD}, InvalidOrder, "status"),
    ({"channel": ""}, InvalidOrder, "channel"),
    ({"shop": "  "}, InvalidOrder, "shop"),
    ({"external_id": ""}, InvalidOrder, "external_id"),
    ({"shipping_fee": Money(-1, "CNY")}, InvalidOrder, "shipping_fee"),
    ({"shipping_fee": Money(800, "USD")}, InvalidOrder, "shipping_fee"),
    ({"discount": Money(0, "USD")}, InvalidOrder, "discount"),
    ({"discount": Money(-100, "CNY")}, InvalidOrder, "discount"),
    # One line of 2 × 59.90 plus 8.00 shipping: 127.81 off is more than there is.
    ({"shipping_fee": Money(800, "CNY"), "discount": Money(12781, "CNY")}, InvalidOrder, "discount"),
    ({"placed_at": datetime(2026, 11, 21, 10, 0)}, InvalidTime, "placed_at"),  # naive on purpose
    ({"paid_at": datetime(2026, 11, 21, 10, 0)}, InvalidTime, "paid_at"),
    ({"now": datetime(2026, 11, 21, 10, 0)}, InvalidTime, "now"),
])
def test_invalid_order_names_the_field(overrides: dict[str, Any], error: type[DomainError], field: str) -> None:
    with pytest.raises(error) as info:
        order(**overrides)
    assert info.value.field == field
    assert isinstance(info.value, DomainError)


def test_order_discount_equal_to_everything_is_allowed() -> None:
    assert order(shipping_fee="8.00", discount="127.80").total == Money(0, "CNY")


def test_line_in_another_currency_than_the_order_is_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        order(currency="CNY", lines=[line(currency="USD")])


# --------------------------------------------------------------------------- applying events
def applied(o: Order) -> list[OrderEventApplied]:
    return [e for e in o.events if isinstance(e, OrderEventApplied)]


def test_happy_path_moves_forward_and_stamps_times() -> None:
    o = order(S.PENDING_PAYMENT)
    steps = [(E.MARK_PAID, S.PAID), (E.READY_TO_SHIP, S.READY_TO_SHIP), (E.SHIP_PARTIAL, S.PARTIALLY_SHIPPED),
             (E.SHIP, S.SHIPPED), (E.DELIVER, S.DELIVERED), (E.COMPLETE, S.COMPLETED)]
    for n, (type_, status) in enumerate(steps, start=1):
        assert o.apply(ev(type_, at(n), key=f"k{n}"), now=at(n)) is ApplyOutcome.APPLIED
        assert o.status is status and o.version == n + 1 and o.updated_at == at(n)
        assert o.status_changed_at == at(n)
    assert (o.paid_at, o.shipped_at, o.delivered_at, o.completed_at) == (at(1), at(3), at(5), at(6))
    assert o.payment_status is PaymentStatus.PAID
    assert [(e.from_status, e.to_status, e.version, e.event_key) for e in applied(o)] == [
        ("pending_payment", "paid", 2, "k1"), ("paid", "ready_to_ship", 3, "k2"),
        ("ready_to_ship", "partially_shipped", 4, "k3"), ("partially_shipped", "shipped", 5, "k4"),
        ("shipped", "delivered", 6, "k5"), ("delivered", "completed", 7, "k6")]
    assert [k.split("\x1f")[0] for k in o.new_event_keys] == ["k1", "k2", "k3", "k4", "k5", "k6"]


def test_same_key_twice_is_a_duplicate_and_changes_nothing() -> None:
    o = order(S.PENDING_PAYMENT)
    assert o.apply(ev(E.MARK_PAID, key="pay-1"), now=at(1)) is ApplyOutcome.APPLIED
    before = snapshot(o)
    assert o.apply(ev(E.MARK_PAID, at(2), key="pay-1"), now=at(2)) is ApplyOutcome.DUPLICATE
    # A different event type under an already-used key is a mistake, not a replay: refused.
    for type_ in (E.CANCEL, E.SHIP):
        with pytest.raises(EventKeyReused, match="pay-1"):
            o.apply(ev(type_, at(2), key="pay-1"), now=at(2))
    assert snapshot(o) == before


def test_event_to_the_current_status_is_unchanged_but_remembers_its_key() -> None:
    o = order(S.PAID)
    assert o.apply(ev(E.MARK_PAID, key="pay-again"), now=at(1)) is ApplyOutcome.UNCHANGED
    assert (o.status, o.version, o.conflict_count, o.updated_at) == (S.PAID, 1, 0, T0)
    assert "pay-again" in o.used_event_keys() and len(o.new_event_keys) == 1
    assert applied(o) == []
    assert o.apply(ev(E.MARK_PAID, key="pay-again"), now=at(1)) is ApplyOutcome.DUPLICATE


def test_stale_progress_event_is_ignored_and_counted() -> None:
    o = order(S.PAID)
    o.apply(ev(E.SHIP, at(1)), now=at(1))
    assert o.apply(ev(E.MARK_PAID, at(2), key="late"), now=at(2)) is ApplyOutcome.IGNORED_STALE
    assert o.apply(ev(E.READY_TO_SHIP, at(3)), now=at(3)) is ApplyOutcome.IGNORED_STALE
    assert (o.status, o.conflict_count, o.version) == (S.SHIPPED, 2, 4)
    stale = [e for e in o.events if isinstance(e, OrderEventIgnoredStale)]
    assert [(e.current_status, e.requested_status, e.conflict_count, e.event_key) for e in stale] == [
        ("shipped", "paid", 1, "late"), ("shipped", "ready_to_ship", 2, None)]
    assert "late" in o.used_event_keys()
    assert o.apply(ev(E.MARK_PAID, at(4), key="late"), now=at(4)) is ApplyOutcome.DUPLICATE
    assert o.conflict_count == 2


@pytest.mark.parametrize(("start", "type_"), [
    (S.PENDING_PAYMENT, E.SHIP), (S.PENDING_PAYMENT, E.READY_TO_SHIP), (S.PAID, E.DELIVER),
    (S.PAID, E.COMPLETE), (S.SHIPPED, E.COMPLETE), (S.PARTIALLY_SHIPPED, E.COMPLETE),
])
def test_skipping_ahead_is_an_invalid_transition_that_changes_nothing(start: OrderStatus,
                                                                      type_: OrderEventType) -> None:
    o = order(start)
    before = snapshot(o)
    with pytest.raises(InvalidTransition, match="allowed: "):
        o.apply(ev(type_, at(1), key="k"), now=at(1))
    assert snapshot(o) == before
    assert "k" not in o.used_event_keys()


def hold_state(o: Order) -> tuple[object, ...]:
    return (o.status, o.held_from, o.hold_reason, o.version)


@pytest.mark.parametrize("held_from", [S.PENDING_PAYMENT, S.PAID, S.READY_TO_SHIP])
def test_hold_and_release_return_to_the_held_from_status(held_from: OrderStatus) -> None:
    o = order(S.PAID if held_from is not S.PENDING_PAYMENT else S.PENDING_PAYMENT)
    if held_from is S.READY_TO_SHIP:
        o.apply(ev(E.READY_TO_SHIP), now=T0)
    version = o.version
    assert o.apply(ev(E.HOLD, at(1), reason="risk review"), now=at(1)) is ApplyOutcome.APPLIED
    assert hold_state(o) == (S.ON_HOLD, held_from, "risk review", version + 1)
    assert o.apply(ev(E.HOLD, at(2), reason="again"), now=at(2)) is ApplyOutcome.UNCHANGED
    assert hold_state(o) == (S.ON_HOLD, held_from, "risk review", version + 1)
    assert o.apply(ev(E.RELEASE, at(3)), now=at(3)) is ApplyOutcome.APPLIED
    assert hold_state(o) == (held_from, None, None, version + 2)
    assert [(e.event_type, e.from_status, e.to_status) for e in applied(o)][-2:] == [
        ("hold", held_from.value, "on_hold"), ("release", "on_hold", held_from.value)]


def test_hold_without_reason_is_manual() -> None:
    o = order(S.PAID)
    o.apply(ev(E.HOLD), now=T0)
    assert o.hold_reason == "manual"


@pytest.mark.parametrize("status", [S.PARTIALLY_SHIPPED, S.SHIPPED, S.DELIVERED, S.COMPLETED, S.CANCELLED])
def test_hold_is_refused_where_the_table_forbids_it(status: OrderStatus) -> None:
    o = order(status)
    before = snapshot(o)
    with pytest.raises(InvalidTransition, match="can't move to 'on_hold'"):
        o.apply(ev(E.HOLD, at(1)), now=at(1))
    assert snapshot(o) == before


def test_release_of_an_order_that_is_not_held_is_refused() -> None:
    o = order(S.PAID)
    before = snapshot(o)
    with pytest.raises(InvalidTransition, match="not on hold; nothing to release") as info:
        o.apply(ev(E.RELEASE, key="r"), now=at(1))
    assert info.value.field == "type"
    assert snapshot(o) == before


def test_payment_arriving_while_held_is_recorded_and_the_hold_stays() -> None:
    o = order(S.PENDING_PAYMENT)
    o.apply(ev(E.HOLD, at(1), reason="address problem"), now=at(1))
    assert o.apply(ev(E.MARK_PAID, at(2), key="pay"), now=at(2)) is ApplyOutcome.APPLIED
    assert (o.status, o.payment_status, o.paid_at, o.held_from) == (S.ON_HOLD, PaymentStatus.PAID, at(2), S.PAID)
    assert o.version == 3
    last = applied(o)[-1]
    assert (last.event_type, last.from_status, last.to_status, last.version) == ("mark_paid", "on_hold", "on_hold", 3)
    assert o.apply(ev(E.MARK_PAID, at(3), key="pay-2"), now=at(3)) is ApplyOutcome.UNCHANGED
    assert o.apply(ev(E.RELEASE, at(4)), now=at(4)) is ApplyOutcome.APPLIED
    assert o.status is S.PAID  # released to where the order is now, not where it was held


@pytest.mark.parametrize(("held_from", "type_"), [
    (S.PENDING_PAYMENT, E.READY_TO_SHIP), (S.PAID, E.READY_TO_SHIP), (S.PAID, E.SHIP),
    (S.READY_TO_SHIP, E.SHIP_PARTIAL), (S.READY_TO_SHIP, E.SHIP), (S.PAID, E.DELIVER),
])
def test_progress_events_cannot_bypass_a_hold(held_from: OrderStatus, type_: OrderEventType) -> None:
    o = order(S.PENDING_PAYMENT if held_from is S.PENDING_PAYMENT else S.PAID)
    if held_from is S.READY_TO_SHIP:
        o.apply(ev(E.READY_TO_SHIP), now=T0)
    o.apply(ev(E.HOLD, at(1), reason="risk review"), now=at(1))
    before = snapshot(o)
    with pytest.raises(InvalidTransition, match=r"on hold \(risk review\); release it"):
        o.apply(ev(type_, at(2), key="channel-1"), now=at(2))
    assert snapshot(o) == before


def test_progress_event_to_the_held_from_status_is_unchanged() -> None:
    o = order(S.PAID)
    o.apply(ev(E.READY_TO_SHIP), now=T0)
    o.apply(ev(E.HOLD, at(1)), now=at(1))
    assert o.apply(ev(E.READY_TO_SHIP, at(2)), now=at(2)) is ApplyOutcome.UNCHANGED
    assert (o.status, o.held_from, o.version) == (S.ON_HOLD, S.READY_TO_SHIP, 3)


@pytest.mark.parametrize("status", [S.PENDING_PAYMENT, S.PAID, S.READY_TO_SHIP])
def test_cancel_before_shipping(status: OrderStatus) -> None:
    o = order(S.PAID if status is S.READY_TO_SHIP else status)
    if status is S.READY_TO_SHIP:
        o.apply(ev(E.READY_TO_SHIP), now=T0)
    assert o.apply(ev(E.CANCEL, at(1), reason="buyer request"), now=at(1)) is ApplyOutcome.APPLIED
    assert (o.status, o.cancelled_at, o.cancel_reason) == (S.CANCELLED, at(1), "buyer request")
    assert o.apply(ev(E.CANCEL, at(2)), now=at(2)) is ApplyOutcome.UNCHANGED
    assert o.cancel_reason == "buyer request"


def test_cancel_while_held_ends_the_hold() -> None:
    o = order(S.PAID)
    o.apply(ev(E.HOLD, at(1), reason="risk"), now=at(1))
    assert o.apply(ev(E.CANCEL, at(2), reason="fraud"), now=at(2)) is ApplyOutcome.APPLIED
    assert (o.status, o.held_from, o.hold_reason, o.cancel_reason) == (S.CANCELLED, None, None, "fraud")
    with pytest.raises(InvalidTransition):
        o.apply(ev(E.RELEASE, at(3)), now=at(3))


@pytest.mark.parametrize("status", [S.PARTIALLY_SHIPPED, S.SHIPPED, S.DELIVERED, S.COMPLETED])
def test_cancel_after_ship_is_rejected(status: OrderStatus) -> None:
    o = order(status)
    before = snapshot(o)
    with pytest.raises(InvalidTransition, match="can't move to 'cancelled'"):
        o.apply(ev(E.CANCEL, at(1), key="c"), now=at(1))
    assert snapshot(o) == before


@pytest.mark.parametrize("type_", sorted(PROGRESS_TARGET))
def test_event_that_happened_before_the_cancel_is_stale(type_: OrderEventType) -> None:
    o = order(S.PAID)
    o.apply(ev(E.CANCEL, at(10)), now=at(10))
    for occurred in (at(5), at(10)):  # before, or at the same instant as, the cancel
        assert o.apply(ev(type_, occurred), now=at(11)) is ApplyOutcome.IGNORED_STALE
    assert (o.status, o.conflict_count) == (S.CANCELLED, 2)


@pytest.mark.parametrize("type_", sorted(PROGRESS_TARGET))
def test_event_that_happened_after_the_cancel_is_an_invalid_transition(type_: OrderEventType) -> None:
    o = order(S.PAID)
    o.apply(ev(E.CANCEL, at(10)), now=at(10))
    before = snapshot(o)
    with pytest.raises(InvalidTransition, match="'cancelled' can't move to"):
        o.apply(ev(type_, at(11), key="after"), now=at(12))
    assert snapshot(o) == before


@pytest.mark.parametrize("expected", [0, 2, 99])
def test_expected_version_mismatch_raises_and_changes_nothing(expected: int) -> None:
    o = order(S.PENDING_PAYMENT)
    before = snapshot(o)
    with pytest.raises(VersionMismatch, match=f"at version 1, not {expected}") as info:
        o.apply(ev(E.MARK_PAID, key="pay", expected_version=expected), now=at(1))
    assert info.value.field == "expected_version"
    assert snapshot(o) == before


def test_expected_version_match_applies() -> None:
    o = order(S.PENDING_PAYMENT)
    assert o.apply(ev(E.MARK_PAID, expected_version=1), now=at(1)) is ApplyOutcome.APPLIED
    assert o.version == 2


def test_naive_times_are_refused_before_anything_changes() -> None:
    o = order(S.PAID)
    before = snapshot(o)
    naive = datetime(2026, 11, 21, 10, 0)  # naive on purpose
    with pytest.raises(InvalidTime) as info:
        o.apply(ev(E.SHIP, naive, key="k"), now=at(1))
    assert info.value.field == "occurred_at"
    with pytest.raises(InvalidTime):
        o.apply(ev(E.SHIP, at(1), key="k"), now=naive)
    assert snapshot(o) == before


def test_event_times_are_stored_in_utc() -> None:
    o = order(S.PAID)
    shanghai = datetime(2026, 11, 21, 12, 0, tzinfo=timezone(timedelta(hours=8)))
    o.apply(ev(E.SHIP, shanghai), now=shanghai)
    assert o.shipped_at == at(120) and o.shipped_at.utcoffset() == timedelta(0)
    assert o.updated_at == at(120) and o.updated_at.utcoffset() == timedelta(0)

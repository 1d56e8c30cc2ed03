"""The after-sale domain without a database: the case status table, the actions each status
allows, refundable amounts (a property: however cases are asked for, the refunds of an
order never add up to more than was paid, per line or in total) and SLA levels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderhub.domain.aftersale.amounts import Committed, LineRequest, PaidLine, plan_case, remaining
from orderhub.domain.aftersale.case import AfterSaleCase, Decision, Option, SlaPolicy
from orderhub.domain.aftersale.states import (
    TERMINAL,
    TRANSITIONS,
    AfterSaleStatus,
    AfterSaleType,
    PolicyAction,
    SlaLevel,
    transition,
)
from orderhub.domain.errors import (
    ActionNotAllowed,
    InvalidAfterSale,
    InvalidCaseTransition,
    RefundExceedsRemaining,
)

NOW = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
LINES = [PaidLine(1, "TEA-001", 2, 11980), PaidLine(2, "TEA-002", 1, 3000)]
PAID = 14980
S = AfterSaleStatus


def _case(case_type: AfterSaleType = AfterSaleType.REFUND_ONLY, amount: int = 5000) -> AfterSaleCase:
    return AfterSaleCase.open(case_id="as_1", tenant_id="t", order_id="o", channel="own_site", shop="main",
                              type=case_type, reason="changed_mind", currency="CNY", amount=amount,
                              lines=(), source="api", now=NOW, sla=SlaPolicy())


def test_every_status_is_in_the_table_and_terminal_ones_lead_nowhere() -> None:
    assert set(TRANSITIONS) == set(AfterSaleStatus)
    assert {S.REFUNDED, S.RESOLVED, S.REJECTED, S.CANCELLED} == TERMINAL
    with pytest.raises(InvalidCaseTransition, match="allowed: none"):
        transition(S.REFUNDED, S.REFUNDING)
    with pytest.raises(InvalidCaseTransition, match="can't move to 'awaiting_return'"):
        transition(S.REQUESTED, S.AWAITING_RETURN)


def test_refund_only_goes_straight_to_refunding_and_never_expects_a_parcel() -> None:
    case = _case()
    case.decide(Decision(PolicyAction.AUTO_APPROVE, rule="unshipped_auto"), now=NOW)
    assert case.status is S.REFUNDING and case.return_parcel is None
    assert [e.action for e in case.events] == ["requested", "decided", "approved", "refunding"]
    with pytest.raises(ActionNotAllowed) as refused:
        case.return_shipped(carrier="sf", waybill_no="SF1", now=NOW)
    assert refused.value.allowed == ("retry_refund",)
    assert case.refunded(ref="R1", amount=5000, via="gateway", now=NOW) is True
    assert case.refunded(ref="R1", amount=5000, via="gateway", now=NOW) is False  # confirmed twice: once


def test_return_refund_waits_for_the_parcel_then_refunds() -> None:
    case = _case(AfterSaleType.RETURN_REFUND)
    case.approve(now=NOW, by="ops")
    assert case.status is S.AWAITING_RETURN and case.return_parcel is not None
    case.return_shipped(carrier="sf", waybill_no="SF123", now=NOW)
    case.receive_return([{"sku": "TEA-001", "quantity": 1, "condition": "sellable"}], warehouse="HZ1", now=NOW,
                        by="wh")
    assert case.status.value == "refunding"


def test_negotiation_choices_apply() -> None:
    options = (Option("half", "partial_refund", percent=50), Option("reship", "reship"),
               Option("points", "points", points=500))
    half = _case(amount=5999)
    half.decide(Decision(PolicyAction.NEGOTIATE, rule="quiet", options=options), now=NOW)
    assert half.status is S.NEGOTIATING
    half.choose("half", now=NOW, by="buyer")
    assert (half.status, half.amount) == (S.REFUNDING, 2999)
    reship = _case()
    reship.negotiate(options, now=NOW, by="ops")
    reship.choose("reship", now=NOW, by="buyer")
    assert (reship.status, reship.type, reship.amount) == (S.APPROVED, AfterSaleType.RESHIP, 0)
    points = _case()
    points.negotiate(options, now=NOW, by="ops")
    points.choose("points", now=NOW, by="buyer")
    assert points.status is S.RESOLVED and "500 points" in (points.resolution or "")
    with pytest.raises(ActionNotAllowed):
        _case().choose("half", now=NOW, by="buyer")


def test_reject_needs_a_reason_and_a_closed_case_takes_no_action() -> None:
    case = _case()
    with pytest.raises(InvalidAfterSale):
        case.reject(reason="  ", now=NOW)
    case.reject(reason="outside the return window", now=NOW)
    with pytest.raises(ActionNotAllowed, match="none \\(the case is closed\\)"):
        case.check_action("approve")


def test_line_level_and_partial_amounts() -> None:
    left = remaining(PAID, LINES, [])
    amount, lines = plan_case(AfterSaleType.REFUND_ONLY, paid_lines=LINES, left=left, amount=None,
                              requested=[LineRequest(None, "TEA-001", 1)])
    assert amount == 5990 and lines[0].amount == 5990
    left = remaining(PAID, LINES, [Committed(amount, lines)])
    # The second unit takes what is left of the line, to the cent.
    amount, lines = plan_case(AfterSaleType.REFUND_ONLY, paid_lines=LINES, left=left, amount=None,
                              requested=[LineRequest(1, None, 1)])
    assert amount == 5990
    left = remaining(PAID, LINES, [Committed(5990, lines), Committed(5990, lines)])
    assert left.order == 3000 and left.lines[1] == (0, 0)
    with pytest.raises(InvalidAfterSale, match="0 of 2 left"):
        plan_case(AfterSaleType.REFUND_ONLY, paid_lines=LINES, left=left, amount=None,
                  requested=[LineRequest(1, None, 1)])
    with pytest.raises(RefundExceedsRemaining) as exc:
        plan_case(AfterSaleType.REFUND_ONLY, paid_lines=LINES, left=left, amount=3001, requested=[])
    assert exc.value.remaining == 3000
    amount, lines = plan_case(AfterSaleType.EXCHANGE, paid_lines=LINES, left=left, amount=None, requested=[])
    assert amount == 0 and [(cl.sku, cl.quantity) for cl in lines] == [("TEA-002", 1)]


def test_sla_levels_by_the_hour() -> None:
    sla = SlaPolicy(12, 24, 36)
    assert sla.level_at(NOW, NOW + timedelta(hours=11, minutes=59)) is SlaLevel.NONE
    assert sla.level_at(NOW, NOW + timedelta(hours=12)) is SlaLevel.YELLOW
    assert sla.level_at(NOW, NOW + timedelta(hours=30)) is SlaLevel.ORANGE
    assert sla.level_at(NOW, NOW + timedelta(days=3)) is SlaLevel.RED
    case = _case()
    assert case.escalate(SlaLevel.ORANGE, now=NOW) is True
    assert case.escalate(SlaLevel.YELLOW, now=NOW) is False  # never lowered
    case.negotiate((Option("half", "partial_refund", percent=50),), now=NOW, by="ops")
    assert case.escalate(SlaLevel.RED, now=NOW) is False  # the buyer's turn


_requests = st.lists(st.one_of(
    st.tuples(st.just("amount"), st.integers(min_value=1, max_value=20000)),
    st.tuples(st.just("line"), st.sampled_from([1, 2]), st.integers(min_value=1, max_value=3),
              st.one_of(st.none(), st.integers(min_value=0, max_value=12000))),
    st.tuples(st.just("rest"))), max_size=12)


@settings(max_examples=300, deadline=None)
@given(_requests)
def test_refunds_never_add_up_to_more_than_was_paid(requests: list[tuple[object, ...]]) -> None:
    claims: list[Committed] = []
    for req in requests:
        left = remaining(PAID, LINES, claims)
        try:
            if req[0] == "amount":
                planned = plan_case(AfterSaleType.REFUND_ONLY, paid_lines=LINES, left=left, amount=int(req[1]),  # type: ignore[call-overload]
                                    requested=[])
            elif req[0] == "line":
                planned = plan_case(AfterSaleType.REFUND_ONLY, paid_lines=LINES, left=left, amount=None,
                                    requested=[LineRequest(int(req[1]), None, int(req[2]),  # type: ignore[call-overload]
                                                           None if req[3] is None else int(req[3]))])  # type: ignore[call-overload]
            else:
                planned = plan_case(AfterSaleType.REFUND_ONLY, paid_lines=LINES, left=left, amount=None, requested=[])
        except (InvalidAfterSale, RefundExceedsRemaining):
            continue
        claims.append(Committed(*planned))
        assert sum(c.amount for c in claims) <= PAID
        for line in LINES:
            claimed = [cl for c in claims for cl in c.lines if cl.line_no == line.line_no]
            assert sum(cl.amount for cl in claimed) <= line.total
            assert sum(cl.quantity for cl in claimed) <= line.quantity

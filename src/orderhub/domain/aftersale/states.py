"""The after-sale case status table (DESIGN.md §3), as data, and the one function that
changes a case's status; plus case types, policy actions and SLA levels.

The money path is ``requested → approved → (awaiting_return → return_received →)
refunding → refunded``. ``negotiating`` waits for the buyer to pick one of the offered
choices; ``rejected`` and ``cancelled`` end a case without money. Exchanges and reships
end in ``resolved``: the replacement went out and no money moved (an addition to the
status list of DESIGN.md §3, documented in docs/aftersale.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from orderhub.domain.errors import InvalidCaseTransition

# Tag of the zero-priced orders that carry exchange and reship replacements through fulfillment.
REPLACEMENT_TAG = "replacement"


class AfterSaleType(StrEnum):
    """What the buyer asks for."""

    REFUND_ONLY = "refund_only"            # 仅退款: money back, the goods stay with the buyer
    RETURN_REFUND = "return_refund"        # 退货退款: goods come back, then the money
    EXCHANGE = "exchange"                  # 换货: goods come back, a replacement goes out
    RESHIP = "reship"                      # 补发: a replacement goes out, nothing comes back
    PRICE_PROTECTION = "price_protection"  # 保价/退差价: part of the price back

    @property
    def moves_money(self) -> bool:
        """True for the types that end in a refund."""
        return self in (AfterSaleType.REFUND_ONLY, AfterSaleType.RETURN_REFUND, AfterSaleType.PRICE_PROTECTION)

    @property
    def needs_return(self) -> bool:
        """True for the types where the goods come back first. Never refund-only."""
        return self in (AfterSaleType.RETURN_REFUND, AfterSaleType.EXCHANGE)


class AfterSaleStatus(StrEnum):
    """Where a case is."""

    REQUESTED = "requested"
    NEGOTIATING = "negotiating"
    APPROVED = "approved"
    AWAITING_RETURN = "awaiting_return"
    RETURN_RECEIVED = "return_received"
    REFUNDING = "refunding"
    REFUNDED = "refunded"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class PolicyAction(StrEnum):
    """What the refund policy decides for a new case."""

    AUTO_APPROVE = "auto_approve"
    NEGOTIATE = "negotiate"
    MANUAL_REVIEW = "manual_review"
    REJECT = "reject"


class SlaLevel(StrEnum):
    """How overdue an open case is; each level has its own alert."""

    NONE = "none"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"

    @property
    def rank(self) -> int:
        """0 (none) … 3 (red): the queue sorts on it."""
        return _SLA_RANK[self]


_SLA_RANK = {SlaLevel.NONE: 0, SlaLevel.YELLOW: 1, SlaLevel.ORANGE: 2, SlaLevel.RED: 3}

C = AfterSaleStatus

# ``→ refunded`` from every open money status: the channel may settle a case on its own
# (platform arbitration, the seller's response window running out); the case follows it.
TRANSITIONS: Mapping[AfterSaleStatus, frozenset[AfterSaleStatus]] = {
    C.REQUESTED: frozenset({C.APPROVED, C.NEGOTIATING, C.REJECTED, C.CANCELLED, C.REFUNDED}),
    C.NEGOTIATING: frozenset({C.APPROVED, C.REQUESTED, C.REJECTED, C.CANCELLED, C.REFUNDED}),
    C.APPROVED: frozenset({C.AWAITING_RETURN, C.REFUNDING, C.RESOLVED, C.CANCELLED, C.REFUNDED}),
    C.AWAITING_RETURN: frozenset({C.RETURN_RECEIVED, C.CANCELLED, C.REFUNDED}),
    C.RETURN_RECEIVED: frozenset({C.REFUNDING, C.RESOLVED, C.REFUNDED}),
    C.REFUNDING: frozenset({C.REFUNDED}),
    C.REFUNDED: frozenset(),
    C.RESOLVED: frozenset(),
    C.REJECTED: frozenset(),
    C.CANCELLED: frozenset(),
}

TERMINAL: frozenset[AfterSaleStatus] = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
OPEN: frozenset[AfterSaleStatus] = frozenset(TRANSITIONS) - TERMINAL
# Statuses where the merchant owes the next step: the SLA clock runs. While negotiating or
# awaiting the return parcel the buyer owes it.
MERCHANT_TURN: frozenset[AfterSaleStatus] = frozenset({C.REQUESTED, C.APPROVED, C.RETURN_RECEIVED, C.REFUNDING})
# Statuses whose amount counts against what is left to refund on the order.
COMMITTED: frozenset[AfterSaleStatus] = frozenset(TRANSITIONS) - {C.REJECTED, C.CANCELLED}


def is_allowed(current: AfterSaleStatus, target: AfterSaleStatus) -> bool:
    """True when the table allows ``current`` → ``target``."""
    return target in TRANSITIONS[current]


def transition(current: AfterSaleStatus, target: AfterSaleStatus) -> AfterSaleStatus:
    """The one function that changes a case status: returns ``target`` or raises
    :class:`InvalidCaseTransition` naming the allowed targets."""
    if not is_allowed(current, target):
        allowed = ", ".join(sorted(t.value for t in TRANSITIONS[current])) or "none (final status)"
        raise InvalidCaseTransition(
            f"an after-sale case in status {current.value!r} can't move to {target.value!r}; allowed: {allowed}",
            field="status")
    return target

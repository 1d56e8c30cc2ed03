"""The channel circuit breaker (DESIGN.md §3): repeated status conflicts from one channel
park its new messages until an operator resumes it.

A *conflict* is a channel message that would move an order backwards ("status jumping") or
that the order's state table refuses. One is noise; many mean the channel (or its mapping)
is misbehaving, and applying more of its messages would spread the damage.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orderhub.domain.errors import InvalidTransition


class BreakerState(StrEnum):
    """Whether a channel's messages are applied (closed) or parked (open)."""

    CLOSED = "closed"
    OPEN = "open"


BREAKER_TRANSITIONS = {
    BreakerState.CLOSED: frozenset({BreakerState.OPEN}),
    BreakerState.OPEN: frozenset({BreakerState.CLOSED}),
}


def breaker_transition(current: BreakerState, target: BreakerState) -> BreakerState:
    """Return ``target`` if the breaker may move there from ``current``; raise InvalidTransition."""
    if target not in BREAKER_TRANSITIONS[current]:
        raise InvalidTransition(f"the channel breaker is already {current.value}", field="channel")
    return target


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When to trip: more than ``max_conflicts_per_day`` conflicts on a channel in one UTC
    day (counted afresh after an operator resumes the channel), or one order of the channel
    jumping more than ``max_jumps_per_order`` times (tripping once, when it crosses the
    line, so resuming isn't undone by that same order's next late message)."""

    max_conflicts_per_day: int = 15
    max_jumps_per_order: int = 3

    def trip_reason(self, *, channel: str, conflicts_today: int, order_id: str, order_conflicts: int) -> str | None:
        """Why the breaker should open now, or None when it should stay closed."""
        if conflicts_today > self.max_conflicts_per_day:
            return (f"{conflicts_today} status conflicts from {channel} today (more than "
                    f"{self.max_conflicts_per_day})")
        if order_conflicts == self.max_jumps_per_order + 1:
            return (f"order {order_id} from {channel} jumped status {order_conflicts} times (more than "
                    f"{self.max_jumps_per_order})")
        return None

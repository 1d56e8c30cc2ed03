"""The inbox's message states, as data, and the one function that changes them.

::

    received ─┬─► pending ──► in_progress ─┬─► applied     (mapped and applied to an order)
              │                            ├─► ignored     (not about an order: ping, other topic)
              │                            ├─► dead        (mapping failed: field path + reason kept)
              │                            ├─► parked      (the channel's breaker is open)
              │                            └─► pending     (retry later: e.g. status for an order not seen yet)
              └─► rejected                 (unreadable body: kept with the reason, never processed)

``dead`` and ``parked`` go back to ``pending`` by an operator (``orderhub inbox replay``,
``orderhub channels resume``). Nothing is ever deleted: the raw body stays with every state.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from orderhub.domain.errors import InvalidTransition


class InboxStatus(StrEnum):
    """Where a channel message is in the gateway."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    APPLIED = "applied"
    IGNORED = "ignored"
    DEAD = "dead"
    PARKED = "parked"
    REJECTED = "rejected"


class InboxSource(StrEnum):
    """How a message reached OrderHub; all share one dedup key."""

    WEBHOOK = "webhook"
    POLL = "poll"
    BACKFILL = "backfill"
    IMPORT = "import"


S = InboxStatus

INBOX_TRANSITIONS: Mapping[InboxStatus, frozenset[InboxStatus]] = {
    S.PENDING: frozenset({S.IN_PROGRESS}),
    S.IN_PROGRESS: frozenset({S.APPLIED, S.IGNORED, S.DEAD, S.PARKED, S.PENDING}),
    S.DEAD: frozenset({S.PENDING}),
    S.PARKED: frozenset({S.PENDING}),
    S.APPLIED: frozenset(),
    S.IGNORED: frozenset(),
    S.REJECTED: frozenset(),
}

# States an operator may send back through the normalizer.
REPLAYABLE: frozenset[InboxStatus] = frozenset({S.DEAD, S.PARKED})


def inbox_transition(current: InboxStatus, target: InboxStatus) -> InboxStatus:
    """Return ``target`` when the table allows ``current`` → ``target``; raise InvalidTransition."""
    if target not in INBOX_TRANSITIONS[current]:
        allowed = ", ".join(sorted(t.value for t in INBOX_TRANSITIONS[current])) or "none (final state)"
        raise InvalidTransition(f"an inbox message in state {current.value!r} can't move to {target.value!r}; "
                                f"allowed: {allowed}", field="status")
    return target

"""A tenant's inventory policy (rule set kind ``inventory_policy``): how long unpaid orders
hold stock, whether orders may be partly reserved or split across warehouses, allocation
weights and the channel stock feed. Stored and versioned like every rule set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from orderhub.domain.rules import RuleInvalid

KNOWN_KEYS = frozenset({"allow_partial", "allow_split", "unpaid_hold_minutes", "unpaid_hold_minutes_by_channel",
                        "allocation_weights", "channel_feed"})
MAX_HOLD_MINUTES = 7 * 24 * 60


def _minutes(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_HOLD_MINUTES:
        raise RuleInvalid(f"{where}: whole minutes from 1 to {MAX_HOLD_MINUTES}, got {value!r}", field=where)
    return value


@dataclass(frozen=True, slots=True)
class InventoryPolicy:
    """The parsed policy; :meth:`from_mapping` validates a stored body."""

    allow_partial: bool = False
    allow_split: bool = True
    unpaid_hold: timedelta = timedelta(minutes=15)
    unpaid_hold_by_channel: Mapping[str, timedelta] = field(default_factory=dict)
    allocation_weights: Mapping[str, Any] = field(default_factory=dict)
    channel_feed: Mapping[str, Any] = field(default_factory=dict)

    def hold_for(self, channel: str) -> timedelta:
        """How long an unpaid order from ``channel`` holds its stock."""
        return self.unpaid_hold_by_channel.get(channel, self.unpaid_hold)

    @staticmethod
    def from_mapping(body: Mapping[str, Any]) -> InventoryPolicy:
        """Validate a policy body; RuleInvalid names the offending field."""
        if not isinstance(body, Mapping):
            raise RuleInvalid("the inventory policy must be a JSON object", field="")
        unknown = sorted(set(body) - KNOWN_KEYS)
        if unknown:
            raise RuleInvalid(f"{unknown[0]}: unknown key; expected some of {', '.join(sorted(KNOWN_KEYS))}",
                              field=unknown[0])
        for name in ("allow_partial", "allow_split"):
            if name in body and not isinstance(body[name], bool):
                raise RuleInvalid(f"{name}: true or false, got {body[name]!r}", field=name)
        by_channel = body.get("unpaid_hold_minutes_by_channel", {}) or {}
        if not isinstance(by_channel, Mapping):
            raise RuleInvalid("unpaid_hold_minutes_by_channel: a map of channel → minutes",
                              field="unpaid_hold_minutes_by_channel")
        for name in ("allocation_weights", "channel_feed"):
            if name in body and not isinstance(body[name], Mapping):
                raise RuleInvalid(f"{name}: must be an object", field=name)
        return InventoryPolicy(
            allow_partial=bool(body.get("allow_partial", False)),
            allow_split=bool(body.get("allow_split", True)),
            unpaid_hold=timedelta(minutes=_minutes(body.get("unpaid_hold_minutes", 15), "unpaid_hold_minutes")),
            unpaid_hold_by_channel={str(ch): timedelta(minutes=_minutes(m, f"unpaid_hold_minutes_by_channel.{ch}"))
                                    for ch, m in by_channel.items()},
            allocation_weights=dict(body.get("allocation_weights", {}) or {}),
            channel_feed=dict(body.get("channel_feed", {}) or {}),
        )

"""Stall levels: how long a shipment may go without progress before it is escalated.

A shipment's clock is ``last_progress_at`` (reset by every scan, the waybill, and every new
carrier checkpoint). Each milestone has three thresholds in hours; passing the first makes
the shipment stall level 1 (watch), the second level 2 (chase the carrier), the third
level 3 (flag for compensation). Shipments in a final status (delivered, returned,
cancelled) never stall: the caller only checks open ones, and ``Shipment.raise_stall``
refuses closed ones anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from orderhub.domain.errors import InvalidPolicy
from orderhub.domain.fulfillment.shipment import Shipment
from orderhub.domain.time import ensure_utc
from orderhub.domain.tracking.milestones import Milestone

DEFAULT_KEY = "default"
DEFAULT_HOURS: tuple[int, int, int] = (2, 6, 24)
LEVELS = 3
MAX_HOURS = 24 * 365


def _default_thresholds() -> Mapping[str, tuple[int, int, int]]:
    return MappingProxyType({DEFAULT_KEY: DEFAULT_HOURS})


@dataclass(frozen=True)
class StallPolicy:
    """Hours without progress before stall levels 1, 2 and 3, per milestone name; milestones
    not listed (and shipments with no milestone yet, still in the warehouse) use ``"default"``."""

    thresholds: Mapping[str, tuple[int, int, int]] = field(default_factory=_default_thresholds)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, path: str = "stall_hours") -> StallPolicy:
        """Build from a rule-set mapping such as ``{"default": [2, 6, 24], "in_transit": [12, 24, 72]}``.

        Keys are ``default`` or milestone names; each value is three whole, positive, strictly
        ascending hours. A missing ``default`` is (2, 6, 24). Raises :class:`InvalidPolicy` with
        the path of the bad value, e.g. ``stall_hours.in_transit[1]``.
        """
        if not isinstance(data, Mapping):
            raise InvalidPolicy(f"{path}: must be a mapping of milestone → [h1, h2, h3]", field=path)
        names = {DEFAULT_KEY, *(m.value for m in Milestone)}
        thresholds: dict[str, tuple[int, int, int]] = {DEFAULT_KEY: DEFAULT_HOURS}
        for key, value in data.items():
            where = f"{path}.{key}"
            if key not in names:
                raise InvalidPolicy(f"{where}: unknown milestone; expected default or one of: "
                                    f"{', '.join(m.value for m in Milestone)}", field=where)
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) != LEVELS:
                raise InvalidPolicy(f"{where}: must be a list of {LEVELS} hours, got {value!r}", field=where)
            previous = 0
            for i, hours in enumerate(value):
                if isinstance(hours, bool) or not isinstance(hours, int) or not 0 < hours <= MAX_HOURS:
                    raise InvalidPolicy(f"{where}[{i}]: must be whole hours from 1 to {MAX_HOURS}, got {hours!r}",
                                        field=f"{where}[{i}]")
                if hours <= previous:
                    raise InvalidPolicy(f"{where}[{i}]: {hours} must be more than the level before ({previous})",
                                        field=f"{where}[{i}]")
                previous = hours
            thresholds[key] = (value[0], value[1], value[2])
        return cls(thresholds=MappingProxyType(thresholds))

    def hours_for(self, milestone: Milestone | None) -> tuple[int, int, int]:
        """The three thresholds that apply to a shipment at ``milestone``."""
        if milestone is not None and milestone.value in self.thresholds:
            return self.thresholds[milestone.value]
        return self.thresholds.get(DEFAULT_KEY, DEFAULT_HOURS)

    def level_due(self, milestone: Milestone | None, last_progress_at: datetime, now: datetime) -> int:
        """The stall level (0–3) a shipment at ``milestone`` has earned at ``now``: how many
        thresholds the time since ``last_progress_at`` has reached."""
        since = ensure_utc(last_progress_at, field="last_progress_at")
        now = ensure_utc(now, field="now")
        hours = (now - since).total_seconds() / 3600
        return sum(1 for threshold in self.hours_for(milestone) if hours >= threshold)


def escalate(shipment: Shipment, policy: StallPolicy, *, now: datetime) -> bool:
    """Raise ``shipment``'s stall level to what ``policy`` says is due at ``now``; True when it
    changed (a ShipmentStalled event was recorded). Closed shipments are left alone."""
    if not shipment.is_open:
        return False
    level = policy.level_due(shipment.milestone, shipment.last_progress_at, now)
    if level <= shipment.stall_level:
        return False
    return shipment.raise_stall(level, now=now)

"""Warehouse devices: the account-lock rule (one login used from too many devices at once)
and the version rule for offline devices syncing scans they made while disconnected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from orderhub.domain.errors import InvalidPolicy
from orderhub.domain.fulfillment.scanning import Scan
from orderhub.domain.time import ensure_utc

MAX_WINDOW_MINUTES = 24 * 60


@dataclass(frozen=True, slots=True)
class AccountLockPolicy:
    """Lock an operator seen on ``devices`` or more distinct devices within ``window``: a
    login shared between people (or stolen) breaks the scan audit trail."""

    devices: int = 3
    window: timedelta = timedelta(minutes=10)
    enabled: bool = True

    @property
    def window_minutes(self) -> int:
        """The window in whole minutes (for events and messages)."""
        return int(self.window.total_seconds() // 60)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, path: str = "account_lock") -> AccountLockPolicy:
        """Build from a rule-set mapping ``{"devices": 3, "window_minutes": 10, "enabled": true}``
        (all optional). Raises :class:`InvalidPolicy` naming the bad key, e.g. ``account_lock.devices``."""
        if not isinstance(data, Mapping):
            raise InvalidPolicy(f"{path}: must be a mapping", field=path)
        unknown = sorted(set(data) - {"devices", "window_minutes", "enabled"})
        if unknown:
            raise InvalidPolicy(f"{path}.{unknown[0]}: unknown setting; expected devices, window_minutes, enabled",
                                field=f"{path}.{unknown[0]}")
        devices = data.get("devices", 3)
        # One device is the normal case, so locking needs at least two.
        if isinstance(devices, bool) or not isinstance(devices, int) or not 2 <= devices <= 1000:
            raise InvalidPolicy(f"{path}.devices: must be a whole number from 2 to 1000, got {devices!r}",
                                field=f"{path}.devices")
        minutes = data.get("window_minutes", 10)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_WINDOW_MINUTES:
            raise InvalidPolicy(f"{path}.window_minutes: must be whole minutes from 1 to {MAX_WINDOW_MINUTES}, "
                                f"got {minutes!r}", field=f"{path}.window_minutes")
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise InvalidPolicy(f"{path}.enabled: must be true or false, got {enabled!r}", field=f"{path}.enabled")
        return cls(devices=devices, window=timedelta(minutes=minutes), enabled=enabled)


def devices_in_window(policy: AccountLockPolicy, sightings: Iterable[tuple[str, datetime]],
                      now: datetime) -> tuple[str, ...]:
    """The distinct devices (sorted) among one operator's ``(device_id, seen_at)`` sightings
    seen within the window ending at ``now``; the ``devices`` of an OperatorLocked event."""
    now = ensure_utc(now, field="now")
    start = now - policy.window
    seen = {device for device, at in sightings
            if device and start <= ensure_utc(at, field="seen_at") <= now}
    return tuple(sorted(seen))


def should_lock(policy: AccountLockPolicy, sightings: Iterable[tuple[str, datetime]], now: datetime) -> bool:
    """True when one operator's sightings show at least ``policy.devices`` distinct devices
    within the window ending at ``now`` (never when the policy is disabled)."""
    if not policy.enabled:
        return False
    return len(devices_in_window(policy, sightings, now)) >= policy.devices


class SyncItemStatus(StrEnum):
    """What happened to one scan in an offline device's sync batch."""

    APPLIED = "applied"      # accepted and applied
    DUPLICATE = "duplicate"  # this scan_id was applied before (a retried batch): nothing changed
    CONFLICT = "conflict"    # someone else changed the shipment since the device's copy: not applied
    REJECTED = "rejected"    # the scan broke a rule (ScanRejected, ShipmentClosed…): not applied


@dataclass(frozen=True, slots=True)
class SyncItem:
    """One scan an offline device sends: the shipment it is for and the shipment version the
    device had downloaded when it made the scan."""

    scan_id: str
    shipment_id: str
    seen_version: int
    scan: Scan


def version_conflict(seen_version: int, current_version: int, batch_base_version: int | None) -> bool:
    """True when someone other than this batch changed the shipment since the device saw it.

    Every scan a device made offline on one shipment carries the version it last downloaded,
    so after the batch's first scan is applied the shipment is ahead of ``seen_version`` by the
    batch's own doing. ``batch_base_version`` is the shipment's version before this batch first
    changed it (None until then): no conflict when ``seen_version`` equals the current version
    or that base version; anything else is a conflict.
    """
    if seen_version == current_version:
        return False
    return batch_base_version is None or seen_version != batch_base_version

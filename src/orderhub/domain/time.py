"""Time in the domain: always timezone-aware UTC.

The clock is a parameter (see :class:`Clock`), so tests and replays can pin it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from orderhub.domain.errors import InvalidTime


class Clock(Protocol):
    """Anything that tells the current aware UTC time."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock; used in production by the composition root."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to; used by tests and replays."""

    def __init__(self, at: datetime) -> None:
        self._at = ensure_utc(at, field="clock")

    def now(self) -> datetime:
        return self._at

    def advance(self, **delta: float) -> None:
        """Move the clock forward by a ``timedelta(**delta)``."""
        self._at = self._at + timedelta(**delta)


def ensure_utc(value: datetime, *, field: str) -> datetime:
    """Return ``value`` converted to UTC; raise :class:`InvalidTime` if it is naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidTime(f"{field}: timestamp has no timezone; send ISO 8601 with an offset, "
                          "e.g. 2026-11-21T10:00:00+08:00", field=field)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidTime(f"{field}: {value.isoformat()} is out of the supported range", field=field) from exc


def isoformat(value: datetime) -> str:
    """Render an aware datetime as ISO 8601 UTC with a ``Z`` suffix and microseconds."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

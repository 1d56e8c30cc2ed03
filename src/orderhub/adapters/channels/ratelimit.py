"""Being a polite API client: a token bucket per shop, ``Retry-After`` and jittered backoff.

Channels meter their order APIs per shop (Shopify's leaky bucket, TikTok Shop's QPS
limits, TOP's per-app call limits). A poller that ignores the meter gets 429s, then
temporary bans, so every request first takes a token from the shop's bucket, and a 429
is answered by waiting as long as the channel says (``Retry-After``), or, when it says
nothing, by exponential backoff with full jitter so many shops recovering at once don't
hit the channel in lock-step.

Time is injected (``monotonic`` and ``sleep``), so tests run without really waiting and
assert on the recorded sleeps instead of the wall clock.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from orderhub.domain.time import ensure_utc


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; one request takes one token.

    :meth:`reserve` takes a token and returns how long the caller must wait before using it
    (the balance may go negative: later callers then wait in turn, so waits queue fairly).
    :meth:`acquire` does the waiting with the injected ``sleep``. Thread-safe.
    """

    def __init__(self, rate: float, burst: int, *, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of requests per second, got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = int(burst)
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = monotonic()
        self._lock = threading.Lock()

    def reserve(self, tokens: float = 1.0) -> float:
        """Take ``tokens`` now and return the seconds to wait before they may be spent (0.0 if none)."""
        with self._lock:
            now = self._monotonic()
            # A clock that jumps backwards (it shouldn't: it is monotonic) must not mint tokens.
            elapsed = max(0.0, now - self._stamp)
            self._stamp = now
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
            self._tokens -= tokens
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens``, sleeping until they are available; returns the seconds slept."""
        wait = self.reserve(tokens)
        if wait > 0:
            self._sleep(wait)
        return wait

    def available(self) -> float:
        """The tokens available right now (negative while callers are queued)."""
        with self._lock:
            elapsed = max(0.0, self._monotonic() - self._stamp)
            return min(float(self.burst), self._tokens + elapsed * self.rate)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter, in seconds.

    The n-th retry waits a uniformly random time in ``[0, min(cap, base * 2**(n-1)))``:
    the ceiling doubles per failure, and the randomness spreads retries of many shops apart.
    """

    base: float = 1.0
    cap: float = 60.0

    def __post_init__(self) -> None:
        if not (0 < self.base <= self.cap):
            raise ValueError("backoff needs 0 < base <= cap")

    def delay(self, attempt: int, rand: Callable[[], float]) -> float:
        """The wait after the ``attempt``-th failure (1-based); ``rand()`` gives a float in [0, 1)."""
        # Capping the exponent first keeps 2**n from overflowing for absurd attempt counts.
        ceiling = min(self.cap, self.base * float(1 << min(max(attempt - 1, 0), 40)))
        return ceiling * rand()


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Returns None when the header is absent or unreadable (the caller then backs off on its
    own). A date in the past means "now": 0.0. Fractional seconds are accepted, since some
    gateways send them. ``now`` (aware) is the wall-clock time the date is measured from.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    with contextlib.suppress(ValueError):  # not a number of seconds: an HTTP date, below
        seconds = float(text)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are GMT; parsedate gives a naive value only for "-0000", which is UTC too.
        when = when.replace(tzinfo=UTC)
    return max(0.0, (ensure_utc(when, field="Retry-After") - ensure_utc(now, field="now")).total_seconds())

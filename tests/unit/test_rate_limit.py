"""The poller's politeness: token bucket, jittered backoff, Retry-After parsing.

Time is simulated: ``sleep`` advances a fake monotonic clock and records the wait, so the
tests assert exact waits and never sleep for real.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from orderhub.adapters.channels.ratelimit import Backoff, TokenBucket, parse_retry_after
from tests.unit.fake_time import FakeTime


def bucket(rate: float, burst: int, t: FakeTime) -> TokenBucket:
    return TokenBucket(rate, burst, monotonic=t.monotonic, sleep=t.sleep)


def test_burst_is_free_then_requests_are_paced_at_the_rate() -> None:
    t = FakeTime()
    b = bucket(2.0, 3, t)
    for _ in range(3):
        assert b.acquire() == 0.0
    assert t.sleeps == []
    for _ in range(4):
        b.acquire()
    assert t.sleeps == pytest.approx([0.5, 0.5, 0.5, 0.5])


def test_tokens_refill_with_time_up_to_burst_only() -> None:
    t = FakeTime()
    b = bucket(1.0, 2, t)
    b.acquire()
    b.acquire()
    t.now += 100  # idle for long: the bucket holds at most `burst` tokens
    assert b.available() == pytest.approx(2.0)
    b.acquire()
    b.acquire()
    assert t.sleeps == []
    b.acquire()
    assert t.sleeps == pytest.approx([1.0])


def test_reservations_queue_so_concurrent_callers_wait_in_turn() -> None:
    t = FakeTime()
    b = bucket(4.0, 1, t)
    assert b.reserve() == 0.0
    # Two callers reserve before either slept: the second waits behind the first.
    assert b.reserve() == pytest.approx(0.25)
    assert b.reserve() == pytest.approx(0.5)
    assert b.available() == pytest.approx(-2.0)


def test_a_backwards_clock_mints_no_tokens() -> None:
    t = FakeTime()
    b = bucket(1.0, 1, t)
    b.acquire()
    t.now -= 50
    assert b.reserve() == pytest.approx(1.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("inf"), 1), (float("nan"), 1), (1, 0)])
def test_bucket_rejects_nonsense(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


def test_backoff_is_exponential_full_jitter_and_capped() -> None:
    policy = Backoff(base=1.0, cap=10.0)
    assert [policy.delay(n, lambda: 0.5) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(3, lambda: 0.0) == 0.0
    assert policy.delay(10_000, lambda: 0.999) == pytest.approx(9.99)


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(base=0.0, cap=1.0)
    with pytest.raises(ValueError):
        Backoff(base=5.0, cap=1.0)


NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("header", "expected"), [
    ("7", 7.0), (" 0 ", 0.0), ("2.5", 2.5), ("-3", 0.0),
    (format_datetime(NOW + timedelta(seconds=12), usegmt=True), 12.0),
    ("Sun, 01 Mar 2026 12:00:30 GMT", 30.0),
    (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),
    (None, None), ("", None), ("soon", None), ("inf", None), ("nan", None),
])
def test_retry_after_seconds_or_http_date(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected

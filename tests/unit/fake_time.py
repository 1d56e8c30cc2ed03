"""A monotonic clock for tests of anything that waits: it moves only when slept on (or told
to), and records every sleep, so tests assert exact waits and never sleep for real."""

from __future__ import annotations


class FakeTime:
    """``monotonic()`` and ``sleep()`` for injection; ``sleeps`` lists every wait."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

"""Timer workers: commands the runner sends through the bus at most every so often (stall
escalation, completing delivered orders, after-sale SLA levels)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from orderhub.domain.time import Clock

if TYPE_CHECKING:
    from orderhub.bootstrap import OrderHub


class CommandTimer:
    """Sends each command ``make()`` builds through the bus when ``every`` has passed since
    the last run; each handler answers how many things it changed (a runner Worker)."""

    def __init__(self, hub: OrderHub, *, name: str, commands: Sequence[Callable[[], object]],
                 every: timedelta = timedelta(seconds=5)) -> None:
        self.name = name
        self._bus = hub.bus
        self._clock: Clock = hub.clock
        self._commands = tuple(commands)
        self._every = every
        self._last: datetime | None = None

    def run_once(self) -> int:
        """Run the commands when due; returns how many things they changed together."""
        now = self._clock.now()
        if self._last is not None and now - self._last < self._every:
            return 0
        self._last = now
        changed = 0
        for make in self._commands:
            result = self._bus.handle(make())
            changed += result if isinstance(result, int) else 0
        return changed

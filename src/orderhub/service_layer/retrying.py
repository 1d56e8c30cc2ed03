"""Running a command's transaction again when a concurrent writer got there first."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from orderhub.service_layer.errors import ConcurrencyConflict

T = TypeVar("T")


def retrying(attempt: Callable[[], T], *, retry: bool = True, attempts: int = 3) -> T:
    """Run ``attempt`` (one whole transaction) up to ``attempts`` times while it raises
    ConcurrencyConflict; with ``retry=False`` (the caller pinned an expected version) the
    first conflict is the caller's to resolve."""
    for n in range(attempts):
        try:
            return attempt()
        except ConcurrencyConflict:
            if not retry or n == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover

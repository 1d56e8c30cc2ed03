"""The HTTP client a worker calls out with (carriers, channels, webhook endpoints)."""

from __future__ import annotations

import httpx


class WorkerHttp:
    """The client a worker was handed (its caller owns and closes it: tests share one) or one
    of its own, which :meth:`close` closes when the worker's runner stops."""

    def __init__(self, given: httpx.Client | None, *, timeout: float, headers: dict[str, str] | None = None) -> None:
        self._owned = given is None
        self.client = given or httpx.Client(timeout=timeout, headers=headers)

    def close(self) -> None:
        """Close the client if the worker made it."""
        if self._owned:
            self.client.close()

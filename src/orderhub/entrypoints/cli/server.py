"""Running the HTTP server (and the workers beside it) for ``serve`` and ``demo``."""

from __future__ import annotations

import contextlib
import threading
import time

import uvicorn

from orderhub.bootstrap import OrderHub
from orderhub.entrypoints.api.app import create_app
from orderhub.workers.runner import build_runner


class RunningServer:
    """An API server on a background thread, plus the workers unless disabled."""

    def __init__(self, hub: OrderHub, *, host: str, port: int, workers: bool = True,
                 log_level: str = "info") -> None:
        config = uvicorn.Config(create_app(hub), host=host, port=port, log_level=log_level, access_log=False,
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="orderhub-api", daemon=True)
        self._runner = build_runner(hub) if workers else None
        self.url = f"http://{host}:{port}"

    def start(self, *, timeout: float = 20.0) -> None:
        """Start serving; return once the socket accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the API server failed to start on {self.url} (is the port in use?)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start on {self.url} within {timeout:.0f} s")
            time.sleep(0.05)
        if self._runner is not None:
            self._runner.start()

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C / SIGTERM)."""
        try:
            # Ctrl-C is the normal way to stop: fall through to a clean shutdown.
            with contextlib.suppress(KeyboardInterrupt):
                while self._thread.is_alive():
                    self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop workers and server."""
        if self._runner is not None:
            self._runner.stop()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(10)

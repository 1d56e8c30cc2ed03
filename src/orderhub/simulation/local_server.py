"""A local HTTP service on 127.0.0.1 in a background thread: what the simulated channel and
carrier APIs share (a free port, a daemon thread, start/stop, ``with`` support)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import SplitResult, parse_qs, urlsplit


def read_request(request: BaseHTTPRequestHandler) -> tuple[SplitResult, dict[str, str], dict[str, str], bytes]:
    """A request's split URL, query (last value of each name), lower-cased headers and body bytes."""
    parts = urlsplit(request.path)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    headers = {k.lower(): v for k, v in request.headers.items()}
    raw = request.rfile.read(int(headers.get("content-length", "0") or 0))
    return parts, query, headers, raw


class LocalHTTPService(ABC):
    """Serves :meth:`_serve` on a free port of 127.0.0.1 once started; stop (or close) frees it."""

    def __init__(self, *, name: str) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=name, daemon=True)

    @abstractmethod
    def _serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        """Answer one request (``method`` GET, POST or DELETE) on ``request``."""

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                service._serve(self, "GET")

            def do_POST(self) -> None:
                service._serve(self, "POST")

            def do_DELETE(self) -> None:
                service._serve(self, "DELETE")

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

        return Handler

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: what an account's or shop's ``api_base_url`` points at."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Serve in a daemon thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def close(self) -> None:
        """The same as :meth:`stop`."""
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

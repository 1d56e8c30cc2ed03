"""A real webhook receiver (HTTP server on 127.0.0.1 in a thread) and the fixtures that
start it, shared by the outbox relay and worker runner tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

SECRET = "s3cret-s3cret-s3cret"


@dataclass
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server in a thread answering ``script`` statuses in turn, then ``default``."""

    script: list[int] = field(default_factory=list)
    default: int = 200
    reply: bytes = b"ok"
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._cond:
                    receiver.requests.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.script.pop(0) if receiver.script else receiver.default
                    receiver._cond.notify_all()
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(receiver.reply)))
                    self.end_headers()
                    self.wfile.write(receiver.reply)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client timed out and hung up: expected in the timeout test

            def log_message(self, format: str, *args: Any) -> None:  # silence per-request stderr lines
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` requests arrived (True) or ``timeout`` passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.requests) >= count, timeout)


def verify_signature(request: Received, secret: str = SECRET) -> bool:
    """What a receiver does: recompute the HMAC over "<timestamp>.<body>" and compare."""
    timestamp = request.headers["x-orderhub-timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers["x-orderhub-signature"], f"sha256={expected}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A started receiver; closed after the test."""
    rcv = Receiver()
    rcv.start()
    yield rcv
    rcv.close()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """An HTTP client that ignores proxy settings (the receiver is on 127.0.0.1)."""
    with httpx.Client(trust_env=False) as client:
        yield client


"""Request tracing and HTTP metrics as plain ASGI middleware.

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware`` (``@app.middleware("http")``):
that one runs every request through an extra task and memory stream, which cost more
than the whole webhook handler (profiled: over half the event loop's time)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderhub.adapters.metrics import Metrics

MAX_TRACE_ID = 100


class TraceAndMeasure:
    """Gives each request a trace id (the caller's ``X-Request-ID`` or a new one), binds it
    to the logs and ``request.state.trace_id``, echoes it in the response, and counts the
    request and its latency per route template."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope.get("headers", ()) if k == b"x-request-id"), None)
        # A caller-supplied request id ties our audit entries to their logs.
        trace_id = (given.decode("latin-1") if given else uuid.uuid4().hex)[:MAX_TRACE_ID]
        scope.setdefault("state", {})["trace_id"] = trace_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-request-id", trace_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        structlog.contextvars.bind_contextvars(trace_id=trace_id)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("trace_id")
            template = getattr(scope.get("route"), "path", "unmatched")
            method = scope.get("method", "?")
            self.metrics.http_requests.labels(method, template, str(status)).inc()
            self.metrics.http_latency.labels(method, template).observe(time.perf_counter() - started)

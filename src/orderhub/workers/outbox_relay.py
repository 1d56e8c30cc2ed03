"""The outbox workers: deliver committed outbox rows (webhooks here; channel write-back and
carrier calls subclass :class:`OutboxWorker`).

Each pass claims a small batch of due rows in one short write transaction, makes the HTTP
calls with no transaction open, and records each outcome in another short transaction
that only writes while this relay still holds the row's lease. Delivery is therefore
at-least-once: a relay that dies after the receiver answered but before the outcome was
recorded leaves the row to be delivered again once its lease expires. Receivers
deduplicate on ``X-OrderHub-Delivery`` (the message id, stable across attempts).

Signing: ``X-OrderHub-Signature: sha256=<hex>`` is HMAC-SHA256 with the endpoint's secret
over ``"<X-OrderHub-Timestamp>.<raw body>"``; the timestamp lets receivers reject replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import secrets
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

import httpx
import structlog
from sqlalchemy import Engine

from orderhub.adapters.db.engine import WRITE
from orderhub.adapters.db.outbox import ClaimedMessage, SqlOutboxRepository, WebhookEndpoint
from orderhub.adapters.metrics import Metrics
from orderhub.adapters.webhook_targets import WebhookTargetGuard
from orderhub.domain.time import Clock
from orderhub.workers.http_client import WorkerHttp

log = structlog.get_logger(__name__)

WEBHOOK = "webhook"
DELIVERED, RETRY, DEAD = "delivered", "retry", "dead"
ERROR_EXCERPT = 300
USER_AGENT = "OrderHub-Webhooks/1"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed delivery is tried again, and when it is given up (dead-lettered).

    Backoff is exponential with full jitter: the n-th retry waits a uniformly random time in
    ``[0, min(cap, base * 2**(n-1)))``, so receivers coming back from an outage are not hit
    by every queued message at the same instant.
    """

    max_attempts: int = 8
    base: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base <= timedelta(0) or self.cap < self.base:
            raise ValueError("backoff needs 0 < base <= cap")

    def delay(self, attempts: int, rand: Callable[[], float]) -> timedelta:
        """The wait after the ``attempts``-th failure; ``rand()`` gives a float in [0, 1)."""
        # Capping the exponent first keeps 2**n from growing without bound for large counts.
        ceiling = min(self.cap, self.base * (1 << min(max(attempts - 1, 0), 40)))
        return ceiling * rand()


class PermanentFailure(Exception):
    """Raised by :meth:`OutboxWorker.deliver` when retrying can't help (the target is gone, the
    receiver refused the message as invalid): the message is dead-lettered at once.

    ``attempted`` says whether a call was made (it then counts as an attempt); leave it True
    when unsure, since over-counting only shows one attempt too many on the dead row.
    """

    def __init__(self, error: str, *, attempted: bool = True) -> None:
        super().__init__(error)
        self.error = error
        self.attempted = attempted


def default_worker_id(name: str) -> str:
    """A claimer id unique to this process and instance (host:pid:random), at most 100 chars."""
    return f"{name}:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"[-100:]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-OrderHub-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class OutboxWorker(ABC):
    """Claims due outbox rows of :attr:`kinds` under a lease and records each one's outcome;
    subclasses say how one message is delivered (:meth:`deliver`).

    A pass claims a batch in one short write transaction, calls :meth:`deliver` for each row
    with no transaction open, and records the outcome in another short transaction that only
    writes while this worker still holds the row's lease (at-least-once delivery). A failed
    attempt is retried per :attr:`policy` until it runs out, then dead-lettered; a
    :class:`PermanentFailure` dead-letters at once. ``clock`` and ``rand`` (the backoff jitter,
    a float in [0, 1)) are injectable so tests are deterministic.
    """

    kinds: ClassVar[tuple[str, ...]]

    def __init__(self, engine: Engine, clock: Clock, metrics: Metrics, *, worker_id: str | None = None,
                 batch_size: int = 10, timeout: float = 10.0, policy: RetryPolicy | None = None,
                 lease: timedelta | None = None, rand: Callable[[], float] | None = None,
                 name: str = "outbox") -> None:
        self.name = name
        self.worker_id = worker_id or default_worker_id(name)
        self._engine = engine
        self._clock = clock
        self._metrics = metrics
        self._batch_size = batch_size
        self._timeout = timeout
        self.policy = policy or RetryPolicy()
        # The lease must outlive a whole batch of slow receivers, or a second worker would take
        # rows this one is still delivering and send them twice.
        self.lease = lease or timedelta(seconds=timeout * batch_size + 30)
        if self.lease <= timedelta(seconds=timeout):
            raise ValueError("lease must be longer than the HTTP timeout")
        self._rand = rand or random.random

    @abstractmethod
    def deliver(self, message: ClaimedMessage) -> str | None:
        """Try to deliver ``message`` once: None when it was delivered, else the error (retried).

        Raise :class:`PermanentFailure` when no retry can succeed. Called with no database
        transaction open; it must not take longer than the worker's ``timeout``.
        """

    def refuse(self, message: ClaimedMessage) -> str | None:
        """Why ``message`` is dead-lettered without being tried (no attempt used), or None.

        Checked before the attempt budget, so a vanished target is reported as such even on a
        message whose earlier holders died; the default refuses nothing.
        """
        return None

    def run_once(self) -> int:
        """Claim one batch of due messages and try each once; returns how many were claimed."""
        with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
            messages = SqlOutboxRepository(conn).claim(kinds=self.kinds, worker_id=self.worker_id,
                                                       now=self._clock.now(), lease=self.lease,
                                                       limit=self._batch_size)
        for index, message in enumerate(messages):
            # Stop early when the lease is nearly over: another worker may take these rows any
            # moment, and delivering them here too would send them twice.
            if self._clock.now() + timedelta(seconds=self._timeout) >= message.locked_until:
                self._release(messages[index:])
                break
            self._handle(message)
        return len(messages)

    def close(self) -> None:
        """Release what the worker holds (HTTP clients); called once when its runner stops."""
        return None

    # ------------------------------------------------------------------ internals
    def _handle(self, message: ClaimedMessage) -> None:
        refused = self.refuse(message)
        if refused is not None:
            self._record_dead(message, refused, attempts=message.attempts)
            return
        if message.attempts >= self.policy.max_attempts:
            # Only reachable through lease takeovers: earlier holders kept dying on this message.
            self._record_dead(message, f"gave up after {message.attempts} attempts: {message.last_error}",
                              attempts=message.attempts)
            return
        try:
            error = self.deliver(message)
        except PermanentFailure as failure:
            self._record_dead(message, failure.error[:ERROR_EXCERPT],
                              attempts=message.attempts + (1 if failure.attempted else 0))
            return
        if error is None:
            self._record_delivered(message)
            return
        attempts = message.attempts + 1
        if attempts >= self.policy.max_attempts:
            self._record_dead(message, f"gave up after {attempts} attempts: {error}", attempts=attempts)
        else:
            self._record_retry(message, error, attempts=attempts)

    def _record_delivered(self, message: ClaimedMessage) -> None:
        kept = self._write(lambda repo: repo.mark_delivered(message, worker_id=self.worker_id,
                                                            now=self._clock.now()))
        self._count(message, DELIVERED, kept)
        log.info("outbox_delivered", message_id=message.message_id, kind=message.kind, topic=message.topic,
                 attempts=message.attempts + 1)

    def _record_retry(self, message: ClaimedMessage, error: str, *, attempts: int) -> None:
        due = self._clock.now() + self.policy.delay(attempts, self._rand)
        kept = self._write(lambda repo: repo.mark_retry(message, worker_id=self.worker_id, attempts=attempts,
                                                        error=error, next_attempt_at=due))
        self._count(message, RETRY, kept)
        log.warning("outbox_delivery_failed", message_id=message.message_id, kind=message.kind,
                    topic=message.topic, attempts=attempts, retry_at=due.isoformat(), error=error)

    def _record_dead(self, message: ClaimedMessage, error: str, *, attempts: int) -> None:
        kept = self._write(lambda repo: repo.mark_dead(message, worker_id=self.worker_id, attempts=attempts,
                                                       error=error))
        self._count(message, DEAD, kept)
        log.error("outbox_dead_lettered", message_id=message.message_id, kind=message.kind, topic=message.topic,
                  attempts=attempts, error=error)

    def _release(self, messages: tuple[ClaimedMessage, ...]) -> None:
        with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
            repo = SqlOutboxRepository(conn)
            for message in messages:
                repo.release(message, worker_id=self.worker_id)

    def _write(self, record: Callable[[SqlOutboxRepository], bool]) -> bool:
        with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
            return record(SqlOutboxRepository(conn))

    def _count(self, message: ClaimedMessage, result: str, kept: bool) -> None:
        # The attempt happened either way, so it is counted; a lost lease is only logged.
        self._metrics.outbox_deliveries.labels(message.kind, result).inc()
        if not kept:
            log.warning("outbox_lease_lost", message_id=message.message_id, worker_id=self.worker_id,
                        result=result)


def network_failure(exc: Exception) -> str:
    """The retry error text for a call that got no answer (timeout, refused connection, bad URL)."""
    return f"{type(exc).__name__}: {exc}"[:ERROR_EXCERPT]


def http_failure(response: httpx.Response, detail: str | None = None) -> str:
    """The error text for a non-2xx answer: status plus ``detail`` (default: the body's start),
    whitespace collapsed and cut to ``ERROR_EXCERPT`` characters."""
    text = response.text if detail is None else detail
    excerpt = " ".join(text[:ERROR_EXCERPT].split())
    return f"HTTP {response.status_code}: {excerpt}" if excerpt else f"HTTP {response.status_code}"


class OutboxRelay(OutboxWorker):
    """The worker that delivers ``webhook`` outbox rows; run by :class:`~orderhub.workers.runner.WorkerRunner`.

    ``http_client`` is used as given (tests pass one; the caller closes it); without one the
    relay makes its own and :meth:`close` closes it. Without a ``guard`` every registered URL
    is called (tests of the relay mechanics).
    """

    kinds = (WEBHOOK,)

    def __init__(self, engine: Engine, clock: Clock, metrics: Metrics, *, http_client: httpx.Client | None = None,
                 worker_id: str | None = None, batch_size: int = 10, timeout: float = 10.0,
                 policy: RetryPolicy | None = None, lease: timedelta | None = None,
                 rand: Callable[[], float] | None = None, name: str = "outbox",
                 guard: WebhookTargetGuard | None = None) -> None:
        super().__init__(engine, clock, metrics, worker_id=worker_id, batch_size=batch_size, timeout=timeout,
                         policy=policy, lease=lease, rand=rand, name=name)
        self._client = WorkerHttp(http_client, timeout=timeout, headers={"User-Agent": USER_AGENT})
        self._http = self._client.client
        self._guard = guard

    def refuse(self, message: ClaimedMessage) -> str | None:
        """Dead-letters messages to deleted, deactivated or (per the guard) forbidden endpoints."""
        endpoint = self._endpoint(message)
        if endpoint is None:
            return f"webhook endpoint {message.target} no longer exists; not delivered"
        if not endpoint.active:
            return (f"webhook endpoint {message.target} was deactivated; not delivered "
                    "(re-activate it and requeue dead messages to send)")
        blocked = self._guard.problem(endpoint.url) if self._guard is not None else None
        return None if blocked is None else f"not delivered: {blocked}"

    def deliver(self, message: ClaimedMessage) -> str | None:
        """POST the signed payload to the endpoint; any non-2xx answer or network error is retried."""
        endpoint = self._endpoint(message)
        if endpoint is None:
            # Deleted between the check in refuse() and now.
            raise PermanentFailure(f"webhook endpoint {message.target} no longer exists; not delivered",
                                   attempted=False)
        body = _encode(message.payload)
        timestamp = int(self._clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "X-OrderHub-Event": message.topic,
            "X-OrderHub-Delivery": message.message_id,
            "X-OrderHub-Timestamp": str(timestamp),
            "X-OrderHub-Signature": sign(endpoint.secret, timestamp, body),
        }
        try:
            response = self._http.post(endpoint.url, content=body, headers=headers, timeout=self._timeout)
        except Exception as exc:  # timeouts, refused connections, bad URLs: all retried alike
            return network_failure(exc)
        return None if response.is_success else http_failure(response)

    def close(self) -> None:
        """Close the HTTP client if the relay created it."""
        self._client.close()

    def _endpoint(self, message: ClaimedMessage) -> WebhookEndpoint | None:
        with self._engine.connect() as conn:
            return SqlOutboxRepository(conn).endpoint(message.tenant_id, message.target)


def _encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact UTF-8 JSON."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

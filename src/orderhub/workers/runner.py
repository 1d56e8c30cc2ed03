"""Running the background workers: in a thread beside the API (``orderhub serve``) or in
the foreground of their own process (``orderhub worker``).

A worker is anything with a ``name`` and a ``run_once()`` that claims and handles one batch
of work from a queue table. The runner calls each worker in turn, forever, sleeping a
little between passes (less when there was work) and logging, never propagating, a
worker's exception so one broken worker can't stop the others.

Who may claim: on PostgreSQL every runner in every process claims (rows are picked with
``FOR UPDATE SKIP LOCKED``, so they never collide). On SQLite only the runner holding the
worker's database lease (``claimer:<worker name>`` in ``worker_leases``, renewed every
pass) runs that worker, so several processes on one file don't queue on its write lock.
A runner that dies simply stops renewing; its lease expires and another runner takes over.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING, Protocol

import httpx
import structlog

from orderhub.adapters.db import queue
from orderhub.adapters.db.engine import WRITE, is_postgres
from orderhub.workers.outbox_relay import OutboxRelay, default_worker_id

if TYPE_CHECKING:
    from orderhub.bootstrap import OrderHub

log = structlog.get_logger(__name__)

LEASE_PREFIX = "claimer:"


class Worker(Protocol):
    """One kind of background work, run repeatedly by :class:`WorkerRunner`."""

    name: str

    def run_once(self) -> int:
        """Claim and handle one batch; return how many items were processed (0 when idle)."""
        ...


class WorkerRunner:
    """Loops over ``workers`` until stopped; see the module docstring for claiming rules.

    Use :meth:`start` / :meth:`stop` to run in a background thread next to the API, or
    :meth:`run_forever` in the foreground (it stops on SIGINT/SIGTERM). A runner runs once:
    when it stops it gives up its leases and closes workers that have a ``close()``.
    """

    def __init__(self, workers: Sequence[Worker], *, hub: OrderHub, poll_interval: float = 0.5,
                 busy_interval: float = 0.01, lease_ttl: timedelta = timedelta(seconds=30),
                 runner_id: str | None = None) -> None:
        if poll_interval <= 0:
            # Zero would spin a CPU polling empty tables.
            raise ValueError("poll_interval must be positive")
        self.workers = list(workers)
        self.runner_id = runner_id or default_worker_id("runner")
        # Only the engine and clock are used: leases are taken on the same database and time.
        self._engine = hub.engine
        self._clock = hub.clock
        self._poll_interval = poll_interval
        self._busy_interval = busy_interval
        self._lease_ttl = lease_ttl
        self._use_leases = not is_postgres(hub.engine)
        self._held: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._used = False

    # ------------------------------------------------------------------ running
    def run_once(self) -> int:
        """One pass over all workers (those this runner may claim for); returns items processed."""
        total = 0
        for worker in self.workers:
            if self._stop.is_set():
                break
            if not self._may_claim(worker):
                continue
            try:
                total += worker.run_once()
            except Exception:  # a broken worker is logged and retried next pass; the others go on
                log.exception("worker_failed", worker=worker.name, runner=self.runner_id)
        return total

    def start(self) -> None:
        """Run in a daemon background thread (``orderhub serve``); returns immediately."""
        self._claim_single_use()
        self._thread = threading.Thread(target=self._loop, name=f"orderhub-workers-{self.runner_id}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Ask the loop to stop after the current item and wait up to ``timeout`` seconds.

        Returns True when the background thread has finished. A runner never started (only
        driven through :meth:`run_once`, as tests do) gives up its leases here instead.
        """
        self._stop.set()
        if self._thread is None:
            if not self._used:
                self._used = True
                self._release_leases()
                self._close_workers()
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def run_forever(self) -> None:
        """Run in the calling thread until :meth:`stop` or SIGINT/SIGTERM (``orderhub worker``).

        The first signal finishes the current pass and returns; a second one interrupts at once.
        Signal handlers can only be installed from the main thread; elsewhere only
        :meth:`stop` ends the loop.
        """
        self._claim_single_use()
        in_main = threading.current_thread() is threading.main_thread()
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
        try:
            self._loop()
        finally:
            for sig, handler in previous.items():
                # None means the old handler wasn't installed from Python; the default is closest.
                signal.signal(sig, signal.SIG_DFL if handler is None else handler)

    @property
    def running(self) -> bool:
        """True while the loop is active (started and not yet stopped)."""
        return self._used and not self._stop.is_set()

    # ------------------------------------------------------------------ internals
    def _claim_single_use(self) -> None:
        if self._used:
            raise RuntimeError("a WorkerRunner runs once; build a new one to run again")
        self._used = True

    def _loop(self) -> None:
        log.info("workers_started", runner=self.runner_id, workers=[w.name for w in self.workers])
        try:
            while not self._stop.is_set():
                processed = self.run_once()
                # Event.wait doubles as an interruptible sleep: stop() wakes it at once.
                self._stop.wait(self._busy_interval if processed else self._poll_interval)
        finally:
            self._release_leases()
            self._close_workers()
            log.info("workers_stopped", runner=self.runner_id)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stop.is_set():
            raise KeyboardInterrupt
        log.info("workers_stopping", signal=signal.Signals(signum).name, runner=self.runner_id)
        self._stop.set()

    def _may_claim(self, worker: Worker) -> bool:
        if not self._use_leases:
            return True
        name = LEASE_PREFIX + worker.name
        try:
            with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
                held = queue.acquire_lease(conn, name, holder=self.runner_id, now=self._clock.now(),
                                           ttl=self._lease_ttl)
        except Exception:  # the database blinked: skip this pass rather than kill the loop
            log.exception("worker_lease_failed", worker=worker.name, runner=self.runner_id)
            return False
        if held and name not in self._held:
            log.info("worker_lease_acquired", lease=name, runner=self.runner_id)
        if held:
            self._held.add(name)
        else:
            self._held.discard(name)
        return held

    def _release_leases(self) -> None:
        if not self._held:
            return
        try:
            with self._engine.connect().execution_options(**WRITE) as conn, conn.begin():
                for name in sorted(self._held):
                    queue.release_lease(conn, name, holder=self.runner_id)
        except Exception:  # the leases then expire on their own after their ttl
            log.exception("worker_lease_release_failed", runner=self.runner_id)
        self._held.clear()

    def _close_workers(self) -> None:
        for worker in self.workers:
            close = getattr(worker, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # closing is best effort at shutdown
                    log.exception("worker_close_failed", worker=worker.name)


class RunnerGroup:
    """Several :class:`WorkerRunner` loops run side by side, each on its own thread, so a
    slow kind of work (a poll waiting out a channel's rate limit) never holds up the others
    (the inbox and the outbox). Same interface as a single runner."""

    def __init__(self, runners: Sequence[WorkerRunner]) -> None:
        if not runners:
            raise ValueError("a runner group needs at least one runner")
        self.runners = list(runners)

    @property
    def workers(self) -> list[Worker]:
        """Every worker of every runner."""
        return [w for r in self.runners for w in r.workers]

    def start(self) -> None:
        """Start every runner in its background thread."""
        for runner in self.runners:
            runner.start()

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Stop every runner; True when all have finished."""
        return all([runner.stop(timeout) for runner in self.runners])

    def run_forever(self) -> None:
        """Run the first runner in the calling thread (signals stop it) and the rest in the
        background; when the first returns, the others are stopped too."""
        for runner in self.runners[1:]:
            runner.start()
        try:
            self.runners[0].run_forever()
        finally:
            for runner in self.runners[1:]:
                runner.stop()

    @property
    def running(self) -> bool:
        """True while any runner is active."""
        return any(r.running for r in self.runners)


def build_workers(hub: OrderHub, *, http_client: httpx.Client | None = None) -> list[Worker]:
    """The queue workers ``orderhub serve`` and ``orderhub worker`` run, wired to ``hub``:
    the inbox normalizer, the reservation expiry and the outbox relay.

    ``http_client`` is shared by the outbound HTTP workers (tests inject one); by default
    each makes and owns its own.
    """
    from orderhub.workers.aftersale import AfterSaleTimers, RefundRelay  # noqa: PLC0415 - channel HTTP clients
    from orderhub.workers.fulfillment import (  # noqa: PLC0415 - carrier adapters and HTTP clients
        CarrierWaybillRelay,
        FulfilmentPlanner,
        FulfilmentTimers,
    )
    from orderhub.workers.inbox import InboxWorker  # noqa: PLC0415 - the inbox worker imports the whole gateway
    from orderhub.workers.reservations import ReservationExpiryWorker  # noqa: PLC0415 - same reason
    from orderhub.workers.writeback import ChannelWriteBack  # noqa: PLC0415 - same reason

    return [InboxWorker(hub), ReservationExpiryWorker(hub),
            OutboxRelay(hub.engine, hub.clock, hub.metrics, http_client=http_client, guard=hub.webhook_guard),
            FulfilmentPlanner(hub), CarrierWaybillRelay(hub, http_client=http_client), FulfilmentTimers(hub),
            ChannelWriteBack(hub.engine, hub.clock, hub.metrics, http_client=http_client),
            RefundRelay(hub, http_client=http_client), AfterSaleTimers(hub)]


def build_pollers(hub: OrderHub, *, http_client: httpx.Client | None = None) -> list[Worker]:
    """The channel pollers (they wait on channels' rate limits, so they get their own loop)."""
    from orderhub.workers.fulfillment import TrackingPoller  # noqa: PLC0415 - carrier HTTP clients
    from orderhub.workers.pollers import ChannelPoller  # noqa: PLC0415 - imports the HTTP poll client

    return [ChannelPoller(hub.engine, hub.clock, hub.bus, hub.specs, http_client=http_client),
            TrackingPoller(hub, http_client=http_client)]


def build_runner(hub: OrderHub, *, http_client: httpx.Client | None = None, poll_interval: float = 0.5,
                 lease_ttl: timedelta = timedelta(seconds=30)) -> RunnerGroup:
    """What ``serve`` and ``worker`` start: the queue workers in one loop, the pollers in another."""
    return RunnerGroup([
        WorkerRunner(build_workers(hub, http_client=http_client), hub=hub, poll_interval=poll_interval,
                     lease_ttl=lease_ttl),
        WorkerRunner(build_pollers(hub, http_client=http_client), hub=hub, poll_interval=max(poll_interval, 1.0),
                     lease_ttl=lease_ttl),
    ])

"""The worker runner: background thread, foreground with signals, error isolation, and
the SQLite claimer lease (on PostgreSQL every runner claims)."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, select
from structlog.testing import capture_logs

from orderhub.adapters.db import queue
from orderhub.adapters.db.outbox import SqlOutboxRepository
from orderhub.adapters.db.tables import worker_leases
from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.domain.time import FixedClock
from orderhub.workers.runner import Worker, WorkerRunner, build_runner, build_workers
from tests.integration.test_outbox_relay import create_order
from tests.integration.webhook_receiver import SECRET, Receiver, verify_signature


class CountingWorker:
    """A worker that records its calls and reports ``work`` items for the first calls."""

    def __init__(self, name: str = "outbox", *, work: int = 0, fail: bool = False) -> None:
        self.name = name
        self.calls = 0
        self.closed = False
        self._work = work
        self._fail = fail

    def run_once(self) -> int:
        self.calls += 1
        if self._fail:
            raise RuntimeError("worker exploded")
        if self._work:
            self._work -= 1
            return 1
        return 0

    def close(self) -> None:
        self.closed = True


def lease_holders(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {r.name: r.holder for r in conn.execute(select(worker_leases))}


def wait_until(condition: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.01)
    return False


def test_background_runner_delivers_and_stops_cleanly(hub: OrderHub, actor: commands.Actor, receiver: Receiver,
                                                      http: httpx.Client) -> None:
    hub.bus.handle(commands.RegisterWebhookEndpoint(actor=actor, url=receiver.url, secret=SECRET,
                                                    events=("order.*",)))
    runner = build_runner(hub, http_client=http, poll_interval=0.05)
    runner.start()
    try:
        create_order(hub, actor)
        assert receiver.wait_for(1)
    finally:
        assert runner.stop(timeout=5)
    assert not runner.running
    [request] = receiver.requests
    assert verify_signature(request)
    assert request.headers["x-orderhub-event"] == "order.created"
    assert wait_until(lambda: _statuses(hub, actor.tenant_id) == [queue.DONE])
    assert lease_holders(hub.engine) == {}  # given up on the way out (SQLite; PostgreSQL takes none)
    assert not http.is_closed  # an injected client belongs to the caller
    with pytest.raises(RuntimeError, match="runs once"):
        runner.start()


def _statuses(hub: OrderHub, tenant_id: str) -> list[str]:
    with hub.engine.connect() as conn:
        return [r.status for r in SqlOutboxRepository(conn).list(tenant_id)]


def test_only_the_lease_holder_claims_on_sqlite(settings: Settings, engine: Engine) -> None:
    clock = FixedClock(datetime(2026, 11, 21, 2, 0, tzinfo=UTC))
    hub = bootstrap(settings, engine=engine, clock=clock)
    first, second = CountingWorker(), CountingWorker()
    ttl = timedelta(seconds=30)
    holder = WorkerRunner([first], hub=hub, runner_id="runner-1", lease_ttl=ttl)
    other = WorkerRunner([second], hub=hub, runner_id="runner-2", lease_ttl=ttl)
    sqlite = engine.dialect.name == "sqlite"

    holder.run_once()
    other.run_once()
    assert first.calls == 1
    if not sqlite:  # PostgreSQL: SKIP LOCKED makes every runner a claimer; no leases at all
        assert second.calls == 1
        assert lease_holders(engine) == {}
        return
    assert second.calls == 0
    assert lease_holders(engine) == {"claimer:outbox": "runner-1"}

    clock.advance(seconds=20)  # the holder renews on every pass...
    holder.run_once()
    clock.advance(seconds=20)
    other.run_once()
    assert second.calls == 0  # ...so its lease outlives the first ttl

    clock.advance(seconds=31)  # a holder that stops renewing (crashed) loses the lease
    other.run_once()
    assert second.calls == 1
    holder.run_once()
    assert first.calls == 2  # it does not claim while runner-2 has it
    assert lease_holders(engine) == {"claimer:outbox": "runner-2"}

    assert other.stop()  # a clean stop hands the lease over at once
    assert second.closed
    assert lease_holders(engine) == {}
    holder.run_once()
    assert first.calls == 3


def test_failing_worker_is_logged_and_the_others_keep_running(hub: OrderHub) -> None:
    broken, healthy = CountingWorker("broken", fail=True), CountingWorker("healthy", work=2)
    runner = WorkerRunner([broken, healthy], hub=hub, poll_interval=0.05)
    with capture_logs() as logs:
        assert runner.run_once() == 1
    [failure] = [e for e in logs if e["event"] == "worker_failed"]
    assert (failure["worker"], failure["log_level"]) == ("broken", "error")
    assert healthy.calls == 1
    assert runner.stop()  # gives its SQLite leases up for the runner below

    runner = WorkerRunner([broken, healthy], hub=hub, poll_interval=0.05)
    runner.start()
    try:
        assert wait_until(lambda: broken.calls >= 4)
    finally:
        assert runner.stop(timeout=5)
    assert healthy.calls >= broken.calls - 1  # a stop may land between the two of a pass
    assert broken.closed and healthy.closed


def test_idle_runner_sleeps_between_passes(hub: OrderHub) -> None:
    idle = CountingWorker("idle")
    runner = WorkerRunner([idle], hub=hub, poll_interval=0.1)
    runner.start()
    time.sleep(0.35)
    assert runner.stop(timeout=5)
    assert 1 <= idle.calls <= 6  # a busy-spin would be thousands


def test_run_forever_stops_on_sigterm(hub: OrderHub) -> None:
    worker = CountingWorker("idle")
    workers: list[Worker] = [worker]
    runner = WorkerRunner(workers, hub=hub, poll_interval=0.02)
    original = signal.getsignal(signal.SIGTERM)

    def send_sigterm_once_installed() -> None:
        # Only signal once the runner's handler is in place, or SIGTERM would end pytest.
        if wait_until(lambda: signal.getsignal(signal.SIGTERM) != original):
            os.kill(os.getpid(), signal.SIGTERM)

    sender = threading.Thread(target=send_sigterm_once_installed)
    sender.start()
    runner.run_forever()
    sender.join(5)
    assert worker.calls >= 1
    assert worker.closed
    assert signal.getsignal(signal.SIGTERM) == original


def test_build_runner_has_inbox_outbox_fulfillment_aftersale_and_pollers(hub: OrderHub, http: httpx.Client) -> None:
    queue = ["inbox", "reservations", "outbox", "fulfilment_planner", "carrier_waybill", "fulfilment_timers",
             "channel-writeback", "aftersale_refund", "aftersale_timers"]
    assert [w.name for w in build_workers(hub, http_client=http)] == queue
    names = [w.name for w in build_runner(hub, http_client=http).workers]
    assert names == [*queue, "pollers", "tracking_poller"]

"""The outbox relay against a real HTTP receiver on 127.0.0.1, on SQLite and PostgreSQL.

The hub here runs on a FixedClock so backoff and lease expiry are reached by moving the
clock, not by sleeping.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, delete, func, select, update

from orderhub.adapters.db import queue
from orderhub.adapters.db.audit import SqlAuditRepository
from orderhub.adapters.db.engine import WRITE
from orderhub.adapters.db.outbox import SqlOutboxRepository
from orderhub.adapters.db.tables import orders, outbox, webhook_endpoints
from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.domain.errors import InvalidTransition
from orderhub.domain.time import FixedClock
from orderhub.service_layer.errors import InvalidInput
from orderhub.workers.outbox_relay import OutboxRelay, RetryPolicy
from tests.integration.webhook_receiver import SECRET, Receiver, verify_signature

START = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


# ---------------------------------------------------------------------- hub on a fixed clock
@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def hub(settings: Settings, engine: Engine, clock: FixedClock) -> OrderHub:
    """Overrides the shared ``hub``: the same wiring on a clock the test moves."""
    return bootstrap(settings, engine=engine, clock=clock)


def make_relay(hub: OrderHub, http: httpx.Client, **options: Any) -> OutboxRelay:
    options.setdefault("rand", lambda: 0.5)  # half the backoff ceiling, every time
    return OutboxRelay(hub.engine, hub.clock, hub.metrics, http_client=http, **options)


def subscribe(hub: OrderHub, actor: commands.Actor, url: str, events: tuple[str, ...] = ("order.*",)) -> str:
    endpoint = hub.bus.handle(commands.RegisterWebhookEndpoint(actor=actor, url=url, secret=SECRET, events=events))
    return str(endpoint.id)


def create_order(hub: OrderHub, actor: commands.Actor, external_id: str = "WEB-1") -> str:
    result = hub.bus.handle(commands.CreateOrder(
        actor=actor, channel="own_site", shop="main", external_id=external_id, currency="CNY",
        status="pending_payment", placed_at=START, lines=(commands.LineInput("TEA-001", 2, "59.90"),)))
    return str(result.order_id)


def rows(hub: OrderHub, tenant_id: str) -> list[Any]:
    """Outbox rows of the tenant, oldest first."""
    with hub.engine.connect() as conn:
        return list(reversed(SqlOutboxRepository(conn).list(tenant_id)))


def deliveries(hub: OrderHub, result: str) -> float:
    value = hub.metrics.registry.get_sample_value("orderhub_outbox_deliveries_total",
                                                  {"kind": "webhook", "result": result})
    return value or 0.0


# ---------------------------------------------------------------------- tests
def test_delivers_signed_payload(hub: OrderHub, actor: commands.Actor, receiver: Receiver, http: httpx.Client,
                                 clock: FixedClock) -> None:
    subscribe(hub, actor, receiver.url)
    order_id = create_order(hub, actor)
    [row] = rows(hub, actor.tenant_id)
    assert (row.status, row.topic, row.kind) == (queue.PENDING, "order.created", "webhook")

    assert make_relay(hub, http).run_once() == 1

    [request] = receiver.requests
    assert verify_signature(request)
    assert not verify_signature(request, secret="another-secret-entirely")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-orderhub-event"] == "order.created"
    assert request.headers["x-orderhub-delivery"] == row.message_id
    assert request.headers["x-orderhub-timestamp"] == str(int(clock.now().timestamp()))
    body = request.json()
    assert body == row.payload
    assert (body["id"], body["type"], body["subject"]) == (row.message_id, "order.created",
                                                           {"type": "order", "id": order_id})
    [done] = rows(hub, actor.tenant_id)
    assert (done.status, done.attempts, done.delivered_at, done.locked_by) == (queue.DONE, 0, clock.now(), None)
    assert deliveries(hub, "delivered") == 1
    assert make_relay(hub, http).run_once() == 0


def test_failure_is_retried_with_backoff_then_delivered(hub: OrderHub, actor: commands.Actor, receiver: Receiver,
                                                        http: httpx.Client, clock: FixedClock) -> None:
    receiver.script = [500]
    receiver.reply = b"  upstream\n exploded  "
    subscribe(hub, actor, receiver.url)
    create_order(hub, actor)
    relay = make_relay(hub, http)

    assert relay.run_once() == 1
    [row] = rows(hub, actor.tenant_id)
    assert (row.status, row.attempts, row.last_error) == (queue.PENDING, 1, "HTTP 500: upstream exploded")
    assert row.next_attempt_at == START + timedelta(seconds=1)  # base 2 s x jitter 0.5
    assert relay.run_once() == 0  # not due yet

    clock.advance(seconds=1)
    assert relay.run_once() == 1
    [row] = rows(hub, actor.tenant_id)
    assert (row.status, row.attempts, row.delivered_at) == (queue.DONE, 1, clock.now())
    first, second = receiver.requests
    assert first.headers["x-orderhub-delivery"] == second.headers["x-orderhub-delivery"] == row.message_id
    assert verify_signature(second)
    assert (deliveries(hub, "retry"), deliveries(hub, "delivered")) == (1, 1)


def test_always_failing_endpoint_is_dead_lettered(hub: OrderHub, actor: commands.Actor, receiver: Receiver,
                                                  http: httpx.Client, clock: FixedClock) -> None:
    receiver.default, receiver.reply = 503, b"maintenance"
    subscribe(hub, actor, receiver.url)
    create_order(hub, actor)
    relay = make_relay(hub, http, policy=RetryPolicy(max_attempts=4, base=timedelta(seconds=2),
                                                     cap=timedelta(seconds=5)))
    waits = []
    for _ in range(3):
        before = clock.now()
        assert relay.run_once() == 1
        [row] = rows(hub, actor.tenant_id)
        waits.append(row.next_attempt_at - before)
        clock.advance(hours=1)
    assert waits == [timedelta(seconds=1), timedelta(seconds=2), timedelta(seconds=2.5)]  # 2, 4, capped 5 x 0.5

    assert relay.run_once() == 1
    [row] = rows(hub, actor.tenant_id)
    assert (row.status, row.attempts) == (queue.DEAD, 4)
    assert row.last_error == "gave up after 4 attempts: HTTP 503: maintenance"
    clock.advance(hours=1)
    assert relay.run_once() == 0
    assert len(receiver.requests) == 4
    assert (deliveries(hub, "retry"), deliveries(hub, "dead")) == (3, 1)


def test_unreachable_and_slow_endpoints_are_retried(hub: OrderHub, actor: commands.Actor, receiver: Receiver,
                                                    http: httpx.Client) -> None:
    with socket.socket() as sock:  # a port nothing listens on once this closes
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    unreachable = subscribe(hub, actor, f"http://127.0.0.1:{closed_port}/hooks")
    receiver.delay = 0.5
    slow_one = subscribe(hub, actor, receiver.url)
    create_order(hub, actor)

    assert make_relay(hub, http, timeout=0.1, lease=timedelta(seconds=60)).run_once() == 2
    by_target = {r.target: r for r in rows(hub, actor.tenant_id)}
    refused, slow = by_target[unreachable], by_target[slow_one]
    assert (refused.status, refused.attempts) == (slow.status, slow.attempts) == (queue.PENDING, 1)
    assert refused.last_error.startswith("ConnectError: ")
    assert slow.last_error.startswith("ReadTimeout: ")


def test_deactivated_and_deleted_endpoints_are_dead_lettered(hub: OrderHub, actor: commands.Actor,
                                                             receiver: Receiver, http: httpx.Client) -> None:
    deactivated = subscribe(hub, actor, receiver.url)
    deleted = subscribe(hub, actor, receiver.url)
    create_order(hub, actor)
    with hub.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        conn.execute(update(webhook_endpoints).where(webhook_endpoints.c.id == deactivated).values(active=False))
        conn.execute(delete(webhook_endpoints).where(webhook_endpoints.c.id == deleted))

    assert make_relay(hub, http).run_once() == 2
    by_target = {r.target: r for r in rows(hub, actor.tenant_id)}
    assert by_target[deactivated].status == by_target[deleted].status == queue.DEAD
    assert by_target[deactivated].last_error.startswith(f"webhook endpoint {deactivated} was deactivated")
    assert by_target[deleted].last_error == f"webhook endpoint {deleted} no longer exists; not delivered"
    assert receiver.requests == []
    assert deliveries(hub, "dead") == 2


def test_outbox_rows_share_the_state_change_transaction(hub: OrderHub, actor: commands.Actor, receiver: Receiver,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    subscribe(hub, actor, receiver.url, events=("*",))
    order_id = create_order(hub, actor)
    before = rows(hub, actor.tenant_id)
    assert [r.topic for r in before] == ["webhook_endpoint.registered", "order.created"]

    with pytest.raises(InvalidTransition):  # rejected before anything is written
        hub.bus.handle(commands.ApplyOrderEvent(actor=actor, order_id=order_id, type="deliver"))
    assert rows(hub, actor.tenant_id) == before

    # A failure after the outbox insert (the audit append runs after it at commit) must take
    # the outbox row down with the order: both or neither.
    def broken_append(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(SqlAuditRepository, "append", broken_append)
    with pytest.raises(RuntimeError, match="disk full"):
        create_order(hub, actor, external_id="WEB-2")
    assert rows(hub, actor.tenant_id) == before
    with hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 1


class _Crash(BaseException):
    """Stands for the process dying mid-delivery (not an Exception, so nothing handles it)."""


def test_crashed_relays_lease_expires_and_another_relay_delivers(hub: OrderHub, actor: commands.Actor,
                                                                 receiver: Receiver, http: httpx.Client,
                                                                 clock: FixedClock) -> None:
    subscribe(hub, actor, receiver.url)
    create_order(hub, actor)

    def die(_request: httpx.Request) -> httpx.Response:
        raise _Crash

    with httpx.Client(transport=httpx.MockTransport(die)) as dying_client:
        crashed = make_relay(hub, dying_client, worker_id="relay-crashed")
        with pytest.raises(_Crash):
            crashed.run_once()
    [row] = rows(hub, actor.tenant_id)
    assert (row.status, row.locked_by) == (queue.IN_PROGRESS, "relay-crashed")

    survivor = make_relay(hub, http, worker_id="relay-survivor")
    assert survivor.run_once() == 0  # the crashed relay's lease still runs
    clock.advance(seconds=crashed.lease.total_seconds() + 1)
    assert survivor.run_once() == 1
    [row] = rows(hub, actor.tenant_id)
    assert (row.status, row.attempts) == (queue.DONE, 1)  # the crashed try counts as an attempt
    assert len(receiver.requests) == 1
    # Had the crashed relay come back, its outcome would no longer be recorded.
    with hub.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        assert not queue.finish(conn, outbox, row.id, worker_id="relay-crashed", values={"status": queue.DEAD})


def test_a_message_that_kills_every_worker_is_dead_lettered(hub: OrderHub, actor: commands.Actor,
                                                            receiver: Receiver, clock: FixedClock) -> None:
    subscribe(hub, actor, receiver.url)
    create_order(hub, actor)

    def die(_request: httpx.Request) -> httpx.Response:
        raise _Crash

    policy = RetryPolicy(max_attempts=3)
    with httpx.Client(transport=httpx.MockTransport(die)) as dying_client:
        for n in range(policy.max_attempts):
            relay = make_relay(hub, dying_client, worker_id=f"relay-{n}", policy=policy)
            with pytest.raises(_Crash):
                relay.run_once()
            clock.advance(seconds=relay.lease.total_seconds() + 1)
        last = make_relay(hub, dying_client, worker_id="relay-last", policy=policy)
        assert last.run_once() == 1  # takes it over, sees the attempts used up, gives up without sending
    [row] = rows(hub, actor.tenant_id)
    assert (row.status, row.attempts) == (queue.DEAD, policy.max_attempts)
    assert "lease expired" in row.last_error
    assert receiver.requests == []


def test_concurrent_relays_never_deliver_a_message_twice(hub: OrderHub, actor: commands.Actor,
                                                         receiver: Receiver, http: httpx.Client) -> None:
    receiver.delay = 0.005  # long enough for the relays' batches to interleave
    subscribe(hub, actor, receiver.url)
    total = 24
    for n in range(total):
        create_order(hub, actor, external_id=f"WEB-{n}")
    relays = [make_relay(hub, http, worker_id=f"relay-{i}", batch_size=3) for i in range(2)]
    barrier = threading.Barrier(len(relays))
    claimed = [0] * len(relays)
    errors: list[BaseException] = []

    def drain(index: int) -> None:
        try:
            barrier.wait(5)
            while (n := relays[index].run_once()) > 0:
                claimed[index] += n
        except BaseException as exc:  # re-raised in the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(len(relays))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sum(claimed) == total
    delivered = [r.headers["x-orderhub-delivery"] for r in receiver.requests]
    assert len(delivered) == len(set(delivered)) == total
    assert {r.status for r in rows(hub, actor.tenant_id)} == {queue.DONE}
    assert deliveries(hub, "delivered") == total


def test_requeued_dead_messages_are_delivered_and_the_requeue_is_audited(
        hub: OrderHub, actor: commands.Actor, receiver: Receiver, http: httpx.Client, clock: FixedClock) -> None:
    subscribe(hub, actor, receiver.url)
    create_order(hub, actor)
    receiver.default = 503
    relay = make_relay(hub, http, policy=RetryPolicy(max_attempts=1))
    assert relay.run_once() == 1
    [row] = rows(hub, actor.tenant_id)
    assert row.status == queue.DEAD

    receiver.default = 200
    assert hub.bus.handle(commands.RequeueDeadMessages(actor=actor)) == 1
    [row] = rows(hub, actor.tenant_id)
    assert (row.status, row.attempts, row.last_error) == (queue.PENDING, 0, None)
    assert relay.run_once() == 1
    assert rows(hub, actor.tenant_id)[0].status == queue.DONE
    with hub.engine.connect() as conn:
        actions = [s.entry.record.action for s in SqlAuditRepository(conn).iter_chain(actor.tenant_id)]
    assert actions[-1] == "outbox.dead_requeued"
    assert hub.bus.handle(commands.RequeueDeadMessages(actor=actor)) == 0  # nothing dead: nothing audited


def test_internal_targets_are_refused_unless_the_operator_allows_them(
        settings: Settings, engine: Engine, actor: commands.Actor, receiver: Receiver, http: httpx.Client) -> None:
    strict = bootstrap(dataclasses.replace(settings, webhooks_allow_private=False), engine=engine)
    with pytest.raises(InvalidInput, match="internal address"):
        strict.bus.handle(commands.RegisterWebhookEndpoint(actor=actor, url=receiver.url, secret=SECRET))
    # Registered while allowed, then the operator turns it off: the relay refuses to call it.
    lenient = bootstrap(settings, engine=engine)
    subscribe(lenient, actor, receiver.url)
    create_order(lenient, actor)
    relay = OutboxRelay(engine, strict.clock, strict.metrics, http_client=http, guard=strict.webhook_guard)
    assert relay.run_once() == 1
    [row] = rows(strict, actor.tenant_id)
    assert row.status == queue.DEAD and "internal address" in row.last_error
    assert receiver.requests == []

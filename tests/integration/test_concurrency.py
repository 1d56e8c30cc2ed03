"""Many writers on one tenant at once, through the bus, on real SQLite and PostgreSQL:
no deadlock or lost update escapes, every command lands exactly once, and the tenant's
audit chain stays intact."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.domain.orders.model import ApplyOutcome
from orderhub.service_layer.queries import OrderFilter

PLACED = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
THREADS = 6
PER_THREAD = 8


def _create(hub: OrderHub, actor: commands.Actor, external_id: str, key: str | None = None) -> str:
    cmd = commands.CreateOrder(actor=actor, channel="own_site", shop="main", external_id=external_id,
                               currency="CNY", status="pending_payment", placed_at=PLACED,
                               lines=(commands.LineInput("TEA-001", 1, "10.00"),),
                               idempotency_key=key, request_hash="h" if key else None)
    return str(hub.bus.handle(cmd).order_id)


def _run(workers: list[threading.Thread]) -> None:
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert not w.is_alive(), "a writer hung (deadlock?)"


def test_concurrent_creates_and_events_on_one_tenant(hub: OrderHub, actor: commands.Actor) -> None:
    shared = _create(hub, actor, "SHARED")
    errors: list[BaseException] = []
    outcomes: list[ApplyOutcome] = []
    barrier = threading.Barrier(THREADS)

    def writer(n: int) -> None:
        try:
            barrier.wait(10)
            for i in range(PER_THREAD):
                order_id = _create(hub, actor, f"T{n}-{i}")
                hub.bus.handle(commands.ApplyOrderEvent(actor=actor, order_id=order_id, type="mark_paid"))
                # Everyone also pays the shared order with the same key: exactly one applies.
                result = hub.bus.handle(commands.ApplyOrderEvent(actor=actor, order_id=shared, type="mark_paid",
                                                                 key="pay-shared"))
                outcomes.append(result.outcome)
        except BaseException as exc:  # re-raised below in the test thread
            errors.append(exc)

    _run([threading.Thread(target=writer, args=(n,)) for n in range(THREADS)])
    assert errors == []
    assert outcomes.count(ApplyOutcome.APPLIED) == 1
    assert outcomes.count(ApplyOutcome.DUPLICATE) == THREADS * PER_THREAD - 1

    page = hub.queries.list_orders(actor.tenant_id, OrderFilter(), limit=200)
    assert len(page["items"]) == THREADS * PER_THREAD + 1
    assert all(item["status"] == "paid" for item in page["items"])
    [(_, entries, broken)] = list(hub.queries.verify_audit([actor.tenant_id]))
    assert broken is None
    # tenant + key + (created + paid) per order + the shared order's one payment
    assert entries == 2 + 2 * THREADS * PER_THREAD + 2


def test_concurrent_creates_with_one_idempotency_key_make_one_order(hub: OrderHub, actor: commands.Actor) -> None:
    ids: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def writer() -> None:
        try:
            barrier.wait(10)
            ids.append(_create(hub, actor, "SAME", key="same-key"))
        except BaseException as exc:  # re-raised below in the test thread
            errors.append(exc)

    _run([threading.Thread(target=writer) for _ in range(THREADS)])
    assert errors == []
    assert len(set(ids)) == 1 and len(ids) == THREADS
    assert len(hub.queries.list_orders(actor.tenant_id, OrderFilter())["items"]) == 1

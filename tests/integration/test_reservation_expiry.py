"""The reservation expiry worker on real SQLite and PostgreSQL: unpaid orders give their
stock back after their hold time (per channel), paid ones keep it, paying late reserves
again, and expirers running side by side never release a reservation twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from orderhub.adapters.db.tables import stock_movements
from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.domain.commands import Actor
from orderhub.domain.inventory.stock import StockLevel
from orderhub.domain.time import FixedClock
from orderhub.service_layer.handlers.inventory import create_warehouse, set_stock
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.service_layer.inventory import expire_due
from orderhub.service_layer.inventory_check import check_inventory
from orderhub.workers.reservations import ReservationExpiryWorker

START = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
SKU = "TEA-001"


@pytest.fixture
def frozen_hub(settings: Settings, engine: Engine) -> OrderHub:
    """An OrderHub whose clock only moves when a test says so."""
    return bootstrap(settings, engine=engine, clock=FixedClock(START))


@pytest.fixture
def shop_actor(frozen_hub: OrderHub) -> Actor:
    """The ``acme`` tenant with one warehouse holding 10 units of TEA-001."""
    issued: IssuedKey = frozen_hub.bus.handle(commands.CreateTenant("acme"))
    actor = Actor(tenant_id=issued.tenant_id, actor=f"key:{issued.key_id}", source="api")
    create_warehouse(commands.CreateWarehouse(actor=actor, code="HZ1", name="杭州仓"), frozen_hub.uow_factory())
    set_stock(commands.SetStock(actor=actor, warehouse="HZ1", sku=SKU, on_hand=10), frozen_hub.uow_factory())
    return actor


def clock_of(hub: OrderHub) -> FixedClock:
    assert isinstance(hub.clock, FixedClock)
    return hub.clock


def order(hub: OrderHub, actor: Actor, external_id: str, quantity: int, *, paid: bool = False,
          channel: str = "own_site") -> str:
    now = hub.clock.now()
    cmd = commands.CreateOrder(actor=actor, channel=channel, shop="main", external_id=external_id, currency="CNY",
                               status="paid" if paid else "pending_payment", placed_at=now,
                               paid_at=now if paid else None, lines=(commands.LineInput(SKU, quantity, "59.90"),))
    return str(hub.bus.handle(cmd).order_id)


def level(hub: OrderHub, tenant_id: str) -> StockLevel:
    uow = hub.uow_factory()
    with uow:
        (found,) = uow.inventory.levels(tenant_id).values()
    return found


def statuses(hub: OrderHub, tenant_id: str, order_id: str) -> list[str]:
    uow = hub.uow_factory()
    with uow:
        return [r.status.value for r in uow.inventory.reservations_for_order(tenant_id, order_id)]


def test_unpaid_reservation_expires_after_15_minutes_and_paid_one_stays(frozen_hub: OrderHub,
                                                                        shop_actor: Actor) -> None:
    tenant = shop_actor.tenant_id
    worker = ReservationExpiryWorker(frozen_hub, batch_size=10)
    assert worker.name == "reservations"
    unpaid = order(frozen_hub, shop_actor, "W-1", 4)
    paid = order(frozen_hub, shop_actor, "W-2", 3, paid=True)
    assert level(frozen_hub, tenant).available == 3

    clock_of(frozen_hub).advance(minutes=14, seconds=59)
    assert worker.run_once() == 0
    assert statuses(frozen_hub, tenant, unpaid) == ["active"]

    clock_of(frozen_hub).advance(seconds=1)                        # exactly 15 minutes: due
    assert worker.run_once() == 1
    assert statuses(frozen_hub, tenant, unpaid) == ["expired"]
    assert statuses(frozen_hub, tenant, paid) == ["active"]
    stock = level(frozen_hub, tenant)
    assert (stock.reserved, stock.available) == (3, 7)             # the 4 units are available again

    clock_of(frozen_hub).advance(days=2)
    assert worker.run_once() == 0                                  # a paid order's reservation never expires
    assert statuses(frozen_hub, tenant, paid) == ["active"]
    with frozen_hub.engine.connect() as conn:
        actors = conn.execute(select(stock_movements.c.actor).where(stock_movements.c.kind == "expire")).scalars()
        assert list(actors) == ["worker:reservations"]
    timeline = [i["action"] for i in frozen_hub.queries.timeline(tenant, unpaid)["items"]]
    assert "reservations.expired" in timeline
    assert check_inventory(frozen_hub.engine, tenant).ok


def test_per_channel_hold_minutes_are_honoured(frozen_hub: OrderHub, shop_actor: Actor) -> None:
    frozen_hub.bus.handle(commands.PutRuleSet(actor=shop_actor, kind="inventory_policy", body={
        "unpaid_hold_minutes": 30, "unpaid_hold_minutes_by_channel": {"douyin": 5}}))
    tenant = shop_actor.tenant_id
    worker = ReservationExpiryWorker(frozen_hub)
    quick = order(frozen_hub, shop_actor, "DY-1", 1, channel="douyin")
    slow = order(frozen_hub, shop_actor, "W-1", 1)
    clock_of(frozen_hub).advance(minutes=5)
    assert worker.run_once() == 1
    assert (statuses(frozen_hub, tenant, quick), statuses(frozen_hub, tenant, slow)) == (["expired"], ["active"])
    clock_of(frozen_hub).advance(minutes=24, seconds=59)
    assert worker.run_once() == 0
    clock_of(frozen_hub).advance(seconds=1)
    assert worker.run_once() == 1
    assert statuses(frozen_hub, tenant, slow) == ["expired"]
    assert level(frozen_hub, tenant).reserved == 0


def test_paying_after_expiry_reserves_again(frozen_hub: OrderHub, shop_actor: Actor) -> None:
    tenant = shop_actor.tenant_id
    late = order(frozen_hub, shop_actor, "W-1", 6)
    clock_of(frozen_hub).advance(minutes=16)
    assert ReservationExpiryWorker(frozen_hub).run_once() == 1
    assert level(frozen_hub, tenant).reserved == 0
    frozen_hub.bus.handle(commands.ApplyOrderEvent(actor=shop_actor, order_id=late, type="mark_paid"))
    assert statuses(frozen_hub, tenant, late) == ["expired", "active"]
    assert level(frozen_hub, tenant).reserved == 6
    uow = frozen_hub.uow_factory()
    with uow:
        (active,) = uow.inventory.active_for_order(tenant, late)
    assert active.expires_at is None                                # paid: it holds until shipped or cancelled
    clock_of(frozen_hub).advance(hours=3)
    assert ReservationExpiryWorker(frozen_hub).run_once() == 0
    assert check_inventory(frozen_hub.engine, tenant).ok


def test_two_expirers_at_once_release_each_reservation_once(frozen_hub: OrderHub, shop_actor: Actor) -> None:
    """Two threads, each with its own connections, expire the same backlog concurrently."""
    tenant = shop_actor.tenant_id
    set_stock(commands.SetStock(actor=shop_actor, warehouse="HZ1", sku=SKU, on_hand=200), frozen_hub.uow_factory())
    orders = [order(frozen_hub, shop_actor, f"W-{n}", 1 + n % 3) for n in range(60)]
    held = level(frozen_hub, tenant).reserved
    assert held == sum(1 + n % 3 for n in range(60))
    clock_of(frozen_hub).advance(minutes=20)

    start = threading.Barrier(2)
    done: list[list[int]] = [[], []]
    failures: list[BaseException] = []

    def expire(slot: int) -> None:
        try:
            start.wait()
            while True:
                # A fresh unit of work per batch, as the worker does; small batches so the
                # two threads interleave many times.
                n = expire_due(frozen_hub.uow_factory(), limit=7)
                done[slot].append(n)
                if n == 0:
                    return
        except BaseException as exc:  # surfaced in the main thread below
            failures.append(exc)

    threads = [threading.Thread(target=expire, args=(slot,)) for slot in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    assert sum(map(sum, done)) == len(orders)                       # each order expired once, by one thread
    with frozen_hub.engine.connect() as conn:
        expired = conn.execute(select(func.count(), func.sum(stock_movements.c.reserved_delta)).where(
            stock_movements.c.tenant_id == tenant, stock_movements.c.kind == "expire")).one()
    assert (expired[0], -expired[1]) == (len(orders), held)         # one movement per reservation
    assert level(frozen_hub, tenant).reserved == 0
    assert all(statuses(frozen_hub, tenant, o) == ["expired"] for o in orders)
    assert check_inventory(frozen_hub.engine, tenant).ok             # rows equal the sum of their movements

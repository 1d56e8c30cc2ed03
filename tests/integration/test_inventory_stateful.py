"""A state machine over the stock of a small world (2 warehouses × 2 SKUs), on real SQLite.

Hypothesis runs random sequences of reserve (create an order, unpaid or paid, stock or
presale), pay, hold, release, cancel, ship, expire (the clock moves past the 15-minute hold
and the expiry pass runs) and adjust (receipt or damage through the repository, with its
movement), each through the real command bus or service function on a fresh database, and
after every step checks what must always hold:

* no figure of any stock row is negative, and available ≥ 0;
* reserved (presale_reserved) = the sum of the row's active stock (presale) reservations;
* every row equals the sum of its movements;
* no order holds part of its lines (the default policy reserves all or nothing), and
  cancelled, shipped and out-of-stock-held orders hold nothing;
* a shipped order consumed exactly its lines' quantities, when it held stock at shipping.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import Engine, select

from orderhub.adapters.db.engine import build_engine
from orderhub.adapters.db.inventory import WarehouseRow
from orderhub.adapters.db.tables import reservations
from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.domain.errors import InvalidTransition
from orderhub.domain.inventory.reservations import ReservationStatus
from orderhub.domain.inventory.stock import Movement, MovementKind
from orderhub.domain.orders.states import OrderStatus
from orderhub.domain.time import FixedClock
from orderhub.service_layer.inventory import expire_due

T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
WAREHOUSES = ("wh_north", "wh_south")
SKUS = ("TEA", "CUP")
ROWS = tuple(itertools.product(WAREHOUSES, SKUS))
HOLD_PAST = timedelta(minutes=16)          # the default unpaid hold is 15 minutes
NOTHING_HELD = frozenset({OrderStatus.CANCELLED, OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED})


class InventoryMachine(RuleBasedStateMachine):
    """One fresh SQLite database (a copy of the migrated ``template``) per example, in ``workdir``."""

    template: ClassVar[Path]
    workdir: ClassVar[Path]
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        workdir = self.workdir
        path = workdir / f"example-{next(_EXAMPLES)}.db"
        shutil.copyfile(self.template, path)
        self.clock = FixedClock(T0)
        url = f"sqlite:///{path}"
        engine = build_engine(url)
        self.hub: OrderHub = bootstrap(Settings.from_env({"ORDERHUB_HOME": str(workdir / "home"),
                                                          "ORDERHUB_DATABASE_URL": url}),
                                       engine=engine, clock=self.clock)
        issued = self.hub.bus.handle(commands.CreateTenant("acme"))
        self.tenant = issued.tenant_id
        self.actor = commands.Actor(tenant_id=self.tenant, actor=f"key:{issued.key_id}", source="api")
        self.count = 0
        # Orders whose reservations were gone when they shipped (nothing to consume).
        self.shipped_without_stock: set[str] = set()

    def teardown(self) -> None:
        self.hub.close()

    # ------------------------------------------------------------------ world
    @initialize(units=st.lists(st.integers(0, 6), min_size=len(ROWS), max_size=len(ROWS)))
    def open_stock(self, units: list[int]) -> None:
        now = self.clock.now()
        with self.hub.uow_factory() as uow:
            for wid in WAREHOUSES:
                uow.inventory.add_warehouse(WarehouseRow(
                    id=wid, tenant_id=self.tenant, code=wid.upper(), name=wid, province=None, city=None,
                    lat_e6=None, lon_e6=None, on_time_permille=1000, handling_cost_minor=0, active=True,
                    created_at=now))
            for (wid, sku), n in zip(ROWS, units, strict=True):
                uow.inventory.set_stock(self.tenant, wid, sku, on_hand=n, safety_stock=None, expected_version=None,
                                        now=now)
                uow.inventory.add_movements(self.tenant, [Movement(wid, sku, MovementKind.COUNT, on_hand_delta=n)],
                                            actor="test", now=now)
            uow.commit()

    # ------------------------------------------------------------------ steps
    @rule(target=orders, lines=st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 4)), min_size=1, max_size=2),
          paid=st.booleans(), presale=st.booleans())
    def reserve(self, lines: list[tuple[str, int]], paid: bool, presale: bool) -> str:
        self.count += 1
        now = self.clock.now()
        cmd = commands.CreateOrder(
            actor=self.actor, channel="own_site", shop="main", external_id=f"SM-{self.count}", currency="CNY",
            status="paid" if paid else "pending_payment", placed_at=now - timedelta(minutes=1),
            paid_at=now if paid else None, tags=("presale",) if presale else (),
            lines=tuple(commands.LineInput(sku, qty, "9.90") for sku, qty in lines))
        return str(self.hub.bus.handle(cmd).order_id)

    def _event(self, order_id: str, type_: str) -> None:
        # Not allowed from the order's status: nothing changed, which the invariants check.
        with contextlib.suppress(InvalidTransition):
            self.hub.bus.handle(commands.ApplyOrderEvent(actor=self.actor, order_id=order_id, type=type_))

    @rule(order=orders)
    def pay(self, order: str) -> None:
        self._event(order, "mark_paid")

    @rule(order=orders)
    def cancel(self, order: str) -> None:
        self._event(order, "cancel")

    @rule(order=orders)
    def hold(self, order: str) -> None:
        self._event(order, "hold")

    @rule(order=orders)
    def release(self, order: str) -> None:
        self._event(order, "release")

    @rule(order=orders)
    def ship(self, order: str) -> None:
        had = self._active(order)
        self._event(order, "ship")
        if not had and self._status(order) is OrderStatus.SHIPPED:
            self.shipped_without_stock.add(order)

    @rule()
    def expire(self) -> None:
        self.clock.advance(seconds=HOLD_PAST.total_seconds())
        expire_due(self.hub.uow_factory())

    @rule(row=st.sampled_from(ROWS), delta=st.integers(-4, 5).filter(bool))
    def adjust(self, row: tuple[str, str], delta: int) -> None:
        wid, sku = row
        now = self.clock.now()
        with self.hub.uow_factory() as uow:
            uow.inventory.lock_stock(self.tenant, keys=[row])
            if uow.inventory.change_on_hand(self.tenant, wid, sku, delta, now=now):
                kind = MovementKind.RECEIPT if delta > 0 else MovementKind.DAMAGE
                uow.inventory.add_movements(self.tenant, [Movement(wid, sku, kind, on_hand_delta=delta)],
                                            actor="test", now=now)
                uow.commit()

    # ------------------------------------------------------------------ reading
    def _status(self, order_id: str) -> OrderStatus:
        with self.hub.uow_factory() as uow:
            order = uow.orders.get(self.tenant, order_id)
            assert order is not None
            return order.status

    def _active(self, order_id: str) -> int:
        with self.hub.uow_factory() as uow:
            return sum(r.quantity for r in uow.inventory.active_for_order(self.tenant, order_id))

    # ------------------------------------------------------------------ invariants
    @invariant()
    def stock_rows_match_reservations_and_movements(self) -> None:
        with self.hub.uow_factory() as uow:
            levels = uow.inventory.levels(self.tenant)
            active = uow.inventory.active_sums(self.tenant)
            moves = uow.inventory.movement_sums(self.tenant)
        for key, level in levels.items():
            assert min(level.on_hand, level.reserved, level.presale_reserved) >= 0, level
            assert level.available >= 0, level
            assert level.reserved == active.get((key, "stock"), 0), (key, level, active)
            assert level.presale_reserved == active.get((key, "presale"), 0), (key, level, active)
            assert moves.get(key, (0, 0, 0)) == (level.on_hand, level.reserved, level.presale_reserved), key

    @invariant()
    def orders_hold_all_or_nothing(self) -> None:
        if not self.count:
            return
        with self.hub.uow_factory() as uow:
            rows = uow.connection.execute(select(reservations).where(reservations.c.tenant_id == self.tenant)).all()
            by_line: dict[tuple[str, str, int], int] = defaultdict(int)
            for r in rows:
                by_line[(r.status, r.order_id, r.line_no)] += int(r.quantity)
            for order_id in {r.order_id for r in rows}:
                order = uow.orders.get(self.tenant, order_id)
                assert order is not None
                held = [by_line.get((ReservationStatus.ACTIVE.value, order_id, ln.line_no), 0) for ln in order.lines]
                wanted = [ln.quantity for ln in order.lines]
                assert held in ([0] * len(held), wanted), f"{order_id} ({order.status}) partly reserved: {held}"
                if order.status in NOTHING_HELD or (order.status is OrderStatus.ON_HOLD and
                                                    (order.hold_reason or "").startswith("out_of_stock")):
                    assert not any(held), f"{order_id} is {order.status} ({order.hold_reason}) but holds {held}"
                if order.status is OrderStatus.SHIPPED and order_id not in self.shipped_without_stock:
                    consumed = [by_line.get((ReservationStatus.CONSUMED.value, order_id, ln.line_no), 0)
                                for ln in order.lines]
                    assert consumed == wanted, f"{order_id} shipped {wanted} but consumed {consumed}"


_EXAMPLES = itertools.count()


def test_stock_invariants_hold_through_any_sequence(sqlite_template: Path, tmp_path: Path) -> None:
    class Machine(InventoryMachine):
        template = sqlite_template
        workdir = tmp_path

    run_state_machine_as_test(Machine, settings=settings(max_examples=25, stateful_step_count=20, deadline=None))


def test_an_order_paid_on_hold_after_its_reservation_expired_holds_stock_when_released(
        settings: Settings, engine: Engine) -> None:
    clock = FixedClock(T0)
    hub = bootstrap(settings, engine=engine, clock=clock)
    issued = hub.bus.handle(commands.CreateTenant("acme"))
    actor = commands.Actor(tenant_id=issued.tenant_id, actor=f"key:{issued.key_id}", source="api")
    with hub.uow_factory() as uow:
        uow.inventory.add_warehouse(WarehouseRow(
            id="wh_north", tenant_id=issued.tenant_id, code="NORTH", name="north", province=None, city=None,
            lat_e6=None, lon_e6=None, on_time_permille=1000, handling_cost_minor=0, active=True, created_at=T0))
        uow.inventory.set_stock(issued.tenant_id, "wh_north", "TEA", on_hand=5, safety_stock=None,
                                expected_version=None, now=T0)
        uow.inventory.add_movements(issued.tenant_id, [Movement("wh_north", "TEA", MovementKind.COUNT,
                                                                on_hand_delta=5)], actor="test", now=T0)
        uow.commit()
    order_id = hub.bus.handle(commands.CreateOrder(
        actor=actor, channel="own_site", shop="main", external_id="LATE-PAY", currency="CNY",
        status="pending_payment", placed_at=T0 - timedelta(minutes=1),
        lines=(commands.LineInput("TEA", 2, "9.90"),))).order_id
    clock.advance(seconds=HOLD_PAST.total_seconds())
    assert expire_due(hub.uow_factory()) == 1
    for event in ("hold", "mark_paid", "release"):
        hub.bus.handle(commands.ApplyOrderEvent(actor=actor, order_id=order_id, type=event))

    with hub.uow_factory() as uow:
        order = uow.orders.get(issued.tenant_id, order_id)
        held = sum(r.quantity for r in uow.inventory.active_for_order(issued.tenant_id, order_id))
    assert order is not None and order.status is OrderStatus.PAID
    # A paid order either holds its stock or is held out_of_stock; never paid with nothing held.
    assert held == 2

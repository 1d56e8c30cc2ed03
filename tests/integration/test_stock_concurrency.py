"""Never oversold, under load (issue 4 "Done when"), on real SQLite and PostgreSQL.

240 orders race from 16 threads, each through the real command bus on its own connection,
for a hot SKU with 50 units spread over three warehouses; a third of them also want a second
SKU, listed before or after the hot one so the rows' lock order matters. Exactly 50 units
end up reserved, every order is either fully reserved or held ``out_of_stock``, no figure is
ever negative (watched while the orders run, and checked at the end), no exception escapes
a thread, and every stock row equals the sum of its movements.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from orderhub.adapters.db.inventory import WarehouseRow
from orderhub.adapters.db.tables import allocations, reservations, stock_levels
from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.domain.inventory.reservations import ReservationStatus
from orderhub.domain.inventory.stock import Movement, MovementKind
from orderhub.domain.orders.states import OrderStatus

PLACED = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
HOT, COLD = "HOT-TEA", "COLD-CUP"
HOT_STOCK = {"WH-A": 20, "WH-B": 20, "WH-C": 10}      # 50 units of the hot SKU
COLD_STOCK = {"WH-A": 15, "WH-C": 15}                  # 30 units of the second SKU
ORDERS = 240
WORKERS = 16
SEED = 4_2026


def _warehouse_id(code: str) -> str:
    return "wh_" + code.lower().replace("-", "_")


def stock_world(hub: OrderHub, tenant_id: str, stock: dict[str, dict[str, int]],
                cities: dict[str, tuple[str, str]] | None = None) -> None:
    """Warehouses and stock rows, each row opened by a RECEIPT movement so movements sum to it."""
    now = hub.clock.now()
    codes = sorted({code for per_sku in stock.values() for code in per_sku})
    with hub.uow_factory() as uow:
        for code in codes:
            province, city = (cities or {}).get(code, (None, None))
            uow.inventory.add_warehouse(WarehouseRow(
                id=_warehouse_id(code), tenant_id=tenant_id, code=code, name=f"Warehouse {code}", province=province,
                city=city, lat_e6=None, lon_e6=None, on_time_permille=950, handling_cost_minor=300, active=True,
                created_at=now))
        for sku, per_warehouse in stock.items():
            for code, units in per_warehouse.items():
                wid = _warehouse_id(code)
                uow.inventory.set_stock(tenant_id, wid, sku, on_hand=units, safety_stock=None, expected_version=None,
                                        now=now)
                uow.inventory.add_movements(tenant_id, [Movement(wid, sku, MovementKind.RECEIPT, on_hand_delta=units,
                                                                 reason="opening stock")], actor="test", now=now)
        uow.commit()


def create(hub: OrderHub, actor: commands.Actor, external_id: str, lines: list[tuple[str, int]],
           **extra: Any) -> str:
    """Create an order through the bus; its id."""
    cmd = commands.CreateOrder(actor=actor, channel="own_site", shop="main", external_id=external_id,
                               currency="CNY", status="pending_payment", placed_at=PLACED,
                               lines=tuple(commands.LineInput(sku, qty, "10.00") for sku, qty in lines), **extra)
    return str(hub.bus.handle(cmd).order_id)


def order_mix(rng: random.Random) -> list[list[tuple[str, int]]]:
    """240 orders of 1–2 units per line: 40 % hot only, 20 % second SKU only, 20 % hot then
    second SKU, 20 % second SKU then hot (the lines' order is the opposite of the other's)."""
    mix: list[list[tuple[str, int]]] = []
    for n in range(ORDERS):
        hot, cold = (HOT, rng.choice((1, 2))), (COLD, rng.choice((1, 2)))
        mix.append([[hot], [hot], [cold], [hot, cold], [cold, hot]][n % 5])
    rng.shuffle(mix)
    return mix


def ledger_state(hub: OrderHub, tenant_id: str) -> dict[str, Any]:
    """Stock rows, active reservations (per row and bucket) and movement sums, read together."""
    with hub.uow_factory() as uow:
        return {"levels": uow.inventory.levels(tenant_id), "active": uow.inventory.active_sums(tenant_id),
                "moves": uow.inventory.movement_sums(tenant_id)}


def assert_ledger_consistent(state: dict[str, Any]) -> None:
    """Every row: no negative figure, reserved = its active reservations, movements = the row."""
    for key, level in state["levels"].items():
        assert min(level.on_hand, level.reserved, level.presale_reserved, level.available) >= 0, level
        assert level.reserved == state["active"].get((key, "stock"), 0), key
        assert level.presale_reserved == state["active"].get((key, "presale"), 0), key
        assert state["moves"][key] == (level.on_hand, level.reserved, level.presale_reserved), key


class NegativeWatch:
    """Polls the stock rows while the orders run: the lowest figure ever seen."""

    def __init__(self, hub: OrderHub, tenant_id: str) -> None:
        self._hub, self._tenant = hub, tenant_id
        self._stop = threading.Event()
        self.lowest: int | None = None
        self.samples = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="negative-watch")

    def _run(self) -> None:
        c = stock_levels.c
        query = select(func.min(c.on_hand), func.min(c.reserved), func.min(c.presale_reserved),
                       func.min(c.on_hand - c.reserved - c.presale_reserved)).where(c.tenant_id == self._tenant)
        try:
            while not self._stop.is_set():
                with self._hub.engine.connect() as conn:
                    row = conn.execute(query).one()
                low = min(int(v) for v in row)
                self.lowest = low if self.lowest is None else min(self.lowest, low)
                self.samples += 1
                self._stop.wait(0.002)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def __enter__(self) -> NegativeWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def with_shop(hub: OrderHub, actor: commands.Actor) -> None:
    """A shop on a channel: the channel stock feed is on, so every stock change in an order's
    transaction also re-publishes the SKU's figures (as for any tenant that sells somewhere)."""
    hub.bus.handle(commands.RegisterShop(actor=actor, code="tb-1", channel="taobao", name="tb-1",
                                         secret="s3cret-s3cret", timezone=None, settings={}))


def test_hot_sku_is_never_oversold_by_concurrent_orders(hub: OrderHub, actor: commands.Actor) -> None:
    tenant_id = actor.tenant_id
    with_shop(hub, actor)
    stock_world(hub, tenant_id, {HOT: HOT_STOCK, COLD: COLD_STOCK})
    mix = order_mix(random.Random(SEED))
    assert sum(1 for lines in mix if lines[0][0] == COLD and len(lines) == 2) > 0  # both lock orders race

    with NegativeWatch(hub, tenant_id) as watch, ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(create, hub, actor, f"RACE-{n:04d}", lines) for n, lines in enumerate(mix)]
        # Any exception in any thread (deadlock, serialization failure, CHECK violation…) fails here.
        order_ids = [f.result(timeout=300) for f in futures]
    assert watch.error is None
    assert watch.samples > 0 and watch.lowest is not None and watch.lowest >= 0
    assert len(set(order_ids)) == ORDERS

    state = ledger_state(hub, tenant_id)
    assert_ledger_consistent(state)
    hot_rows = [level for (_, sku), level in state["levels"].items() if sku == HOT]
    assert sum(r.reserved for r in hot_rows) == 50
    assert sum(r.available for r in hot_rows) == 0
    assert sum(r.on_hand for r in hot_rows) == 50
    cold_rows = [level for (_, sku), level in state["levels"].items() if sku == COLD]
    assert sum(r.reserved for r in cold_rows) <= 30 and all(r.available >= 0 for r in cold_rows)

    # Per order: every line fully covered by active reservations, or none and held out_of_stock.
    with hub.uow_factory() as uow:
        rows = uow.connection.execute(select(reservations).where(
            reservations.c.tenant_id == tenant_id, reservations.c.status == ReservationStatus.ACTIVE.value)).all()
        held: dict[str, int] = defaultdict(int)
        for r in rows:
            held[f"{r.order_id}:{r.line_no}"] += int(r.quantity)
        hot_reserved = sum(int(r.quantity) for r in rows if r.sku == HOT)
        reserved_orders = held_orders = 0
        for order_id, lines in zip(order_ids, mix, strict=True):
            order = uow.orders.get(tenant_id, order_id)
            assert order is not None
            got = [held.get(f"{order_id}:{ln.line_no}", 0) for ln in order.lines]
            assert [ln.sku for ln in order.lines] == [sku for sku, _ in lines]
            if order.status is OrderStatus.ON_HOLD:
                assert (order.hold_reason or "").startswith("out_of_stock"), order.hold_reason
                assert got == [0] * len(got), f"{order_id} is held out_of_stock but holds stock"
                held_orders += 1
            else:
                assert order.status is OrderStatus.PENDING_PAYMENT
                assert got == [ln.quantity for ln in order.lines], f"{order_id} is partly reserved: {got}"
                reserved_orders += 1
    assert hot_reserved == 50
    assert reserved_orders > 0 and held_orders > 0 and reserved_orders + held_orders == ORDERS
    [(_, _, broken)] = list(hub.queries.verify_audit([tenant_id]))
    assert broken is None


def test_an_order_no_warehouse_can_serve_alone_is_split_with_every_candidates_score(
        hub: OrderHub, actor: commands.Actor) -> None:
    tenant_id = actor.tenant_id
    stock_world(hub, tenant_id, {HOT: {"WH-A": 20, "WH-B": 20, "WH-C": 10}},
                cities={"WH-A": ("浙江省", "杭州市"), "WH-B": ("上海市", "上海市"), "WH-C": ("北京市", "北京市")})
    address = {"country": "CN", "province": "浙江省", "city": "杭州市", "district": "西湖区",
               "detail": "文三路 90 号", "postcode": "310000", "name": "王小明", "phone": "138****5678"}
    order_id = create(hub, actor, "SPLIT-1", [(HOT, 25)], shipping_address=address)

    with hub.uow_factory() as uow:
        order = uow.orders.get(tenant_id, order_id)
        plan = uow.connection.execute(select(allocations.c.plan).where(
            allocations.c.tenant_id == tenant_id, allocations.c.order_id == order_id)).scalar_one()
        active = uow.inventory.active_for_order(tenant_id, order_id)
    assert order is not None and order.status is OrderStatus.PENDING_PAYMENT
    assert plan["split"] is True and plan["complete"] is True and plan["shortfalls"] == []
    assigned: dict[str, int] = defaultdict(int)
    for a in plan["assignments"]:
        assigned[a["warehouse"]] += a["quantity"]
    assert sum(assigned.values()) == 25 and len(assigned) >= 2
    # Every warehouse is a candidate with its score, the score is the sum of its weighted parts,
    # and candidates come best first.
    candidates = plan["candidates"]
    assert {c["warehouse"] for c in candidates} == set(HOT_STOCK)
    for c in candidates:
        assert set(c["parts"]) == {"distance", "cover", "on_time", "cost"}
        assert c["score"] == sum(c["parts"].values())
        assert c["serves_all"] is False
    scores = [c["score"] for c in candidates]
    assert scores == sorted(scores, reverse=True)
    # The buyer is in Hangzhou: the Hangzhou warehouse ranks first and is emptied first.
    assert candidates[0]["warehouse"] == "WH-A" and assigned["WH-A"] == 20
    # The reservations are the plan's assignments.
    by_warehouse: dict[str, int] = defaultdict(int)
    for r in active:
        by_warehouse[r.warehouse] += r.quantity
    assert by_warehouse == {_warehouse_id(code): units for code, units in assigned.items()}
    assert_ledger_consistent(ledger_state(hub, tenant_id))
    actions = [item["action"] for item in hub.queries.timeline(tenant_id, order_id)["items"]]
    assert "order.allocated" in actions


def test_an_order_one_warehouse_can_serve_is_not_split(hub: OrderHub, actor: commands.Actor) -> None:
    tenant_id = actor.tenant_id
    stock_world(hub, tenant_id, {HOT: {"WH-A": 20, "WH-B": 20, "WH-C": 10}})
    order_id = create(hub, actor, "WHOLE-1", [(HOT, 15)])
    with hub.uow_factory() as uow:
        plan = uow.connection.execute(select(allocations.c.plan).where(
            allocations.c.tenant_id == tenant_id, allocations.c.order_id == order_id)).scalar_one()
    assert plan["split"] is False and len({a["warehouse"] for a in plan["assignments"]}) == 1
    assert len(plan["candidates"]) == 3


def test_cancels_and_payments_racing_new_orders_keep_the_ledger(hub: OrderHub, actor: commands.Actor) -> None:
    """Releases and new reservations of the same SKU in different warehouses at once, with the
    channel stock feed on: no deadlock or other error escapes, and the ledger still adds up."""
    tenant_id = actor.tenant_id
    with_shop(hub, actor)
    stock_world(hub, tenant_id, {HOT: HOT_STOCK, COLD: COLD_STOCK})
    # 40 one-unit orders spread over all three warehouses (allocation empties the best first).
    seeded = [create(hub, actor, f"SEED-{n:03d}", [(HOT, 1)] if n % 4 else [(COLD, 1), (HOT, 1)])
              for n in range(40)]
    with hub.uow_factory() as uow:
        used = {r.warehouse for o in seeded for r in uow.inventory.active_for_order(tenant_id, o)}
    assert len(used) == 3

    rng = random.Random(SEED)
    work: list[tuple[str, Any]] = [("cancel", o) for o in seeded[::2]] + [("pay", o) for o in seeded[1::2]]
    work += [("create", lines) for lines in order_mix(rng)[:80]]
    rng.shuffle(work)

    def run(n: int, what: str, arg: Any) -> None:
        if what == "create":
            create(hub, actor, f"MIX-{n:04d}", arg)
        else:
            hub.bus.handle(commands.ApplyOrderEvent(actor=actor, order_id=arg,
                                                    type="cancel" if what == "cancel" else "mark_paid"))

    with NegativeWatch(hub, tenant_id) as watch, ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(run, n, what, arg) for n, (what, arg) in enumerate(work)]
        for f in futures:
            f.result(timeout=300)
    assert watch.error is None and watch.lowest is not None and watch.lowest >= 0

    state = ledger_state(hub, tenant_id)
    assert_ledger_consistent(state)
    with hub.uow_factory() as uow:
        for order_id in seeded[::2]:
            assert uow.inventory.active_for_order(tenant_id, order_id) == []
        for order_id in seeded[1::2]:
            order = uow.orders.get(tenant_id, order_id)
            assert order is not None and order.status is OrderStatus.PAID
            assert all(r.expires_at is None for r in uow.inventory.active_for_order(tenant_id, order_id))

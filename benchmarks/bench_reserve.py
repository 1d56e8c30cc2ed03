"""Stock reservations per second, with p50/p99 latency, on PostgreSQL (and SQLite), for 1, 8,
32 and 64 concurrent clients, on one hot SKU and on 10,000 SKUs:

* **create order** — ``CreateOrder`` through the message bus: the order, its reservation
  (stock row locked, conditional update, reservation row, movement, allocation plan) and its
  audit entries, in one transaction;
* **reserve step** — the reservation alone in its own unit of work:
  ``uow.inventory.lock_stock`` + ``uow.inventory.reserve`` + ``commit``;
* **raw UPDATE** — the same conditional ``UPDATE stock_levels SET reserved = reserved + 1
  WHERE … AND on_hand - reserved - presale_reserved >= 1``, one committed transaction per
  update, straight through psycopg (sqlite3 on SQLite), from the same number of clients, in
  the same run;

and the ratio of the reserve step's rate to the raw rate.

    .venv/bin/python benchmarks/bench_reserve.py [--clients 1,8,32,64] [--seconds 2] [--skip-sqlite]

Every client is a forked process of its own with one connection (threads in one process
would share the GIL, which the raw client barely needs and OrderHub does). Figures only:
nothing here passes or fails on time; benchmarks/README.md says what each row means.
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import random
import sqlite3
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from bench_orders import (
    Figure,
    RunStart,
    add_engine_options,
    analyze,
    console,
    pg_database,
)
from rich.table import Table
from sqlalchemy.engine import make_url

from orderhub.adapters.db.engine import build_engine
from orderhub.adapters.db.inventory import WarehouseRow
from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.domain.inventory.stock import Bucket, Movement, MovementKind

BENCH_DB = "orderhub_bench_reserve"      # its own database: bench_orders' may be in use meanwhile
WAREHOUSE = "wh_bench"
HOT_SKU = "HOT-0001"
HOT_UNITS = 1_000_000_000                # never runs out, whatever the run does
MANY = 10_000
MANY_UNITS = 1_000_000
PLACED = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
SCENARIOS = ("hot SKU", "10,000 SKUs")
OPERATIONS = ("create order", "reserve step", "raw UPDATE")
RAW_SQL = ("UPDATE stock_levels SET reserved = reserved + 1 WHERE tenant_id = {p} AND warehouse_id = {p} "
           "AND sku = {p} AND on_hand - reserved - presale_reserved >= 1")


def many_sku(n: int) -> str:
    return f"SKU-{n:05d}"


@dataclass(frozen=True)
class World:
    """What the clients need to know: where the database is and whose stock they reserve."""

    engine: str
    url: str
    home: str
    tenant_id: str
    actor: commands.Actor


# ---------------------------------------------------------------------------- setup
def prepare(engine_name: str, url: str, home: Path) -> World:
    """Migrate, make the tenant, one warehouse, the hot SKU and 10,000 SKUs (each row opened by
    a receipt movement, as the API would), then refresh the planner's statistics."""
    settings = Settings(home=home, database_url=url, host="127.0.0.1", port=0, amqp_url=None)
    hub = bootstrap(settings, engine=build_engine(url, pool_size=1), upgrade_db=True)
    try:
        issued = hub.bus.handle(commands.CreateTenant("bench-reserve"))
        actor = commands.Actor(tenant_id=issued.tenant_id, actor=f"key:{issued.key_id}", source="api")
        now = hub.clock.now()
        rows = [(HOT_SKU, HOT_UNITS)] + [(many_sku(n), MANY_UNITS) for n in range(MANY)]
        with hub.uow_factory() as uow:
            uow.inventory.add_warehouse(WarehouseRow(
                id=WAREHOUSE, tenant_id=issued.tenant_id, code="BENCH", name="Bench warehouse", province="浙江省",
                city="杭州市", lat_e6=None, lon_e6=None, on_time_permille=980, handling_cost_minor=300, active=True,
                created_at=now))
            for sku, units in rows:
                uow.inventory.set_stock(issued.tenant_id, WAREHOUSE, sku, on_hand=units, safety_stock=None,
                                        expected_version=None, now=now)
            uow.inventory.add_movements(issued.tenant_id, [Movement(WAREHOUSE, sku, MovementKind.RECEIPT,
                                                                    on_hand_delta=units) for sku, units in rows],
                                        actor="bench", now=now)
            uow.commit()
        analyze(hub)
    finally:
        hub.close()
    return World(engine_name, url, str(home), issued.tenant_id, actor)


# ---------------------------------------------------------------------------- one client
class Client:
    """One client process: its own OrderHub (one pooled connection) and its own raw connection."""

    def __init__(self, world: World, index: int, run: str) -> None:
        self.world = world
        self.index = index
        self.run = run
        self.rng = random.Random(index)
        self.n = 0
        settings = Settings(home=Path(world.home), database_url=world.url, host="127.0.0.1", port=0, amqp_url=None)
        self.hub: OrderHub = bootstrap(settings, engine=build_engine(world.url, pool_size=1))
        self.raw: Any = None
        self.raw_sql = RAW_SQL.format(p="%s" if world.engine == "PostgreSQL" else "?")

    def use(self, operation: str) -> None:
        """Hold only the connection ``operation`` needs: 64 clients × 2 connections would pass
        PostgreSQL's default max_connections (100)."""
        if operation != "raw UPDATE":
            if self.raw is not None:
                self.raw.close()
                self.raw = None
            return
        self.hub.engine.dispose()
        if self.raw is not None:
            return
        if self.world.engine == "PostgreSQL":
            conninfo = make_url(self.world.url).set(drivername="postgresql").render_as_string(hide_password=False)
            self.raw = psycopg.connect(conninfo)
        else:
            self.raw = sqlite3.connect(make_url(self.world.url).database or "", timeout=30, isolation_level=None)
            self.raw.execute("PRAGMA synchronous=NORMAL")
            self.raw.execute("PRAGMA busy_timeout=30000")

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()
        self.hub.close()

    def sku(self, scenario: str) -> str:
        return HOT_SKU if scenario == SCENARIOS[0] else many_sku(self.rng.randrange(MANY))

    def create_order(self, scenario: str) -> None:
        self.n += 1
        self.hub.bus.handle(commands.CreateOrder(
            actor=self.world.actor, channel="own_site", shop="main", external_id=f"B{self.run}-{self.index}-{self.n}",
            currency="CNY", status="pending_payment", placed_at=PLACED,
            lines=(commands.LineInput(self.sku(scenario), 1, "19.90"),)))

    def reserve_step(self, scenario: str) -> None:
        sku = self.sku(scenario)
        with self.hub.uow_factory() as uow:
            uow.inventory.lock_stock(self.world.tenant_id, keys=[(WAREHOUSE, sku)])
            if not uow.inventory.reserve(self.world.tenant_id, WAREHOUSE, sku, 1, Bucket.STOCK,
                                         now=uow.clock.now()):
                raise RuntimeError(f"{sku} ran out")
            uow.commit()

    def raw_update(self, scenario: str) -> None:
        sku = self.sku(scenario)
        if self.world.engine == "PostgreSQL":
            with self.raw.cursor() as cur:
                cur.execute(self.raw_sql, (self.world.tenant_id, WAREHOUSE, sku))
                done = cur.rowcount
            self.raw.commit()
        else:
            # The same transaction shape as OrderHub's writers on SQLite: BEGIN IMMEDIATE.
            self.raw.execute("BEGIN IMMEDIATE")
            done = self.raw.execute(self.raw_sql, (self.world.tenant_id, WAREHOUSE, sku)).rowcount
            self.raw.execute("COMMIT")
        if done != 1:
            raise RuntimeError(f"{sku} ran out")

    def operation(self, name: str) -> Callable[[str], None]:
        return {"create order": self.create_order, "reserve step": self.reserve_step,
                "raw UPDATE": self.raw_update}[name]


Leg = tuple[str, str]  # (scenario, operation)


def legs() -> list[Leg]:
    return [(s, o) for s in SCENARIOS for o in OPERATIONS]


def client_process(world: World, index: int, seconds: float, warmup: float, barrier: Any, results: Any) -> None:
    """Run every leg: a warm-up, then (in step with the other clients) ``seconds`` of calls;
    report (leg, start, end, latencies) per leg."""
    try:
        client = Client(world, index, run=f"{barrier.parties}")
        try:
            for leg in legs():
                scenario, name = leg
                client.use(name)
                call = client.operation(name)
                barrier.wait()
                stop = time.perf_counter() + warmup
                while time.perf_counter() < stop:
                    call(scenario)
                barrier.wait()
                latencies: list[float] = []
                started = time.perf_counter()
                stop = started + seconds
                while True:
                    t0 = time.perf_counter()
                    if t0 >= stop:
                        break
                    call(scenario)
                    latencies.append(time.perf_counter() - t0)
                results.put((leg, started, time.perf_counter(), latencies))
        finally:
            client.close()
    except BaseException as exc:
        barrier.abort()
        results.put(exc)
        if not isinstance(exc, threading.BrokenBarrierError):  # the others stopped because of this one
            traceback.print_exc()
        raise SystemExit(1) from None


def run_clients(world: World, clients: int, seconds: float, warmup: float) -> list[Figure]:
    """``clients`` forked processes through every leg; one figure per leg."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(clients, timeout=600)
    results = ctx.Queue()
    procs = [ctx.Process(target=client_process, args=(world, i, seconds, warmup, barrier, results),
                         name=f"bench-reserve-{i}") for i in range(clients)]
    for p in procs:
        p.start()
    reports: list[Any] = []
    while True:
        # Drain while the clients run: a process can't exit before its queued reports are read.
        try:
            reports.append(results.get(timeout=0.5))
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                break
    for p in procs:
        p.join()
    failures = [r for r in reports if isinstance(r, BaseException)]
    if failures or any(p.exitcode != 0 for p in procs):
        raise RuntimeError(f"a client of {clients} failed") from (failures[0] if failures else None)
    figures = []
    callers = f"{clients} process{'es' if clients > 1 else ''}"
    for leg in legs():
        mine = [r for r in reports if r[0] == leg]
        latencies = [x for r in mine for x in r[3]]
        seconds_taken = max(r[2] for r in mine) - min(r[1] for r in mine)
        figures.append(Figure(world.engine, leg[0], leg[1], callers, 1, len(latencies), seconds_taken, latencies))
    return figures


# ---------------------------------------------------------------------------- engines


def bench_engine(engine_name: str, url: str, home: Path, clients: Sequence[int], args: argparse.Namespace,
                 ) -> list[Figure]:
    console.print(f"[{engine_name}] preparing 1 + {MANY:,} stock rows …")
    world = prepare(engine_name, url, home)
    figures: list[Figure] = []
    for n in clients:
        console.print(f"[{engine_name}] {n} client(s) …")
        figures += run_clients(world, n, args.seconds, args.warmup)
    return figures


# ---------------------------------------------------------------------------- report
def ms(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def print_results(facts: list[tuple[str, str]], figures: list[Figure], args: argparse.Namespace) -> None:
    info = Table(title="Machine", show_header=False)
    info.add_column(style="bold")
    info.add_column()
    for k, v in facts:
        info.add_row(k, v)
    console.print(info)
    table = Table(title=f"Reservations per second ({args.seconds:g} s per figure after a {args.warmup:g} s warm-up; "
                        "every client a process with one connection)")
    for name in ("engine", "SKUs", "operation", "clients", "count", "per second", "p50 ms", "p99 ms"):
        table.add_column(name, justify="left" if name in ("engine", "SKUs", "operation", "clients") else "right")
    last = None
    for f in figures:
        if last is not None and (f.engine, f.path) != last:
            table.add_section()
        last = (f.engine, f.path)
        table.add_row(f.engine, f.path, f.operation, f.callers, str(f.count), f"{f.rate:,.0f}",
                      ms(f.percentile(50)), ms(f.percentile(99)))
    console.print(table)

    by_key = {(f.engine, f.path, f.operation, f.callers): f for f in figures}
    ratios = Table(title="OrderHub ÷ raw conditional UPDATE (same clients, same run)")
    for name in ("engine", "SKUs", "clients", "reserve step/s", "raw UPDATE/s", "reserve step ÷ raw",
                 "create order/s", "create order ÷ raw"):
        ratios.add_column(name, justify="left" if name in ("engine", "SKUs", "clients") else "right")
    for f in figures:
        if f.operation != "raw UPDATE":
            continue
        step = by_key[(f.engine, f.path, "reserve step", f.callers)]
        order = by_key[(f.engine, f.path, "create order", f.callers)]
        ratios.add_row(f.engine, f.path, f.callers, f"{step.rate:,.0f}", f"{f.rate:,.0f}", f"{step.rate / f.rate:.2f}",
                       f"{order.rate:,.0f}", f"{order.rate / f.rate:.2f}")
    console.print(ratios)
    target = [f for f in figures if f.engine == "PostgreSQL" and f.path == SCENARIOS[0] and f.callers == "32 processes"]
    if len(target) == len(OPERATIONS):
        raw = by_key[("PostgreSQL", SCENARIOS[0], "raw UPDATE", "32 processes")]
        step = by_key[("PostgreSQL", SCENARIOS[0], "reserve step", "32 processes")]
        console.print(f"target (issue 4): PostgreSQL hot-SKU reserve step at 32 clients ≥ ½ the raw rate: "
                      f"{step.rate:,.0f}/s vs {raw.rate:,.0f}/s = {step.rate / raw.rate:.2f}")
    console.print(
        "create order = CreateOrder through the bus: order + lines, stock row locked (FOR UPDATE on PostgreSQL), "
        "allocation plan, conditional UPDATE, reservation row, movement, audit entries on the tenant's hash chain; "
        "one transaction. reserve step = lock_stock + reserve + commit in a unit of work (no order, no audit). "
        "raw UPDATE = the same conditional UPDATE, one committed transaction each, psycopg / sqlite3 without "
        "SQLAlchemy. All on one tenant and one warehouse; hot SKU = one row for every call; 10,000 SKUs = a random "
        "row per call.")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    counts = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    p.add_argument("--clients", type=counts, default=[1, 8, 32, 64],
                   help="client counts on PostgreSQL (default 1,8,32,64)")
    p.add_argument("--sqlite-clients", type=counts, default=[1, 8],
                   help="client counts on SQLite (default 1,8: SQLite has one writer at a time, so more clients "
                        "only queue; an empty list skips SQLite)")
    p.add_argument("--seconds", type=float, default=1.5, help="measured seconds per figure (default 1.5)")
    p.add_argument("--warmup", type=float, default=0.3, help="warm-up seconds before each figure (default 0.3)")
    add_engine_options(p, BENCH_DB)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    run = RunStart.now(args)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="orderhub-bench-reserve-") as tmp:
        if run.pg is not None:
            with pg_database(args.pg_url, BENCH_DB) as url:
                figures += bench_engine("PostgreSQL", url, Path(tmp) / "pg", args.clients, args)
        if not args.skip_sqlite and args.sqlite_clients:
            home = Path(tmp) / "sqlite"
            figures += bench_engine("SQLite", f"sqlite:///{home / 'orderhub.db'}", home, args.sqlite_clients, args)
    print_results(run.machine(), figures, args)
    console.print(f"total run time {time.perf_counter() - run.started:.0f} s")


if __name__ == "__main__":
    main()

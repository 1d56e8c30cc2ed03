"""Order throughput: creates and status transitions per second, through the service layer
(the message bus) and through HTTP (a real uvicorn server), on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_orders.py [--orders N] [--http-orders N] [--skip-pg]

Figures only: nothing here passes or fails on time. benchmarks/README.md says what each row
means.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import platform
import random
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.domain.audit import canonical_json
from orderhub.entrypoints.cli.server import RunningServer
from orderhub.simulation.orders import sample_order

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BENCH_DB = "orderhub_bench"
SEED = 20261121
# Two status events per order, each valid from the status the order was created in.
EVENTS = {"paid": ("ready_to_ship", "ship"), "pending_payment": ("mark_paid", "ready_to_ship")}
WEBHOOK_SINK = "http://127.0.0.1:9/bench-sink"  # subscribed, never called: no relay runs

console = Console(width=None if sys.stdout.isatty() else 140, highlight=False)

Step = tuple[str, str, str]  # (order id, event type, dedup key)


# ---------------------------------------------------------------------------- figures
@dataclass
class Figure:
    """One measured row of the table."""

    engine: str
    path: str
    operation: str
    callers: str
    tenants: int
    count: int
    seconds: float
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")

    def percentile(self, p: int) -> float | None:
        if len(self.latencies) < 2:
            return None
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


def plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


@dataclass(frozen=True)
class BenchTenant:
    """A tenant made for the run: its actor for the bus and its admin key for HTTP."""

    name: str
    actor: commands.Actor
    api_key: str


class OrderNumbers:
    """Hands out order numbers, so every order of the run has its own external id."""

    def __init__(self, start: int = 0) -> None:
        self._n = start
        self._rng = random.Random(SEED + start)

    def bodies(self, count: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            self._n += 1
            out.append(sample_order(self._rng, self._n))
        return out


def create_command(body: dict[str, Any], actor: commands.Actor) -> commands.CreateOrder:
    """The command ``POST /api/v1/orders`` would build for ``body`` (with an Idempotency-Key)."""
    paid_at = body.get("paid_at")
    return commands.CreateOrder(
        actor=actor, channel=body["channel"], shop=body["shop"], external_id=body["external_id"],
        currency=body["currency"], status=body["status"], placed_at=datetime.fromisoformat(body["placed_at"]),
        paid_at=datetime.fromisoformat(paid_at) if paid_at else None,
        lines=tuple(commands.LineInput(sku=ln["sku"], title=ln["title"], quantity=ln["quantity"],
                                       unit_price=ln["unit_price"]) for ln in body["lines"]),
        buyer=dict(body["buyer"]), shipping_address=dict(body["shipping_address"]),
        shipping_fee=body["shipping_fee"], discount=body["discount"], tags=tuple(body["tags"]),
        idempotency_key=f"idem-{body['external_id']}",
        request_hash=hashlib.sha256(canonical_json(body).encode()).hexdigest())


def event_plan(body: dict[str, Any], order_id: str) -> list[Step]:
    """The two events applied to an order, with their dedup keys."""
    return [(order_id, t, f"{body['external_id']}:{t}") for t in EVENTS[body["status"]]]


def split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    return [list(items[i::parts]) for i in range(parts)]


def interleave_steps(plans: list[list[Step]]) -> list[Step]:
    """All first events, then all second events: an order's events stay in order."""
    return [plan[step] for step in range(2) for plan in plans]


def run_parallel(jobs: list[list[Any]], do: Callable[[int, Any], Any]) -> tuple[float, list[list[Any]], list[float]]:
    """Run ``do(thread_index, item)`` for every item, one thread per job list, started together.

    Returns wall seconds, the results per thread and every call's latency.
    """
    barrier = threading.Barrier(len(jobs) + 1)
    results: list[list[Any]] = [[] for _ in jobs]
    latencies: list[list[float]] = [[] for _ in jobs]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        barrier.wait()
        try:
            for item in jobs[i]:
                t0 = time.perf_counter()
                results[i].append(do(i, item))
                latencies[i].append(time.perf_counter() - t0)
        except BaseException as exc:  # reported after the join, with the figure abandoned
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,), name=f"bench-{i}") for i in range(len(jobs))]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return seconds, results, [x for lat in latencies for x in lat]


# ---------------------------------------------------------------------------- service layer
def create_orders(hub: OrderHub, bodies: list[list[dict[str, Any]]], tenants: list[BenchTenant],
                  ) -> tuple[float, list[list[Step]], list[float]]:
    """Create ``bodies[i]`` on thread i (acting for tenants[i % len]); return the seconds,
    each thread's event plan for the created orders and the latencies."""
    jobs = [[create_command(b, tenants[i % len(tenants)].actor) for b in part] for i, part in enumerate(bodies)]
    seconds, results, latencies = run_parallel(jobs, lambda _i, cmd: hub.bus.handle(cmd))
    plans = []
    for part, created in zip(bodies, results, strict=True):
        for r in created:
            if not r.created:
                raise RuntimeError(f"order {r.order_id} was not created: is the benchmark database fresh?")
        plans.append(interleave_steps([event_plan(b, r.order_id) for b, r in zip(part, created, strict=True)]))
    return seconds, plans, latencies


def apply_events(hub: OrderHub, plans: list[list[Step]], tenants: list[BenchTenant]) -> tuple[float, int, list[float]]:
    """Apply ``plans[i]`` on thread i; return the seconds, the number of events and the latencies."""
    jobs = [[commands.ApplyOrderEvent(actor=tenants[i % len(tenants)].actor, order_id=o, type=t, key=k)
             for o, t, k in plan] for i, plan in enumerate(plans)]
    seconds, _, latencies = run_parallel(jobs, lambda _i, cmd: hub.bus.handle(cmd))
    return seconds, sum(len(j) for j in jobs), latencies


def service_round(hub: OrderHub, seq: OrderNumbers, tenants: list[BenchTenant], threads: int, count: int,
                  ) -> tuple[tuple[float, list[float]], tuple[float, int, list[float]]]:
    """Create ``count`` orders on ``threads`` threads, then apply two events to each."""
    c_seconds, plans, c_lat = create_orders(hub, split(seq.bodies(count), threads), tenants)
    t_seconds, t_count, t_lat = apply_events(hub, plans, tenants)
    return (c_seconds, c_lat), (t_seconds, t_count, t_lat)


def analyze(hub: OrderHub) -> None:
    """Refresh the planner's statistics, as autovacuum does on a live database.

    Without them a fresh database plans ``WHERE tenant_id = … AND id = …`` on orders as a
    scan of every order of the tenant (any index leading with tenant_id looks as good as the
    primary key while the tables look empty), and every figure would measure that instead.
    """
    with hub.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


def service_figures(engine_name: str, hub: OrderHub, seq: OrderNumbers, tenants: list[BenchTenant], *,
                    threads: int, n_tenants: int, count: int, warmup: int) -> list[Figure]:
    used = tenants[:n_tenants]
    service_round(hub, seq, used, threads, max(warmup, threads))  # warm-up, same shape, not counted
    analyze(hub)
    (c_sec, c_lat), (t_sec, t_count, t_lat) = service_round(hub, seq, used, threads, count)
    callers = plural(threads, "thread", "threads")
    return [Figure(engine_name, "service", "create order", callers, n_tenants, count, c_sec, c_lat),
            Figure(engine_name, "service", "transition", callers, n_tenants, t_count, t_sec, t_lat)]


@dataclass(frozen=True)
class ProcessJob:
    """What one benchmark process does (picklable: processes are spawned, not forked)."""

    url: str
    home: str
    tenant: str
    start: int
    count: int
    warmup: int


def process_worker(job: ProcessJob, barrier: Any, results: Any) -> None:
    """In a process of its own: a warm-up, then (in step with the other processes) the
    creates, then the events; report their start and end times and latencies."""
    settings = Settings(home=Path(job.home), database_url=job.url, host="127.0.0.1", port=0, amqp_url=None,
                        # Tenants subscribe a local sink no relay calls (WEBHOOK_SINK): let it past the guard.
                        webhooks_allow_private=True)
    hub = bootstrap(settings)
    try:
        found = hub.queries.tenant_by_name(job.tenant)
        if found is None:
            raise RuntimeError(f"no tenant {job.tenant!r}")
        tenant = [BenchTenant(job.tenant, commands.Actor(tenant_id=found.id, actor="key:bench", source="api"), "")]
        seq = OrderNumbers(job.start)
        service_round(hub, seq, tenant, 1, job.warmup)
        bodies = [seq.bodies(job.count)]
        barrier.wait()
        c0 = time.monotonic()
        _, plans, c_lat = create_orders(hub, bodies, tenant)
        c1 = time.monotonic()
        barrier.wait()
        t0 = time.monotonic()
        _, t_count, t_lat = apply_events(hub, plans, tenant)
        t1 = time.monotonic()
        results.put((c0, c1, c_lat, t0, t1, t_count, t_lat))
    except BaseException as exc:
        barrier.abort()
        results.put(exc)
        raise
    finally:
        hub.close()


def process_figures(engine_name: str, url: str, home: Path, tenants: list[BenchTenant], *, processes: int,
                    n_tenants: int, count: int, warmup: int, start: int) -> list[Figure]:
    """``processes`` processes of one thread each, each creating ``count // processes`` orders."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes, timeout=300)
    results = ctx.Queue()
    per_process = max(1, count // processes)
    jobs = [ProcessJob(url, str(home), tenants[i % n_tenants].name, start + i * 100_000, per_process, warmup)
            for i in range(processes)]
    workers = [ctx.Process(target=process_worker, args=(job, barrier, results), name=f"bench-process-{i}")
               for i, job in enumerate(jobs)]
    for w in workers:
        w.start()
    reports = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
    for r in reports:
        if isinstance(r, BaseException):
            raise RuntimeError("a benchmark process failed") from r
    c_sec = max(r[1] for r in reports) - min(r[0] for r in reports)
    t_sec = max(r[4] for r in reports) - min(r[3] for r in reports)
    callers = plural(processes, "process", "processes")
    return [Figure(engine_name, "service", "create order", callers, n_tenants, per_process * processes, c_sec,
                   [x for r in reports for x in r[2]]),
            Figure(engine_name, "service", "transition", callers, n_tenants, sum(r[5] for r in reports), t_sec,
                   [x for r in reports for x in r[6]])]


# ---------------------------------------------------------------------------- HTTP
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http_round(url: str, seq: OrderNumbers, tenant: BenchTenant, clients: int, count: int,
               ) -> tuple[tuple[float, list[float]], tuple[float, int, list[float]]]:
    bodies = split(seq.bodies(count), clients)
    pool = [httpx.Client(base_url=url, headers={"Authorization": f"Bearer {tenant.api_key}"}, timeout=60)
            for _ in range(clients)]
    try:
        def create(i: int, body: dict[str, Any]) -> str:
            r = pool[i].post("/api/v1/orders", json=body, headers={"Idempotency-Key": f"idem-{body['external_id']}"})
            if r.status_code != 201:
                raise RuntimeError(f"POST /api/v1/orders answered {r.status_code}: {r.text[:300]}")
            order_id: str = r.json()["id"]
            return order_id

        def apply(i: int, step: Step) -> None:
            order_id, type_, key = step
            r = pool[i].post(f"/api/v1/orders/{order_id}/events", json={"type": type_, "key": key})
            if r.status_code != 200 or r.json()["outcome"] != "applied":
                raise RuntimeError(f"POST /events answered {r.status_code}: {r.text[:300]}")

        c_seconds, ids, c_lat = run_parallel(bodies, create)
        event_jobs = [interleave_steps([event_plan(b, o) for b, o in zip(part, ids[i], strict=True)])
                      for i, part in enumerate(bodies)]
        t_seconds, _, t_lat = run_parallel(event_jobs, apply)
    finally:
        for client in pool:
            client.close()
    return (c_seconds, c_lat), (t_seconds, sum(len(j) for j in event_jobs), t_lat)


def http_figures(engine_name: str, hub: OrderHub, seq: OrderNumbers, tenant: BenchTenant, *, count: int,
                 warmup: int, client_counts: Sequence[int]) -> list[Figure]:
    server = RunningServer(hub, host="127.0.0.1", port=free_port(), workers=False, log_level="warning")
    server.start()
    figures = []
    try:
        for clients in client_counts:
            http_round(server.url, seq, tenant, clients, max(warmup, clients))  # warm-up, not counted
            analyze(hub)
            (c_sec, c_lat), (t_sec, t_count, t_lat) = http_round(server.url, seq, tenant, clients, count)
            callers = plural(clients, "client", "clients")
            figures += [Figure(engine_name, "HTTP", "POST /orders", callers, 1, count, c_sec, c_lat),
                        Figure(engine_name, "HTTP", "POST /orders/{id}/events", callers, 1, t_count, t_sec, t_lat)]
    finally:
        server.stop()
    return figures


# ---------------------------------------------------------------------------- one engine
def make_tenants(hub: OrderHub, n: int) -> list[BenchTenant]:
    out = []
    for i in range(n):
        issued = hub.bus.handle(commands.CreateTenant(f"bench-{i}"))
        actor = commands.Actor(tenant_id=issued.tenant_id, actor=f"key:{issued.key_id}", source="api",
                               trace_id=None)
        # One webhook subscription per tenant: every event also writes an outbox row, as in
        # production. The relay is not running, so nothing is delivered.
        hub.bus.handle(commands.RegisterWebhookEndpoint(actor=actor, url=WEBHOOK_SINK,
                                                        secret="bench-secret-0123456789"))
        out.append(BenchTenant(issued.tenant, actor, issued.api_key))
    return out


def bench_engine(engine_name: str, url: str, home: Path, args: argparse.Namespace) -> list[Figure]:
    settings = Settings(home=home, database_url=url, host="127.0.0.1", port=0, amqp_url=None,
                        # Tenants subscribe a local sink no relay calls (WEBHOOK_SINK): let it past the guard.
                        webhooks_allow_private=True)
    hub = bootstrap(settings, upgrade_db=True)
    seq = OrderNumbers()
    figures: list[Figure] = []
    try:
        tenants = make_tenants(hub, max([1, *args.threads, args.processes]))
        service_round(hub, seq, tenants[:1], 1, args.warmup)  # first-touch warm-up of the whole path
        analyze(hub)
        console.print(f"[{engine_name}] service layer, threads …")
        figures += service_figures(engine_name, hub, seq, tenants, threads=1, n_tenants=1, count=args.orders,
                                   warmup=args.warmup)
        for n in args.threads:
            figures += service_figures(engine_name, hub, seq, tenants, threads=n, n_tenants=1, count=args.orders,
                                       warmup=args.warmup)
            figures += service_figures(engine_name, hub, seq, tenants, threads=n, n_tenants=n, count=args.orders,
                                       warmup=args.warmup)
        if args.processes > 1:
            console.print(f"[{engine_name}] service layer, processes …")
            for i, n_tenants in enumerate((1, args.processes)):
                analyze(hub)
                figures += process_figures(engine_name, url, home, tenants, processes=args.processes,
                                           n_tenants=n_tenants, count=args.orders, warmup=args.warmup,
                                           start=(i + 1) * 1_000_000)
        if not args.skip_http:
            console.print(f"[{engine_name}] HTTP …")
            figures += http_figures(engine_name, hub, seq, tenants[0], count=args.http_orders,
                                    warmup=args.warmup, client_counts=(1, args.http_clients))
    finally:
        hub.close()
    return figures


@contextmanager
def pg_database(admin_url: str, name: str = BENCH_DB) -> Iterator[str]:
    """A fresh database ``name`` on the server of ``admin_url``, dropped afterwards."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def pg_facts(admin_url: str) -> dict[str, str] | None:
    try:
        engine = create_engine(admin_url)
        with engine.connect() as conn:
            facts = {name: str(conn.execute(text(f"SHOW {name}")).scalar())
                     for name in ("server_version", "synchronous_commit", "fsync", "shared_buffers")}
        engine.dispose()
        return facts
    except Exception as exc:  # reported, and the PostgreSQL leg skipped
        console.print(f"[yellow]PostgreSQL not reachable at {admin_url}: {exc.__class__.__name__}: {exc}")
        return None


# ---------------------------------------------------------------------------- machine
def machine(pg: dict[str, str] | None, load_before: str, speed: tuple[float, float]) -> list[tuple[str, str]]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    rows = [("CPU", cpu), ("cores", str(os.cpu_count())), ("RAM", ram),
            ("OS", f"{platform.system()} {platform.release()}"),
            ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
            ("SQLite", f"{sqlite3.sqlite_version} (WAL, synchronous=NORMAL)")]
    if pg is not None:
        rows.append(("PostgreSQL", f"{pg['server_version']} (synchronous_commit={pg['synchronous_commit']}, "
                                   f"fsync={pg['fsync']}, shared_buffers={pg['shared_buffers']})"))
    rows.append(("load average", f"{load_before} before the run (other work on the machine skews every figure)"))
    rows.append(("speed check", f"{speed[0]:.1f} µs before, {speed[1]:.1f} µs after the run (fixed Python work; "
                                "higher = slower machine: compare runs with it)"))
    return rows


def speed_check(rounds: int = 3000) -> float:
    """Microseconds per round of fixed pure-Python work (canonical JSON and SHA-256 of an
    order body): the same for every run, so it shows how fast the machine was meanwhile
    (shared or throttled CPUs move every figure with it)."""
    body = sample_order(random.Random(SEED), 1)
    started = time.perf_counter()
    for _ in range(rounds):
        hashlib.sha256(canonical_json(body).encode()).hexdigest()
    return (time.perf_counter() - started) / rounds * 1e6


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def print_results(facts: list[tuple[str, str]], figures: list[Figure], args: argparse.Namespace) -> None:
    info = Table(title="Machine", show_header=False)
    info.add_column(style="bold")
    info.add_column()
    for k, v in facts:
        info.add_row(k, v)
    console.print(info)
    table = Table(title=f"OrderHub order throughput ({args.orders} orders per service figure, "
                        f"{args.http_orders} per HTTP figure; each after a warm-up)")
    for name, justify in (("engine", "left"), ("path", "left"), ("operation", "left"), ("callers", "left"),
                          ("tenants", "right"), ("count", "right"), ("seconds", "right"), ("ops/s", "right"),
                          ("p50 ms", "right"), ("p95 ms", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    last = None
    for f in figures:
        if last is not None and (f.engine, f.path) != last:
            table.add_section()
        last = (f.engine, f.path)
        p50, p95 = f.percentile(50), f.percentile(95)
        table.add_row(f.engine, f.path, f.operation, f.callers, str(f.tenants), str(f.count),
                      f"{f.seconds:.2f}", f"{f.rate:,.0f}", "" if p50 is None else f"{p50:.2f}",
                      "" if p95 is None else f"{p95:.2f}")
    console.print(table)
    console.print(
        "create order = one transaction: validation, Idempotency-Key, order + lines, audit entry on the tenant's "
        "hash chain, one outbox row (each tenant has one webhook subscription). transition = one transaction: "
        "load, state machine, optimistic update, dedup key, audit entry, outbox row. callers: threads in this "
        "process, separate processes (one thread each), or HTTP client threads (the server runs in this "
        "process). tenants: how many tenants they write to; one tenant's writers take turns on its audit chain "
        "head. ops/s = count / seconds; latency per call.")


def add_engine_options(p: argparse.ArgumentParser, database: str) -> None:
    """``--skip-pg``, ``--skip-sqlite`` and ``--pg-url`` (every benchmark runs on both engines)."""
    p.add_argument("--skip-pg", action="store_true", help="SQLite only")
    p.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    p.add_argument("--pg-url", default=os.environ.get("ORDERHUB_BENCH_PG_URL", DEFAULT_PG_URL),
                   help=f"server to create {database} on (env ORDERHUB_BENCH_PG_URL; default {DEFAULT_PG_URL})")


@dataclass
class RunStart:
    """What a benchmark notes before it starts: load, machine speed, the PostgreSQL server (None
    when skipped or unreachable) and the time."""

    load: str
    speed: float
    pg: dict[str, str] | None
    started: float

    @staticmethod
    def now(args: argparse.Namespace) -> RunStart:
        """Take the notes for a run parsed with :func:`add_engine_options`."""
        return RunStart(load_average(), speed_check(), None if args.skip_pg else pg_facts(args.pg_url),
                        time.perf_counter())

    def machine(self) -> list[tuple[str, str]]:
        """The machine table, with the speed check taken again now."""
        return machine(self.pg, self.load, (self.speed, speed_check()))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=1000, help="orders per service-layer figure (default 1000)")
    p.add_argument("--http-orders", type=int, default=400, help="orders per HTTP figure (default 400)")
    p.add_argument("--warmup", type=int, default=100, help="orders created and moved before each figure")
    p.add_argument("--threads", type=lambda s: [int(x) for x in s.split(",") if x], default=[2, 4],
                   help="thread counts for the concurrent service-layer figures (default 2,4)")
    p.add_argument("--processes", type=int, default=2,
                   help="processes for the multi-process service-layer figures (default 2; 1 = none)")
    p.add_argument("--http-clients", type=int, default=4, help="client threads for the concurrent HTTP figure")
    p.add_argument("--skip-http", action="store_true", help="service layer only")
    add_engine_options(p, BENCH_DB)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    run = RunStart.now(args)
    figures: list[Figure] = []
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="orderhub-bench-") as tmp:
            figures += bench_engine("SQLite", f"sqlite:///{Path(tmp) / 'orderhub.db'}", Path(tmp), args)
    if run.pg is not None:
        with tempfile.TemporaryDirectory(prefix="orderhub-bench-") as tmp, pg_database(args.pg_url) as url:
            figures += bench_engine("PostgreSQL", url, Path(tmp), args)
    print_results(run.machine(), figures, args)
    console.print(f"total run time {time.perf_counter() - run.started:.0f} s")


if __name__ == "__main__":
    main()

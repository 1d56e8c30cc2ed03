"""Order throughput: creates and status transitions per second, through the service layer
(the message bus) and through HTTP (a real uvicorn server), on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_orders.py [--orders N] [--http-orders N] [--skip-pg]

Figures only: nothing here passes or fails on time. See benchmarks/README.md for what each
row means.
"""

from __future__ import annotations

import argparse
import hashlib
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

console = Console(width=None if sys.stdout.isatty() else 140, highlight=False)


# ---------------------------------------------------------------------------- figures
@dataclass
class Figure:
    """One measured row of the table."""

    engine: str
    path: str
    operation: str
    threads: int
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


@dataclass(frozen=True)
class BenchTenant:
    """A tenant made for the run: its actor for the bus and its admin key for HTTP."""

    name: str
    actor: commands.Actor
    api_key: str


class OrderNumbers:
    """Hands out order numbers, so every order of the run has its own external id."""

    def __init__(self) -> None:
        self._n = 0
        self._rng = random.Random(SEED)

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


def event_plan(body: dict[str, Any], order_id: str) -> list[tuple[str, str, str]]:
    """``(order_id, event type, dedup key)`` for the two events applied to an order."""
    return [(order_id, t, f"{body['external_id']}:{t}") for t in EVENTS[body["status"]]]


def split(items: Sequence[Any], parts: int) -> list[list[Any]]:
    return [list(items[i::parts]) for i in range(parts)]


def interleave_steps(plans: list[list[tuple[str, str, str]]]) -> list[tuple[str, str, str]]:
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
def service_round(hub: OrderHub, seq: OrderNumbers, tenants: list[BenchTenant], threads: int, count: int,
                  ) -> tuple[tuple[float, list[float]], tuple[float, int, list[float]]]:
    """Create ``count`` orders on ``threads`` threads (thread i acts for tenants[i % len]),
    then apply two events to each; returns (seconds, latencies) for both phases."""
    bodies = split(seq.bodies(count), threads)
    jobs = [[create_command(b, tenants[i % len(tenants)].actor) for b in part] for i, part in enumerate(bodies)]
    c_seconds, c_results, c_lat = run_parallel(jobs, lambda _i, cmd: hub.bus.handle(cmd))
    for part in c_results:
        for r in part:
            if not r.created:
                raise RuntimeError(f"order {r.order_id} was not created: is the benchmark database fresh?")
    event_jobs = []
    for i, part in enumerate(bodies):
        actor = tenants[i % len(tenants)].actor
        plans = [event_plan(b, r.order_id) for b, r in zip(part, c_results[i], strict=True)]
        event_jobs.append([commands.ApplyOrderEvent(actor=actor, order_id=o, type=t, key=k)
                           for o, t, k in interleave_steps(plans)])
    t_seconds, _, t_lat = run_parallel(event_jobs, lambda _i, cmd: hub.bus.handle(cmd))
    return (c_seconds, c_lat), (t_seconds, sum(len(j) for j in event_jobs), t_lat)


def service_figures(engine_name: str, hub: OrderHub, seq: OrderNumbers, tenants: list[BenchTenant], *,
                    threads: int, n_tenants: int, count: int, warmup: int) -> list[Figure]:
    used = tenants[:n_tenants]
    service_round(hub, seq, used, threads, max(warmup, threads))  # warm-up, same shape, not counted
    (c_sec, c_lat), (t_sec, t_count, t_lat) = service_round(hub, seq, used, threads, count)
    return [Figure(engine_name, "service", "create order", threads, n_tenants, count, c_sec, c_lat),
            Figure(engine_name, "service", "transition", threads, n_tenants, t_count, t_sec, t_lat)]


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

        def apply(i: int, step: tuple[str, str, str]) -> None:
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
            (c_sec, c_lat), (t_sec, t_count, t_lat) = http_round(server.url, seq, tenant, clients, count)
            figures += [Figure(engine_name, "HTTP", "POST /orders", clients, 1, count, c_sec, c_lat),
                        Figure(engine_name, "HTTP", "POST /orders/{id}/events", clients, 1, t_count, t_sec, t_lat)]
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
        hub.bus.handle(commands.RegisterWebhookEndpoint(actor=actor, url="http://127.0.0.1:9/bench-sink",
                                                        secret="bench-secret-0123456789"))
        out.append(BenchTenant(issued.tenant, actor, issued.api_key))
    return out


def bench_engine(engine_name: str, url: str, home: Path, args: argparse.Namespace) -> list[Figure]:
    settings = Settings(home=home, database_url=url, host="127.0.0.1", port=0, amqp_url=None)
    hub = bootstrap(settings, upgrade_db=True)
    seq = OrderNumbers()
    figures: list[Figure] = []
    try:
        tenants = make_tenants(hub, max([1, *args.threads]))
        service_round(hub, seq, tenants[:1], 1, args.warmup)  # first-touch warm-up of the whole path
        console.print(f"[{engine_name}] service layer …")
        figures += service_figures(engine_name, hub, seq, tenants, threads=1, n_tenants=1, count=args.orders,
                                   warmup=args.warmup)
        for n in args.threads:
            figures += service_figures(engine_name, hub, seq, tenants, threads=n, n_tenants=1, count=args.orders,
                                       warmup=args.warmup)
            figures += service_figures(engine_name, hub, seq, tenants, threads=n, n_tenants=n, count=args.orders,
                                       warmup=args.warmup)
        if not args.skip_http:
            console.print(f"[{engine_name}] HTTP …")
            figures += http_figures(engine_name, hub, seq, tenants[0], count=args.http_orders,
                                    warmup=args.warmup, client_counts=(1, args.http_clients))
    finally:
        hub.close()
    return figures


@contextmanager
def pg_database(admin_url: str) -> Iterator[str]:
    """A fresh database ``orderhub_bench`` on the server of ``admin_url``, dropped afterwards."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
        yield make_url(admin_url).set(database=BENCH_DB).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
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
def machine(pg: dict[str, str] | None) -> list[tuple[str, str]]:
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
    return rows


def print_results(facts: list[tuple[str, str]], figures: list[Figure], args: argparse.Namespace) -> None:
    info = Table(title="Machine", show_header=False)
    info.add_column(style="bold")
    info.add_column()
    for k, v in facts:
        info.add_row(k, v)
    console.print(info)
    table = Table(title=f"OrderHub order throughput ({args.orders} orders per service figure, "
                        f"{args.http_orders} per HTTP figure; after a warm-up)")
    for name, justify in (("engine", "left"), ("path", "left"), ("operation", "left"), ("threads", "right"),
                          ("tenants", "right"), ("count", "right"), ("seconds", "right"), ("ops/s", "right"),
                          ("p50 ms", "right"), ("p95 ms", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    last = None
    for f in figures:
        if last is not None and (f.engine, f.path) != last:
            table.add_section()
        last = (f.engine, f.path)
        p50, p95 = f.percentile(50), f.percentile(95)
        table.add_row(f.engine, f.path, f.operation, str(f.threads), str(f.tenants), str(f.count),
                      f"{f.seconds:.2f}", f"{f.rate:,.0f}", "" if p50 is None else f"{p50:.2f}",
                      "" if p95 is None else f"{p95:.2f}")
    console.print(table)
    console.print(
        "Every create is one transaction: validation, order + lines, Idempotency-Key row, audit entry on the "
        "tenant's hash chain, one outbox row (each tenant has one webhook subscription). Every transition is "
        "one transaction: load, state machine, update, dedup-key row, audit entry, outbox row.\n"
        "threads = concurrent callers (HTTP: client threads; server in the same process); tenants = how many "
        "tenants they write to. One tenant serialises commits on its audit chain head.")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--orders", type=int, default=1000, help="orders per service-layer figure (default 1000)")
    p.add_argument("--http-orders", type=int, default=400, help="orders per HTTP figure (default 400)")
    p.add_argument("--warmup", type=int, default=100, help="orders created and moved before each figure")
    p.add_argument("--threads", type=lambda s: [int(x) for x in s.split(",") if x], default=[2, 4],
                   help="thread counts for the concurrent service-layer figures (default 2,4)")
    p.add_argument("--http-clients", type=int, default=4, help="client threads for the concurrent HTTP figure")
    p.add_argument("--skip-pg", action="store_true", help="SQLite only")
    p.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    p.add_argument("--skip-http", action="store_true", help="service layer only")
    p.add_argument("--pg-url", default=os.environ.get("ORDERHUB_BENCH_PG_URL", DEFAULT_PG_URL),
                   help=f"server to create {BENCH_DB} on (env ORDERHUB_BENCH_PG_URL; default {DEFAULT_PG_URL})")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    pg = None if args.skip_pg else pg_facts(args.pg_url)
    figures: list[Figure] = []
    started = time.perf_counter()
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="orderhub-bench-") as tmp:
            figures += bench_engine("SQLite", f"sqlite:///{Path(tmp) / 'orderhub.db'}", Path(tmp), args)
    if pg is not None:
        with tempfile.TemporaryDirectory(prefix="orderhub-bench-") as tmp, pg_database(args.pg_url) as url:
            figures += bench_engine("PostgreSQL", url, Path(tmp), args)
    print_results(machine(pg), figures, args)
    console.print(f"total run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

"""Carrier tracking throughput (issue 5): carrier events normalized and applied per second, on
PostgreSQL and SQLite.

* **service** — pushes handed straight to the message bus
  (``ReceiveTrackingEvents(carrier, events, source="push", tenant_id=…)``), the path a carrier
  push takes once its body is parsed: one unit of work per push, dedup keys, the carrier's code
  book with the tenant's overrides, ``Shipment.apply_tracking`` in time order, a bulk insert of
  the events, the changed shipments saved, their orders following (delivered), audit entries
  on the tenant's hash chain; in 1 process and in 2 processes (one tenant each);
* **HTTP** — the same kind of pushes, signed (``X-Carrier-Signature``) and POSTed to
  ``/webhooks/carriers/{carrier}`` on a separate server process, for reference.

    .venv/bin/python benchmarks/bench_tracking.py [--shipments N] [--push-size N] [--skip-pg]
    .venv/bin/python benchmarks/bench_tracking.py --skip-sqlite --profile   # + cProfile of 1 process

Each figure has its own handed-over shipments with waybills (inserted in bulk through the
repositories: orders already shipped, shipments handed over), and each waybill gets its
carrier's journey of raw codes from ``FakeCarrier.JOURNEYS`` (SF: 6 events, ZTO: 5), spread
over three days, mixed across waybills in time order with a little reordering, cut into pushes
of ``--push-size`` events per carrier; about 2 % of the events are sent again in a later push
(carriers resend). Figures only: nothing here passes or fails on time.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import os
import pstats
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from bench_ingest import run_processes
from bench_orders import (
    Figure,
    RunStart,
    add_engine_options,
    analyze,
    console,
    create_command,
    free_port,
    pg_database,
)
from rich.table import Table
from sqlalchemy import create_engine

from orderhub.adapters.carriers.base import CarrierEvent
from orderhub.adapters.carriers.push import ORDERHUB_SIGNATURE_HEADER, orderhub_push_body, sign_orderhub_push
from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain import commands, ids
from orderhub.domain.fulfillment.scanning import ShipmentLine
from orderhub.domain.fulfillment.shipment import Shipment
from orderhub.domain.fulfillment.states import LineKind, ShipmentStatus
from orderhub.service_layer.handlers.orders import build_order
from orderhub.simulation.fake_carrier import JOURNEYS
from orderhub.simulation.orders import sample_order

BENCH_DB = "orderhub_bench_tracking"
PUSH_SECRET = "bench-push-secret-0001"
CARRIERS = ("sf", "sf", "zto")  # two SF parcels for every ZTO one
WAYBILL_PREFIX = {"sf": "SF", "zto": "7"}
SEED = 20261121
RESEND = 0.02  # share of events a carrier sends again in a later push

Push = tuple[str, tuple[commands.CarrierEventInput, ...]]  # (carrier, events)


@dataclass
class Outcome:
    """What one run of pushes did: wall time, latency per push, answers per outcome."""

    seconds: float
    latencies: list[float]
    counts: Counter[str]


# ---------------------------------------------------------------------------- set-up
def make_tenant(hub: OrderHub, name: str) -> commands.Actor:
    """A tenant with SF and ZTO accounts (the push secret signs the HTTP pushes)."""
    issued = hub.bus.handle(commands.CreateTenant(name))
    actor = commands.Actor(tenant_id=issued.tenant_id, actor="bench", source="bench")
    for carrier in sorted(set(CARRIERS)):
        hub.bus.handle(commands.AddCarrierAccount(actor=actor, carrier=carrier, api_base_url="http://127.0.0.1:9",
                                                  api_key="bench-carrier-key", push_secret=PUSH_SECRET))
    return actor


def seed_shipments(hub: OrderHub, actor: commands.Actor, count: int, *, first: int,
                   handed_over_at: datetime) -> list[Shipment]:
    """``count`` shipped orders, each with one shipment handed over to SF or ZTO with a waybill,
    inserted in bulk (a few statements per 500) through the repositories."""
    rng = random.Random(SEED + first)
    made: list[Shipment] = []
    for start in range(0, count, 500):
        with hub.uow_factory() as uow:
            uow.act_as(actor)
            for n in range(first + start, first + min(start + 500, count)):
                body = sample_order(rng, n, status="paid")
                body["status"] = "shipped"
                order = build_order(create_command(body, actor), now_uow=uow)
                uow.orders.stage(order)
                carrier = CARRIERS[n % len(CARRIERS)]
                at = handed_over_at + timedelta(minutes=rng.randint(0, 600))
                lines = [ShipmentLine(line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity, kind=LineKind.GOODS,
                                      barcode=None, unit_weight_g=250, picked=ln.quantity, verified=ln.quantity)
                         for ln in order.lines]
                shipment = Shipment(
                    id=ids.new_id("shp"), tenant_id=actor.tenant_id, order_id=order.id, warehouse="HZ1", lines=lines,
                    status=ShipmentStatus.HANDED_OVER, version=6, created_at=at - timedelta(hours=2), updated_at=at,
                    last_progress_at=at, carrier=carrier, routing_rule="bench", wave="first_wave",
                    waybill_no=f"{WAYBILL_PREFIX[carrier]}{SEED % 1000:03d}{n:010d}",
                    expected_weight_g=sum(250 * ln.quantity for ln in lines), weight_g=260, handed_over_at=at)
                uow.shipments.add(shipment)
                made.append(shipment)
            uow.commit()
    return made


def plan_pushes(shipments: Sequence[Shipment], push_size: int, *, seed: int) -> list[Push]:
    """Every shipment's journey of raw carrier codes, spread over three days after its handover,
    in carrier time order with up to 30 minutes of reordering, cut into pushes of ``push_size``
    per carrier; ~2 % of the events sent again in a later push."""
    rng = random.Random(seed)
    timed: list[tuple[datetime, str, commands.CarrierEventInput]] = []
    for s in shipments:
        assert s.carrier is not None and s.waybill_no is not None and s.handed_over_at is not None
        at = s.handed_over_at
        for code, text in JOURNEYS[s.carrier]:
            at += timedelta(minutes=rng.randint(30, 14 * 60))
            place = "杭州转运中心"
            event = commands.CarrierEventInput(waybill_no=s.waybill_no, code=code, description=text, occurred_at=at,
                                               location=place,
                                               raw={"waybill_no": s.waybill_no, "code": code, "description": text,
                                                    "occurred_at": at.isoformat(), "location": place})
            # The carrier sends it a little later, not always in its own order.
            timed.append((at + timedelta(minutes=rng.uniform(0, 30)), s.carrier, event))
    timed.sort(key=lambda t: t[0])
    pushes: list[Push] = []
    pending: dict[str, list[commands.CarrierEventInput]] = {}
    resend: dict[str, list[commands.CarrierEventInput]] = {}
    for _sent, carrier, event in timed:
        batch = pending.setdefault(carrier, [])
        batch.append(event)
        if rng.random() < RESEND:
            resend.setdefault(carrier, []).append(event)
        if len(batch) >= push_size:
            again = resend.pop(carrier, [])
            pushes.append((carrier, tuple(batch[:push_size - len(again)] + again)))
            pending[carrier] = batch[push_size - len(again):]
    for carrier, batch in pending.items():
        rest = batch + resend.pop(carrier, [])
        for start in range(0, len(rest), push_size):
            pushes.append((carrier, tuple(rest[start:start + push_size])))
    return pushes


def prepare_set(hub: OrderHub, actor: commands.Actor, count: int, push_size: int, *, first: int) -> list[Push]:
    """Seed ``count`` shipments and plan their pushes (event times in the past: now - 4 days on)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=4)
    shipments = seed_shipments(hub, actor, count, first=first, handed_over_at=start)
    return plan_pushes(shipments, push_size, seed=SEED + first)


def events_in(pushes: Sequence[Push]) -> int:
    return sum(len(events) for _, events in pushes)


# ---------------------------------------------------------------------------- service path
def send_all(hub: OrderHub, pushes: Sequence[Push], tenant_id: str) -> Outcome:
    latencies: list[float] = []
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    for carrier, events in pushes:
        t0 = time.perf_counter()
        result = hub.bus.handle(commands.ReceiveTrackingEvents(carrier=carrier, events=events, source="push",
                                                               tenant_id=tenant_id))
        latencies.append(time.perf_counter() - t0)
        counts.update(result["counts"])
    return Outcome(time.perf_counter() - started, latencies, counts)


def service_process(env: dict[str, str], warm: list[Push], pushes: list[Push], tenant_id: str, profile: bool,
                    barrier: Any, results: Any) -> None:
    """In a forked process: warm up (other shipments, same shape), then time the pushes."""
    os.environ.update(env)
    hub = bootstrap(Settings.from_env())
    send_all(hub, warm, tenant_id)
    analyze(hub)  # statistics with tracking events in the table, as autovacuum keeps them
    barrier.wait()
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    outcome = send_all(hub, pushes, tenant_id)
    report = ""
    if profiler is not None:
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
        report = out.getvalue()
    results.put((outcome, report))
    hub.close()


# ---------------------------------------------------------------------------- HTTP path
def http_client(url: str, bodies: list[tuple[str, bytes]], barrier: threading.Barrier, out: list[Any]) -> None:
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, timeout=60)
    latencies: list[float] = []
    counts: Counter[str] = Counter()
    barrier.wait()
    for carrier, body in bodies:
        headers = {"Content-Type": "application/json",
                   ORDERHUB_SIGNATURE_HEADER: sign_orderhub_push(PUSH_SECRET, body)}
        t0 = time.perf_counter()
        try:
            conn.request("POST", f"/webhooks/carriers/{carrier}", body=body, headers=headers)
            reply = conn.getresponse()
            data = reply.read()
        except (http.client.HTTPException, OSError) as exc:  # counted, and a new connection for the rest
            counts[f"push failed ({exc.__class__.__name__})"] += 1
            conn.close()
            conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port or 80, timeout=60)
            continue
        latencies.append(time.perf_counter() - t0)
        if reply.status != 200:
            counts[f"HTTP {reply.status}"] += 1
            continue
        counts.update(httpx.Response(200, content=data).json()["counts"])
    conn.close()
    out.append((latencies, counts))


def http_send(url: str, pushes: Sequence[Push], clients: int) -> Outcome:
    bodies = [(carrier, orderhub_push_body(carrier, [CarrierEvent(
        waybill_no=e.waybill_no, code=e.code, description=e.description, occurred_at=e.occurred_at,
        location=e.location, raw={}) for e in events])) for carrier, events in pushes]
    barrier = threading.Barrier(clients + 1)
    out: list[Any] = []
    threads = [threading.Thread(target=http_client, args=(url, bodies[i::clients], barrier, out))
               for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    counts: Counter[str] = Counter()
    for _, c in out:
        counts.update(c)
    return Outcome(seconds, [x for lat, _ in out for x in lat], counts)


def http_figure(engine_name: str, env: dict[str, str], warm: list[Push], pushes: list[Push], clients: int,
                ) -> tuple[Figure, Outcome]:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "orderhub.entrypoints.api.asgi:create",
           "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    log = Path(env["ORDERHUB_HOME"]) / "bench-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:  # the server's own log (tracebacks of failed pushes) stays out of the table
        server = subprocess.Popen(cmd, env=os.environ | env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.1)
        http_send(url, warm, clients)
        db = create_engine(env["ORDERHUB_DATABASE_URL"])
        with db.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        db.dispose()
        outcome = http_send(url, pushes, clients)
    finally:
        server.terminate()
        server.wait(timeout=30)
    failed = [line for line in log.read_text(errors="replace").splitlines() if line.strip().startswith(
        ("psycopg.errors.", "sqlite3.", "sqlalchemy.exc."))]
    if failed:
        console.print(f"[red]{engine_name} HTTP: the server failed {len(failed)} push(es); first: {failed[0][:300]} "
                      f"(full log: {log}, kept only while the run lasts)[/]")
    callers = f"{clients} client{'s' if clients > 1 else ''}, 1 server proc"
    return Figure(engine_name, "HTTP", "signed push → normalize + apply", callers, 1, events_in(pushes),
                  outcome.seconds, outcome.latencies), outcome


# ---------------------------------------------------------------------------- one engine
@dataclass
class Row:
    figure: Figure
    pushes: int
    counts: Counter[str]


def bench_engine(engine_name: str, url: str, home: Path, args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    env = {"ORDERHUB_DATABASE_URL": url, "ORDERHUB_HOME": str(home)}
    os.environ.update(env)
    hub = bootstrap(Settings.from_env(), upgrade_db=True)
    n, size, warm_n = args.shipments, args.push_size, max(args.shipments // 10, 50)
    t0 = time.perf_counter()
    actors = [make_tenant(hub, f"bench-{i}") for i in range(1 + args.processes)]
    sets: dict[str, tuple[list[Push], list[Push]]] = {}
    first = 0
    plan = [("1p", actors[0], n)] + [(f"mp{i}", actors[1 + i], n) for i in range(args.processes)]
    if not args.skip_http:
        plan.append(("http", actors[0], args.http_shipments))
    for name, actor, count in plan:
        warm = prepare_set(hub, actor, warm_n, size, first=first)
        first += warm_n
        timed = prepare_set(hub, actor, count, size, first=first)
        first += count
        sets[name] = (warm, timed)
    analyze(hub)
    hub.close()
    console.print(f"{engine_name}: {first:,} shipments seeded in {time.perf_counter() - t0:.1f} s")
    rows: list[Row] = []
    reports: list[str] = []

    warm, timed = sets["1p"]
    outs = run_processes(service_process, [(env, warm, timed, actors[0].tenant_id, args.profile)])
    outcome, report = outs[0]
    if report:
        reports.append(f"{engine_name}, 1 process:\n{report}")
    callers = "1 process (cProfile on)" if args.profile else "1 process"
    rows.append(Row(Figure(engine_name, "service", "push → normalize + apply", callers, 1, events_in(timed),
                           outcome.seconds, outcome.latencies), len(timed), outcome.counts))
    if args.processes > 1:
        jobs = [(env, *sets[f"mp{i}"], actors[1 + i].tenant_id, False) for i in range(args.processes)]
        outs = run_processes(service_process, jobs)
        counts: Counter[str] = Counter()
        for o, _ in outs:
            counts.update(o.counts)
        total = sum(events_in(sets[f"mp{i}"][1]) for i in range(args.processes))
        rows.append(Row(Figure(engine_name, "service", "push → normalize + apply", f"{args.processes} processes",
                               args.processes, total, max(o.seconds for o, _ in outs),
                               [x for o, _ in outs for x in o.latencies]),
                        sum(len(sets[f"mp{i}"][1]) for i in range(args.processes)), counts))
    if not args.skip_http:
        warm, timed = sets["http"]
        figure, outcome = http_figure(engine_name, env, warm, timed, args.http_clients)
        rows.append(Row(figure, len(timed), outcome.counts))
    return rows, reports


def print_results(facts: list[tuple[str, str]], rows: list[Row], args: argparse.Namespace) -> None:
    info = Table(title="Machine", show_header=False)
    info.add_column(style="bold")
    info.add_column()
    for k, v in facts:
        info.add_row(k, v)
    console.print(info)
    table = Table(title=f"OrderHub carrier tracking ({args.push_size} events per push)")
    right = ("pushes", "events", "seconds", "events/s", "p50 ms/push", "p95 ms/push")
    for name in ("engine", "path", "callers", "tenants", *right, "outcomes"):
        table.add_column(name, justify="right" if name in right else "left")
    for row in rows:
        f = row.figure
        p50, p95 = f.percentile(50), f.percentile(95)
        outcomes = ", ".join(f"{k} {v:,}" for k, v in row.counts.most_common())
        table.add_row(f.engine, f.path, f.callers, str(f.tenants), f"{row.pushes:,}", f"{f.count:,}",
                      f"{f.seconds:.2f}", f"{f.rate:,.0f}", "" if p50 is None else f"{p50:.1f}",
                      "" if p95 is None else f"{p95:.1f}", outcomes)
    console.print(table)
    console.print("events/s = carrier events in the timed pushes (applied, unchanged, stale and duplicate "
                  "alike) ÷ wall time. One push = one unit of work: shipments by waybill, known dedup keys, "
                  "code book, apply in time order, bulk insert of tracking_events, changed shipments saved, "
                  "delivered orders moved, audit entries on the tenant's hash chain, commit.")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shipments", type=int, default=2000, help="shipments per service figure (and process)")
    p.add_argument("--push-size", type=int, default=100, help="events per push (default 100)")
    p.add_argument("--processes", type=int, default=2, help="processes for the multi-process figure (1 = none)")
    p.add_argument("--http-shipments", type=int, default=500, help="shipments for the HTTP figure (default 500)")
    p.add_argument("--http-clients", type=int, default=2, help="HTTP client threads (default 2)")
    p.add_argument("--skip-http", action="store_true", help="service layer only")
    p.add_argument("--profile", action="store_true", help="cProfile the 1-process service figure and print it")
    add_engine_options(p, BENCH_DB)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    run = RunStart.now(args)
    rows: list[Row] = []
    reports: list[str] = []
    with tempfile.TemporaryDirectory(prefix="orderhub-bench-tracking-") as tmp:
        if not args.skip_sqlite:
            home = Path(tmp) / "sqlite"
            home.mkdir()
            r, rep = bench_engine("SQLite", f"sqlite:///{home / 'orderhub.db'}", home, args)
            rows += r
            reports += rep
        if run.pg is not None:
            with pg_database(args.pg_url, BENCH_DB) as url:
                r, rep = bench_engine("PostgreSQL", url, Path(tmp) / "pg", args)
                rows += r
                reports += rep
    for report in reports:
        console.print(report, markup=False)
    print_results(run.machine(), rows, args)
    console.print(f"total run time {time.perf_counter() - run.started:.0f} s")


if __name__ == "__main__":
    main()

"""Channel ingest throughput, on SQLite and PostgreSQL:

* **webhooks accepted/s** — signed Shopify pushes over real HTTP to ``orderhub serve
  --no-workers`` (a separate server process), each verified (HMAC-SHA256 on the raw body),
  keyed and written durably to the inbox before the 202;
* **orders normalized and applied/s** — the inbox workers mapping those messages through the
  Shopify spec, running the filter rules and creating the canonical orders (order + lines +
  audit entry + message outcome in one transaction per batch), in 1 and 2 processes.

    .venv/bin/python benchmarks/bench_ingest.py [--webhooks N] [--skip-pg]

Figures only: nothing here passes or fails on time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from bench_orders import (
    Figure,
    RunStart,
    add_engine_options,
    console,
    free_port,
    pg_database,
)
from rich.table import Table

from orderhub.adapters.channels.signatures import sign
from orderhub.bootstrap import bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.service_layer.normalizer import Normalizer

SECRET = "bench-shop-secret-0001"
SHOP = "bench"


def shopify_payload(n: int, now: datetime) -> dict[str, Any]:
    """A Shopify REST order (our own made-up values) with two lines."""
    created = now - timedelta(hours=1, seconds=n % 3000)
    return {
        "id": 7_000_000_000 + n, "name": f"#{1000 + n}", "currency": "USD", "financial_status": "paid",
        "fulfillment_status": None, "cancelled_at": None, "created_at": created.isoformat(),
        "processed_at": created.isoformat(), "updated_at": (created + timedelta(minutes=1)).isoformat(),
        "email": "b***@example.com", "test": False, "tags": "bench",
        "customer": {"first_name": "Bench", "last_name": f"Buyer {n}"},
        "shipping_address": {"name": "Bench Buyer", "address1": f"{n} Main St", "city": "Springfield",
                             "province": "Oregon", "country_code": "US", "zip": "97477", "phone": "555-***-0100"},
        "line_items": [
            {"id": 1, "sku": f"SKU-{n % 50}", "title": "Tea", "quantity": 1 + n % 3, "price": "12.50",
             "discount_allocations": [{"amount": "0.50"}], "tax_lines": [{"price": "1.00"}]},
            {"id": 2, "sku": "CUP-9", "title": "Cup", "quantity": 1, "price": "8.00", "discount_allocations": [],
             "tax_lines": []},
        ],
        "shipping_lines": [{"code": "standard", "price": "5.00"}],
        "payment_gateway_names": ["shopify_payments"],
    }


def signed_requests(count: int, start: int) -> list[tuple[bytes, dict[str, str]]]:
    now = datetime.now(UTC)
    out = []
    for n in range(start, start + count):
        body = json.dumps(shopify_payload(n, now), separators=(",", ":")).encode()
        headers = sign("shopify", body=body, secret=SECRET, url="")
        headers |= {"X-Shopify-Topic": "orders/create", "Content-Type": "application/json"}
        out.append((body, headers))
    return out


def run_processes(target: Callable[..., None], args: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``target(*a, barrier, results)`` in one forked process per ``a``; they start timing
    together at the barrier and each puts one result on the queue."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(args))
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, barrier, results)) for a in args]
    for p in procs:
        p.start()
    outs = [results.get() for _ in procs]
    for p in procs:
        p.join()
    return outs


# ---------------------------------------------------------------------------- HTTP accept
def client_process(url: str, requests: list[tuple[bytes, dict[str, str]]], threads: int, barrier: Any,
                   results: Any) -> None:
    """Post ``requests`` with ``threads`` keep-alive clients; report (seconds, latencies, failures)."""
    parts = [requests[i::threads] for i in range(threads)]
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def run(part: list[tuple[bytes, dict[str, str]]]) -> None:
        # http.client on a kept-alive connection: the lightest client the standard library has,
        # so the figure is the server's, not the client's (both share the machine's 2 cores).
        mine: list[float] = []
        bad = 0
        conn = http.client.HTTPConnection(host, port, timeout=30)
        for body, headers in part:
            t0 = time.perf_counter()
            conn.request("POST", f"/webhooks/shopify/{SHOP}", body=body, headers=headers)
            reply = conn.getresponse()
            reply.read()
            mine.append(time.perf_counter() - t0)
            bad += reply.status != 202
        conn.close()
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    workers = [threading.Thread(target=run, args=(p,)) for p in parts]
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results.put((time.perf_counter() - started, latencies, failures[0]))


def http_accept(engine_name: str, env: dict[str, str], count: int, *, start: int, processes: int, threads: int,
                server_workers: int) -> Figure:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "orderhub.entrypoints.api.asgi:create",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(server_workers), "--no-access-log",
           "--log-level", "warning"]
    server = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        warm = signed_requests(200, 10_000_000 + start)
        with httpx.Client(base_url=url) as c:
            for body, headers in warm:
                c.post(f"/webhooks/shopify/{SHOP}", content=body, headers=headers)
        reqs = signed_requests(count, start)
        outs = run_processes(client_process, [(url, reqs[i::processes], threads) for i in range(processes)])
    finally:
        server.terminate()
        server.wait(timeout=30)
    seconds = max(o[0] for o in outs)
    failures = sum(o[2] for o in outs)
    if failures:
        console.print(f"[red]{failures} webhook(s) were not answered 202[/]")
    latencies = [x for o in outs for x in o[1]]
    return Figure(engine_name, "HTTP webhook", "accept (verify + durable inbox write)",
                  f"{processes}×{threads} clients, {server_workers} server proc", 1, count, seconds, latencies)


# ---------------------------------------------------------------------------- normalize
def normalize_process(env: dict[str, str], worker: str, barrier: Any, results: Any) -> None:
    os.environ.update(env)
    hub = bootstrap(Settings.from_env())
    normalizer = Normalizer(hub.uow_factory, specs=hub.specs, clock=hub.clock, metrics=hub.metrics,
                            worker_id=worker, batch_size=200)
    normalizer.run_once()  # imports, compiled specs and filters, connections: warm before timing
    barrier.wait()
    started = time.perf_counter()
    report = normalizer.drain()
    results.put((time.perf_counter() - started, report.applied, report.dead))
    hub.close()


def normalize(engine_name: str, env: dict[str, str], processes: int, expected: int) -> Figure:
    outs = run_processes(normalize_process, [(env, f"bench-{i}") for i in range(processes)])
    applied = sum(o[1] for o in outs)
    dead = sum(o[2] for o in outs)
    if dead:
        console.print(f"[red]{dead} message(s) dead-lettered[/]")
    seconds = max(o[0] for o in outs)
    # Each process warmed up on one batch before the clock started; the figure counts the rest.
    return Figure(engine_name, "inbox workers", "normalize + apply (create order)",
                  f"{processes} process{'es' if processes > 1 else ''}", 1, min(applied, expected), seconds)


def prepare(env: dict[str, str]) -> None:
    os.environ.update(env)
    hub = bootstrap(Settings.from_env(), upgrade_db=True)
    issued = hub.bus.handle(commands.CreateTenant("bench"))
    actor = commands.Actor(tenant_id=issued.tenant_id, actor="bench", source="bench")
    hub.bus.handle(commands.RegisterShop(actor=actor, code=SHOP, channel="shopify", name="Bench", secret=SECRET))
    hub.close()


def bench_engine(engine_name: str, url: str, home: Path, args: argparse.Namespace) -> list[Figure]:
    env = {"ORDERHUB_DATABASE_URL": url, "ORDERHUB_HOME": str(home)}
    full_env = os.environ | env
    prepare(env)
    kwargs = {"processes": args.client_processes, "threads": args.client_threads,
              "server_workers": args.server_workers}
    figures = [http_accept(engine_name, full_env, args.webhooks, start=0, **kwargs)]
    # The normalizer legs: the first drains what was accepted with one process; then a second
    # set of new orders is accepted and drained by two processes.
    figures.append(normalize(engine_name, env, 1, args.webhooks + 200))
    http_accept(engine_name, full_env, args.webhooks, start=1_000_000, **kwargs)
    figures.append(normalize(engine_name, env, 2, args.webhooks + 200))
    return figures


def print_results(facts: list[tuple[str, str]], figures: list[Figure]) -> None:
    info = Table(title="Machine", show_header=False)
    info.add_column(style="bold")
    info.add_column()
    for k, v in facts:
        info.add_row(k, v)
    console.print(info)
    table = Table(title="OrderHub channel ingest")
    for name in ("engine", "path", "operation", "callers", "count", "seconds", "per second", "p50 ms", "p95 ms"):
        table.add_column(name, justify="right" if name in ("count", "seconds", "per second", "p50 ms",
                                                            "p95 ms") else "left")
    for f in figures:
        p50, p95 = f.percentile(50), f.percentile(95)
        table.add_row(f.engine, f.path, f.operation, f.callers, str(f.count), f"{f.seconds:.2f}", f"{f.rate:,.0f}",
                      "" if p50 is None else f"{p50:.2f}", "" if p95 is None else f"{p95:.2f}")
    console.print(table)
    console.print("accept = signature check on the raw body, shop lookup, dedup key from the payload, one INSERT "
                  "… ON CONFLICT DO NOTHING into the inbox, commit, 202. normalize + apply = claim a batch "
                  "(SKIP LOCKED on PostgreSQL), map through specs/shopify.yaml, filter rules (CEL), create the "
                  "order with lines, audit entries on the tenant's hash chain, message outcomes; one transaction "
                  "per batch of 200.")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--webhooks", type=int, default=4000, help="webhooks per HTTP figure (default 4000)")
    p.add_argument("--client-processes", type=int, default=2)
    p.add_argument("--client-threads", type=int, default=4)
    p.add_argument("--server-workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    add_engine_options(p, "orderhub_bench")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    run = RunStart.now(args)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="orderhub-bench-ingest-") as tmp:
        if not args.skip_sqlite:
            home = Path(tmp) / "sqlite"
            figures += bench_engine("SQLite", f"sqlite:///{home / 'orderhub.db'}", home, args)
        if run.pg is not None:
            with pg_database(args.pg_url) as url:
                figures += bench_engine("PostgreSQL", url, Path(tmp) / "pg", args)
    print_results(run.machine(), figures)


if __name__ == "__main__":
    main()

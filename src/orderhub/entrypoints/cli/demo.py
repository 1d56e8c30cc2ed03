"""``orderhub demo``: a running instance fed with simulated orders through the real API."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import httpx
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from orderhub.bootstrap import bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.entrypoints.cli.server import RunningServer
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.simulation.orders import lifecycle, sample_order

DEMO_TENANT = "demo"
SEED = 20261121


def _check(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url.path} answered "
                           f"{response.status_code}: {response.text[:300]}")


def seed(client: httpx.Client, count: int, console: Console) -> dict[str, int]:
    """POST ``count`` simulated orders and walk each through a plausible lifecycle."""
    rng = random.Random(SEED)  # noqa: S311 - reproducible demo data, not security
    stats = {"orders": 0, "events": 0, "stale": 0}
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("seeding orders", total=count)
        for n in range(count):
            body = sample_order(rng, n)
            r = client.post("/api/v1/orders", json=body, headers={"Idempotency-Key": f"demo-{body['external_id']}"})
            _check(r)
            order_id = r.json()["id"]
            stats["orders"] += 1
            steps = lifecycle(rng, body["status"])
            for step_no, step in enumerate(steps):
                reason = {"cancel": "buyer changed mind", "hold": "address needs confirmation"}.get(step)
                r = client.post(f"/api/v1/orders/{order_id}/events",
                                json={"type": step, "reason": reason, "key": f"demo:{order_id}:{step_no}:{step}"})
                _check(r)
                stats["events"] += 1
            if "ship" in steps and rng.random() < 0.1:
                # A channel re-sending "paid" after the order shipped: shown as ignored-stale.
                r = client.post(f"/api/v1/orders/{order_id}/events",
                                json={"type": "mark_paid", "key": f"demo:{order_id}:late-paid"})
                _check(r)
                stats["stale"] += r.json()["outcome"] == "ignored_stale"
            progress.advance(task)
    return stats


def _command() -> str:
    """How this ``orderhub`` was invoked, so the hint can be pasted (e.g. ``.venv/bin/orderhub``)."""
    script = Path(sys.argv[0])
    if script.name != "orderhub":
        return "orderhub"
    try:
        return str(script.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def run_demo(console: Console, *, orders: int, host: str | None, port: int | None, serve_after: bool,
             as_json: bool) -> None:
    """Start OrderHub on SQLite (or the configured database), seed it through HTTP, keep serving."""
    settings = Settings.from_env()
    hub = bootstrap(settings, upgrade_db=True)
    issued: IssuedKey = hub.bus.handle(commands.CreateTenant(DEMO_TENANT))
    server = RunningServer(hub, host=host or settings.host, port=port or settings.port, log_level="warning")
    server.start()
    out = console if not as_json else Console(stderr=True)
    try:
        with httpx.Client(base_url=server.url, timeout=30,
                          headers={"Authorization": f"Bearer {issued.api_key}"}) as client:
            stats = seed(client, orders, out)
            total = client.get("/api/v1/orders", params={"limit": 1}).json()
        if as_json:
            sys.stdout.write(json.dumps({"url": server.url, "tenant": issued.tenant, "api_key": issued.api_key,
                                         **stats}) + "\n")
            sys.stdout.flush()
        else:
            sample = total["items"][0]["id"] if total["items"] else "ORDER_ID"
            console.print(Panel.fit(
                f"[bold]OrderHub demo[/] is running on [bold]{server.url}[/] ({hub.engine.dialect.name}, "
                f"data in {settings.home})\n\n"
                f"seeded {stats['orders']} orders and {stats['events']} events through the API "
                f"({stats['stale']} stale events ignored)\n\n"
                f"API docs : {server.url}/docs\n"
                f"tenant   : {issued.tenant}\n"
                f"API key  : [bold]{issued.api_key}[/]  (shown once)\n\n"
                f"try:\n"
                f"  curl -H 'Authorization: Bearer {issued.api_key}' '{server.url}/api/v1/orders?status=shipped'\n"
                f"  curl -H 'Authorization: Bearer {issued.api_key}' {server.url}/api/v1/orders/{sample}/timeline\n"
                f"  {_command()} audit verify\n\nCtrl-C to stop.", title="ready"))
        if serve_after:
            server.wait()
        else:
            server.stop()
    finally:
        hub.close()

"""``orderhub demo``: a running instance fed by simulated traffic from several sales channels.

The demo starts OrderHub, registers one shop per channel through ``POST /api/v1/shops``, and
pushes each channel's native payloads as signed webhooks to ``POST /webhooks/{channel}/{shop}``
over real HTTP (new orders, later versions, retries, late versions, a status-only push, a
couple of malformed payloads), waiting for the inbox workers between phases. The summary is
read back from the running server (orders, channel health, timelines), not from the plan.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from orderhub.adapters.channels.mapping import SpecRegistry
from orderhub.bootstrap import bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.entrypoints.cli.demo_aftersale import aftersale_line, run_aftersale
from orderhub.entrypoints.cli.demo_fulfillment import run_fulfillment
from orderhub.entrypoints.cli.server import RunningServer
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.simulation.channel_traffic import (
    CHANNELS,
    DUPLICATE,
    SHOP_TIMEZONES,
    PlannedMessage,
    plan_traffic,
    shop_app_key,
    signature_headers,
)

DEMO_TENANT = "demo"
SEED = 20261121
DRAIN_TIMEOUT = 120.0
SHOPS_FILE = "demo-shops.json"  # the demo shops' secrets, so a re-run on the same home can sign
_FILTER_RULE = re.compile(r"filter rule '([^']+)'")


@dataclass(frozen=True, slots=True)
class DemoShop:
    """A registered demo shop and what its pushes are signed with."""

    channel: str
    code: str
    secret: str
    app_key: str | None


@dataclass
class PushStats:
    """What the webhook endpoint answered."""

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    drained: bool = True
    by_kind: Counter[str] = field(default_factory=Counter)


def _check(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url.path} answered "
                           f"{response.status_code}: {response.text[:300]}")


def _load_secrets(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_secrets(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2, sort_keys=True)


def register_shops(client: httpx.Client, channels: list[str], secrets_file: Path,
                   console: Console) -> tuple[dict[str, DemoShop], int]:
    """One shop per channel (``demo-<channel>``); returns the shops and how many were new.

    A shop that already exists (a re-run) is reused with the secret saved on its first run;
    without that secret its channel is left out (it could not sign).
    """
    known = _load_secrets(secrets_file).get("shops", {})
    existing = {s["code"] for s in client.get("/api/v1/shops").json()} if channels else set()
    shops: dict[str, DemoShop] = {}
    created = 0
    for channel in channels:
        code = f"demo-{channel}"
        app_key = shop_app_key(channel)
        if code in existing:
            saved = known.get(code)
            if not saved:
                console.print(f"[yellow]shop {code} exists but its secret is not in {secrets_file}: "
                              f"{channel} is left out[/]")
                continue
            shops[channel] = DemoShop(channel, code, saved["secret"], saved.get("app_key") or app_key)
            continue
        secret = secrets.token_urlsafe(24)
        body: dict[str, Any] = {"code": code, "channel": channel, "name": f"Demo {channel}", "secret": secret,
                                "timezone": SHOP_TIMEZONES.get(channel),
                                "settings": {"app_key": app_key} if app_key else {}}
        _check(client.post("/api/v1/shops", json=body))
        created += 1
        known[code] = {"secret": secret, **({"app_key": app_key} if app_key else {})}
        shops[channel] = DemoShop(channel, code, secret, app_key)
    if created:
        _save_secrets(secrets_file, {**_load_secrets(secrets_file), "shops": known})
    return shops, created


def traffic_clock(secrets_file: Path) -> datetime:
    """The ``now`` the simulated traffic is derived from: the first run's, so a re-run on the
    same home sends the same bytes (answered as duplicates) instead of contradicting versions."""
    saved = _load_secrets(secrets_file)
    try:
        return datetime.fromisoformat(saved["traffic_now"])
    except (KeyError, TypeError, ValueError):
        now = datetime.now(UTC).replace(microsecond=0)
        _save_secrets(secrets_file, {**saved, "traffic_now": now.isoformat()})
        return now


def _pending(client: httpx.Client) -> int:
    health = client.get("/api/v1/channels/health")
    _check(health)
    return sum(int(c["pending"]) for c in health.json()["channels"])


def wait_for_inbox(client: httpx.Client, *, timeout: float = DRAIN_TIMEOUT, interval: float = 0.2) -> bool:
    """Poll channel health until no message is pending; False when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        if _pending(client) == 0:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def push_traffic(client: httpx.Client, messages: list[PlannedMessage], shops: dict[str, DemoShop],
                 specs: SpecRegistry, console: Console, *, drain_timeout: float = DRAIN_TIMEOUT) -> PushStats:
    """Send the messages as signed webhooks, phase by phase, waiting for the inbox after each phase."""
    stats = PushStats()
    todo = [m for m in messages if m.channel in shops]
    phases = sorted({m.phase for m in todo})
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("pushing channel webhooks", total=len(todo))
        for phase in phases:
            for message in (m for m in todo if m.phase == phase):
                shop = shops[message.channel]
                path = f"/webhooks/{shop.channel}/{shop.code}"
                headers = signature_headers(specs.get(message.channel), message, secret=shop.secret,
                                            url=str(client.base_url).rstrip("/") + path,
                                            app_key=shop.app_key)
                response = client.post(path, content=message.body, headers=headers)
                _check(response)
                stats.sent += 1
                stats.by_kind[message.kind] += 1
                if response.json().get("duplicate"):
                    stats.duplicates += 1
                else:
                    stats.accepted += 1
                progress.advance(task)
            # The next phase (later versions, status pushes) is about orders of this one.
            stats.drained = wait_for_inbox(client, timeout=drain_timeout) and stats.drained
    return stats


def _all_orders(client: httpx.Client, shop: str) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"shop": shop, "limit": 200}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/orders", params=params)
        _check(page)
        body = page.json()
        orders.extend(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return orders


def summarize(client: httpx.Client, shops: dict[str, DemoShop]) -> dict[str, Any]:
    """What the server now holds: orders per channel, events, stale, holds and dead letters."""
    health = {c["channel"]: c for c in client.get("/api/v1/channels/health").json()["channels"]}
    channels: dict[str, Any] = {}
    held: Counter[str] = Counter()
    order_events = stale = 0
    sample: str | None = None
    for channel, shop in shops.items():
        orders = _all_orders(client, shop.code)
        for order in orders:
            sample = sample or order["id"]
            if order["status"] == "on_hold":
                found = _FILTER_RULE.search(order.get("hold_reason") or "")
                held[found.group(1) if found else "other"] += 1
            timeline = client.get(f"/api/v1/orders/{order['id']}/timeline")
            _check(timeline)
            for item in timeline.json()["items"]:
                if item["action"] == "order.event_ignored_stale":
                    stale += 1
                elif item["action"] != "order.created":
                    order_events += 1
        h = health.get(channel, {})
        channels[channel] = {
            "shop": shop.code, "orders": len(orders),
            "statuses": dict(sorted(Counter(o["status"] for o in orders).items())),
            "received": h.get("received", 0), "mapped": h.get("mapped", 0), "failed": h.get("failed", 0),
            "top_failing_fields": h.get("top_failing_fields", []),
        }
    dead = [{"channel": c, "field": f["field"], "count": f["count"]}
            for c, v in channels.items() for f in v["top_failing_fields"]]
    return {"channels": channels, "orders": sum(v["orders"] for v in channels.values()),
            "order_events": order_events, "stale": stale, "held": dict(sorted(held.items())),
            "dead_lettered": dead, "sample_order": sample}


def _command() -> str:
    """How this ``orderhub`` was invoked, so the hint can be pasted (e.g. ``.venv/bin/orderhub``)."""
    script = Path(sys.argv[0])
    if script.name != "orderhub":
        return "orderhub"
    try:
        return str(script.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _table(summary: dict[str, Any]) -> Table:
    table = Table(title="channels", show_edge=False)
    for name in ("channel", "shop", "received", "orders", "statuses", "dead-lettered (field)"):
        table.add_column(name)
    for channel, c in summary["channels"].items():
        statuses = ", ".join(f"{k} {v}" for k, v in c["statuses"].items())
        failing = ", ".join(f"{f['field']} ×{f['count']}" for f in c["top_failing_fields"]) or "-"
        table.add_row(channel, c["shop"], str(c["received"]), str(c["orders"]), statuses, failing)
    return table


def run_demo(console: Console, *, orders: int, host: str | None, port: int | None, serve_after: bool,
             as_json: bool) -> None:
    """Start OrderHub, feed it every simulated channel's webhooks over HTTP, keep serving."""
    settings = Settings.from_env()
    hub = bootstrap(settings, upgrade_db=True)
    issued: IssuedKey = hub.bus.handle(commands.CreateTenant(DEMO_TENANT))
    server = RunningServer(hub, host=host or settings.host, port=port or settings.port, log_level="warning")
    server.start()
    out = console if not as_json else Console(stderr=True)
    try:
        with httpx.Client(base_url=server.url, timeout=30,
                          headers={"Authorization": f"Bearer {issued.api_key}"}) as client:
            shops, new_shops = register_shops(client, list(CHANNELS), settings.home / SHOPS_FILE, out)
            now = traffic_clock(settings.home / SHOPS_FILE)
            plan = plan_traffic(orders, seed=SEED, now=now, channels=list(shops) or list(CHANNELS))
            pushed = push_traffic(client, plan.messages, shops, hub.specs, out)
            summary = summarize(client, shops)
            out.print("[bold]fulfillment[/]: warehouse, carriers, five paid orders → shipments, scans, tracking…")
            shipping = run_fulfillment(client, server.url)
            out.print("[bold]after-sale[/]: refunds decided by policy, a return scanned back, vouchers…")
            aftersale = run_aftersale(client, shipping, shipping["warehouse"])
        figures = {
            "orders": summary["orders"],
            # Every audited event the demo caused besides creating orders and ignored-stale ones:
            # the order events (channel status changes, filter holds) and the shop registrations.
            "events": summary["order_events"], "stale": summary["stale"],
            "order_events": summary["order_events"], "shops": new_shops,
            "messages": pushed.sent, "duplicates": pushed.duplicates,
            "sent_by_kind": dict(sorted(pushed.by_kind.items())),
            "held": summary["held"], "dead_lettered": summary["dead_lettered"], "drained": pushed.drained,
            "channels": summary["channels"], "fulfillment": shipping,
            "aftersale": aftersale,
        }
        if as_json:
            sys.stdout.write(json.dumps({"url": server.url, "tenant": issued.tenant, "api_key": issued.api_key,
                                         **figures}, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        else:
            _print_summary(console, server.url, hub.engine.dialect.name, settings.home, issued, figures,
                           summary["sample_order"] or "ORDER_ID", pushed)
        if serve_after:
            server.wait()
        else:
            server.stop()
    finally:
        hub.close()


def _print_summary(console: Console, url: str, dialect: str, home: Path, issued: IssuedKey, figures: dict[str, Any],
                   sample: str, pushed: PushStats) -> None:
    console.print(_table({"channels": figures["channels"]}))
    held = ", ".join(f"{rule} {n}" for rule, n in figures["held"].items()) or "none"
    dead = ", ".join(f"{d['channel']}: {d['field']}" for d in figures["dead_lettered"]) or "none"
    drained = "" if pushed.drained else "\n[yellow]the inbox was still busy when the demo stopped waiting[/]"
    console.print(Panel.fit(
        f"[bold]OrderHub demo[/] is running on [bold]{url}[/] ({dialect}, data in {home})\n\n"
        f"{figures['messages']} signed webhooks from {len(figures['channels'])} channels → "
        f"{figures['orders']} orders, {figures['order_events']} order events, "
        f"{figures['stale']} late versions ignored-stale\n"
        f"duplicates answered : {figures['duplicates']} (channel retries, {pushed.by_kind[DUPLICATE]} sent)\n"
        f"dead-lettered       : {dead}\n"
        f"held by filters     : {held}{drained}\n"
        f"fulfillment         : {_shipping_line(figures['fulfillment'])}\n"
        f"after-sale          : {aftersale_line(figures['aftersale'])}\n\n"
        f"dashboard : {url}/ui/\n"
        f"channels  : {url}/ui/channels\n"
        f"after-sale: {url}/ui/aftersales\n"
        f"API docs  : {url}/docs\n"
        f"tenant    : {issued.tenant}\n"
        f"API key   : [bold]{issued.api_key}[/]  (shown once)\n\n"
        f"try:\n"
        f"  {_command()} channels health\n"
        f"  curl -H 'Authorization: Bearer {issued.api_key}' '{url}/api/v1/orders?channel=taobao'\n"
        f"  curl -H 'Authorization: Bearer {issued.api_key}' {url}/api/v1/orders/{sample}/timeline\n"
        f"  curl -H 'Authorization: Bearer {issued.api_key}' "
        f"{url}/api/v1/shipments/{figures['fulfillment']['sample_shipment']}\n"
        f"  {_command()} shipments list\n"
        f"  {_command()} aftersales list\n"
        f"  {_command()} finance vouchers\n"
        f"  {_command()} audit verify\n\nCtrl-C to stop.", title="ready"))


def _shipping_line(f: dict[str, Any]) -> str:
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(f["shipment_statuses"].items()))
    carriers = ", ".join(f"{k} {v}" for k, v in sorted(f["carriers"].items()))
    unknown = ", ".join(f"{u['carrier']} {u['code']}" for u in f["unknown_codes"]) or "none"
    return f"{f['shipments']} shipments ({carriers}): {statuses}; unknown carrier codes alerted: {unknown}"

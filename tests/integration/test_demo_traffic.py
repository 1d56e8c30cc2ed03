"""The demo's channel traffic through a real server: signed webhooks in, orders, dead letters and holds out."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from orderhub.bootstrap import OrderHub
from orderhub.entrypoints.cli.demo import push_traffic, register_shops, summarize
from orderhub.entrypoints.cli.server import RunningServer
from orderhub.service_layer.handlers.tenancy import IssuedKey
from orderhub.simulation.channel_traffic import CHANNELS, DUPLICATE, plan_traffic
from tests.http_helpers import free_port


@pytest.fixture
def client(hub: OrderHub, tenant: IssuedKey) -> Iterator[httpx.Client]:
    running = RunningServer(hub, host="127.0.0.1", port=free_port(), log_level="warning")
    running.start()
    try:
        with httpx.Client(base_url=running.url, timeout=30,
                          headers={"Authorization": f"Bearer {tenant.api_key}"}) as c:
            yield c
    finally:
        running.stop()


def test_demo_traffic_flows_through_every_channel(hub: OrderHub, client: httpx.Client, tmp_path: Path) -> None:
    console = Console(file=io.StringIO())
    shops, created = register_shops(client, list(CHANNELS), tmp_path / "shops.json", console)
    assert created == len(CHANNELS) and set(shops) == set(CHANNELS)
    plan = plan_traffic(24, seed=5, now=datetime.now(UTC))
    pushed = push_traffic(client, plan.messages, shops, hub.specs, console, drain_timeout=60)
    summary = summarize(client, shops)
    # A second registration reuses the saved secrets instead of failing.
    again, created_again = register_shops(client, list(CHANNELS), tmp_path / "shops.json", console)
    assert pushed.drained and pushed.sent == len(plan.messages)
    # Every retry was answered as a duplicate, and nothing else was.
    assert pushed.duplicates == plan.counts()[DUPLICATE]
    assert summary["orders"] == 24
    assert {c: v["orders"] for c, v in summary["channels"].items()} == plan.orders
    assert summary["held"] == {"test_order": 1}
    assert sorted((d["channel"], d["field"]) for d in summary["dead_lettered"]) == [
        ("douyin", "sku_order_list[1].item_num"), ("jd", "order_start_time")]
    assert summary["stale"] == plan.counts()["stale"]
    assert summary["order_events"] > 0
    tiktok = summary["channels"]["tiktok_shop"]["statuses"]
    assert tiktok.get("shipped", 0) + tiktok.get("delivered", 0) >= 1  # the type-1 push moved its order
    health = client.get("/api/v1/channels/health").json()["channels"]
    assert all(c["pending"] == 0 and c["breaker"]["state"] == "closed" for c in health)
    assert created_again == 0 and {c: s.secret for c, s in again.items()} == {c: s.secret for c, s in shops.items()}

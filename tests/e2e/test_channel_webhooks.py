"""End to end: a real ``orderhub serve`` process (API + workers) receiving signed channel
webhooks over HTTP, and the real CLI registering shops, importing a file, showing channel
health and replaying the inbox."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from orderhub.adapters.channels.signatures import sign
from tests.e2e.test_cli_and_server import Server, cli_env, run, run_json, start_server, stop_server

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

SECRET = "e2e-shopify-secret"
WEB_SECRET = "e2e-own-site-secret"


def shopify(order_id: int, *, updated: datetime, fulfillment: str | None = None) -> dict[str, Any]:
    created = updated - timedelta(hours=1)
    return {"id": order_id, "name": f"#{order_id}", "currency": "EUR", "financial_status": "paid",
            "fulfillment_status": fulfillment, "cancelled_at": None, "created_at": created.isoformat(),
            "processed_at": created.isoformat(), "updated_at": updated.isoformat(), "test": False, "tags": "",
            "email": "m***@example.com", "customer": {"first_name": "Marie", "last_name": "Curie"},
            "shipping_address": {"name": "Marie Curie", "address1": "1 rue Cuvier", "city": "Paris",
                                 "province": None, "country_code": "FR", "zip": "75005", "phone": None},
            "line_items": [{"id": 1, "sku": "TEA-1", "title": "Tea", "quantity": 3, "price": "4.10",
                            "discount_allocations": [], "tax_lines": []}],
            "shipping_lines": [{"code": "express", "price": "6.00"}],
            "payment_gateway_names": ["shopify_payments"]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Server, str]]:
    home = tmp_path_factory.mktemp("orderhub-channels")
    env = cli_env(home)
    key = run_json(env, "init", "--tenant", "shop-co", "--json")["api_key"]
    run(env, "shops", "add", "eu-1", "--channel", "shopify", "--secret", SECRET)
    run(env, "shops", "add", "web", "--channel", "own_site", "--secret", WEB_SECRET, "--timezone", "Asia/Shanghai")
    run(env, "shops", "add", "bulk", "--channel", "csv", "--secret", "csv-shop-secret")
    server = start_server(env, home / "serve.log")
    try:
        yield env, server, key
    finally:
        stop_server(server)


def post(server: Server, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(server.url + path, content=body, headers=headers, timeout=10)


def wait_for_order(server: Server, key: str, external_id: str, status: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        found = httpx.get(f"{server.url}/api/v1/orders", params={"q": external_id},
                          headers={"Authorization": f"Bearer {key}"}, timeout=10).json()["items"]
        last = found
        if found and found[0]["status"] == status:
            return dict(found[0])
        time.sleep(0.1)
    raise AssertionError(f"order {external_id} never reached {status}: {last}\n{server.output()[-3000:]}")


def test_signed_webhooks_over_http_become_orders_once(world: tuple[dict[str, str], Server, str]) -> None:
    _, server, key = world
    now = datetime.now(UTC).replace(microsecond=0)
    body = json.dumps(shopify(880001, updated=now - timedelta(minutes=5))).encode()
    headers = sign("shopify", body=body, secret=SECRET, url="") | {"X-Shopify-Topic": "orders/create",
                                                                      "Content-Type": "application/json"}
    first = post(server, "/webhooks/shopify/eu-1", body, headers)
    second = post(server, "/webhooks/shopify/eu-1", body, headers)
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    assert second.status_code == 202 and second.json()["status"] == "duplicate"
    order = wait_for_order(server, key, "880001", "paid")
    assert order["total"] == {"amount": 1830, "currency": "EUR"}

    shipped = json.dumps(shopify(880001, updated=now, fulfillment="fulfilled")).encode()
    headers = sign("shopify", body=shipped, secret=SECRET, url="") | {"X-Shopify-Topic": "orders/updated"}
    assert post(server, "/webhooks/shopify/eu-1", shipped, headers).status_code == 202
    wait_for_order(server, key, "880001", "shipped")

    forged = post(server, "/webhooks/shopify/eu-1", body, {"X-Shopify-Hmac-Sha256": "AAAA"})
    assert forged.status_code == 401
    assert post(server, "/webhooks/shopify/nope", body, headers).status_code == 404

    own = json.dumps({"external_id": "WEB-E2E-1", "currency": "CNY", "status": "paid",
                      "placed_at": "2026-11-21T10:00:00+08:00",
                      "buyer": {"name": "王小明", "phone": "138****5678"},
                      "shipping_address": {"country": "CN", "province": "浙江省", "city": "杭州市",
                                           "district": "西湖区", "detail": "文三路 90 号"},
                      "lines": [{"sku": "TEA-001", "title": "龙井 250g", "quantity": 2,
                                 "unit_price": "59.90"}]}, ensure_ascii=False).encode()
    own_headers = sign("orderhub", body=own, secret=WEB_SECRET, url="") | {"Content-Type": "application/json"}
    assert post(server, "/webhooks/own_site/web", own, own_headers).status_code == 202
    web = wait_for_order(server, key, "WEB-E2E-1", "paid")
    assert web["total"] == {"amount": 11980, "currency": "CNY"}


def test_cli_import_health_and_replay(world: tuple[dict[str, str], Server, str], tmp_path: Path) -> None:
    env, _server, _key = world
    rows = ["order_no,status,currency,placed_at,sku,title,quantity,unit_price,buyer_name,country,province,city",
            "CSV-1,paid,CNY,2026-11-20 10:00:00,TEA-001,龙井,2,59.90,张三,CN,浙江省,杭州市",
            "CSV-1,paid,CNY,2026-11-20 10:00:00,CUP-1,杯子,1,20.00,张三,CN,浙江省,杭州市",
            "CSV-2,paid,CNY,2026-11-20 11:00:00,TEA-002,,1,,李四,CN,江苏省,南京市"]
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text("\n".join(rows) + "\n", encoding="utf-8")

    dry = run(env, "import", str(csv_file), "--shop", "bulk", "--dry-run", "--json", check=False)
    report = json.loads(dry.stdout.strip().splitlines()[-1])
    assert report["dry_run"] is True and report["created"] == 1 and len(report["rejected"]) == 1
    assert report["rejected"][0]["line"] == 4

    real = run(env, "import", str(csv_file), "--shop", "bulk", "--json", check=False)
    assert real.returncode == 1  # one row rejected: the exit status says so
    report = json.loads(real.stdout.strip().splitlines()[-1])
    assert report["created"] == 1 and report["duplicate"] == 0
    assert "unit_price" in report["rejected"][0]["reason"]

    again = json.loads(run(env, "import", str(csv_file), "--shop", "bulk", "--json",
                           check=False).stdout.strip().splitlines()[-1])
    assert again["created"] == 0 and again["duplicate"] == 2

    health = run_json(env, "channels", "health", "--json")
    csv_health = next(c for c in health["channels"] if c["channel"] == "csv")
    assert csv_health["failed"] == 1 and csv_health["flagged"] is True
    assert csv_health["top_failing_fields"][0]["count"] == 1

    replay = run(env, "inbox", "replay", "--failed")
    assert "requeued 1" in replay.stdout

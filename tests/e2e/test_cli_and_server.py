"""End to end: the real ``orderhub`` executable and a real ``orderhub serve`` process over HTTP.

Each CLI call is a fresh Python process (about a second of imports), so the module shares one
initialised home and one server between tests, and keeps the number of calls small.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main
from typer.testing import CliRunner

from orderhub.entrypoints.cli.app import app as cli_app
from tests.http_helpers import free_port

# One xdist worker runs the whole module, so its shared home and server are set up once.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

ORDERS = "/api/v1/orders"
ORDER: dict[str, Any] = {
    "external_id": "E2E-1", "currency": "CNY", "status": "paid", "placed_at": "2026-11-21T10:00:00+08:00",
    "buyer": {"name": "王小明", "phone": "138****5678", "email": None},
    "lines": [{"sku": "TEA-001", "title": "龙井 250g", "quantity": 2, "unit_price": "59.90"}],
}


def orderhub_exe() -> str:
    beside = Path(sys.executable).parent / "orderhub"
    if beside.exists():
        return str(beside)
    found = shutil.which("orderhub")
    assert found, "the `orderhub` console script is not installed (pip install -e .)"
    return found


def cli_env(home: Path, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERHUB_")}
    env["ORDERHUB_HOME"] = str(home)
    if database_url:
        env["ORDERHUB_DATABASE_URL"] = database_url
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
    return env


def run(env: dict[str, str], *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([orderhub_exe(), *args], env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check:
        command = " ".join(args)
        assert proc.returncode == 0, f"orderhub {command} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def run_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    proc = run(env, *args)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, f"--json must print exactly one JSON line, got:\n{proc.stdout}"
    data: dict[str, Any] = json.loads(lines[0])
    return data


def run_in_process(home: Path, *args: str) -> Any:
    """The same CLI in this process (no second of imports): for the extra checks."""
    result = CliRunner().invoke(cli_app, list(args), env={"ORDERHUB_HOME": str(home), "ORDERHUB_DATABASE_URL": "",
                                                           "COLUMNS": "200"})
    return result


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(env: dict[str, str], log: Path, *extra: str, timeout: float = 30) -> Server:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen([orderhub_exe(), "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"orderhub serve exited {process.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop_server(server)
            raise AssertionError(f"orderhub serve was not ready within {timeout:.0f} s:\n{server.output()}")
        time.sleep(0.1)


def stop_server(server: Server) -> None:
    """Ctrl-C first (a clean shutdown), then kill if it lingers."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("orderhub-home")


@pytest.fixture(scope="module")
def env(home: Path) -> dict[str, str]:
    return cli_env(home)


@pytest.fixture(scope="module")
def admin(env: dict[str, str]) -> dict[str, Any]:
    """``orderhub init --json`` on an empty home."""
    return run_json(env, "init", "--json")


@pytest.fixture(scope="module")
def server(env: dict[str, str], admin: dict[str, Any], home: Path) -> Iterator[Server]:
    running = start_server(env, home / "serve.log")
    try:
        yield running
    finally:
        stop_server(running)


def http(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


# ---------------------------------------------------------------------------- init, serve, keys


def test_init_prints_the_tenant_and_a_key_once(admin: dict[str, Any], home: Path) -> None:
    assert admin["tenant"] == "default"
    assert admin["role"] == "admin"
    assert admin["api_key"].startswith("ohk_")
    assert (home / "orderhub.db").exists()
    with sqlite3.connect(home / "orderhub.db") as db:
        stored = repr(db.execute("SELECT * FROM api_keys").fetchall())
    assert admin["api_key"] not in stored


def test_served_api_docs_and_metrics(server: Server, admin: dict[str, Any]) -> None:
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.json() == {"status": "ready", "database": "sqlite"}
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    docs = httpx.get(f"{server.url}/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "swagger" in docs.text.lower()
    assert httpx.get(f"{server.url}/openapi.json").json()["info"]["title"] == "OrderHub"

    with http(server, admin["api_key"]) as client:
        r = client.post(ORDERS, json=ORDER, headers={"Idempotency-Key": "e2e-1", "X-Request-ID": "e2e-trace"})
        assert r.status_code == 201, r.text
        order = r.json()
        assert order["total"] == {"amount": 11980, "currency": "CNY"}
        assert r.headers["Location"] == f"{ORDERS}/{order['id']}"
        again = client.post(ORDERS, json=ORDER, headers={"Idempotency-Key": "e2e-1"})
        assert again.status_code == 200 and again.json()["id"] == order["id"]
        got = client.get(f"{ORDERS}/{order['id']}")
        assert got.status_code == 200 and got.json() == order
        r = client.post(f"{ORDERS}/{order['id']}/events", json={"type": "hold", "reason": "address check"})
        assert r.json()["outcome"] == "applied"
        timeline = client.get(f"{ORDERS}/{order['id']}/timeline").json()
        assert timeline["verified"] is True
        assert timeline["items"][0]["trace_id"] == "e2e-trace"
        assert [i["action"] for i in timeline["items"]] == ["order.created", "order.hold"]
        problem = client.get(f"{ORDERS}/ord_nope")
        assert problem.status_code == 404
        assert problem.headers["content-type"] == "application/problem+json"

    metrics = httpx.get(f"{server.url}/metrics")
    assert metrics.status_code == 200
    assert 'orderhub_orders_created_total{channel="own_site"} 1.0' in metrics.text
    assert "orderhub_http_requests_total" in metrics.text
    assert "orderhub_outbox_messages" in metrics.text
    assert httpx.get(f"{server.url}{ORDERS}").status_code == 401


def test_init_other_tenant_and_keys_create(server: Server, env: dict[str, str], admin: dict[str, Any]) -> None:
    other = run_json(env, "init", "--tenant", "other", "--json")
    assert other["tenant"] == "other" and other["role"] == "admin"
    assert other["tenant_id"] != admin["tenant_id"]
    viewer = run_json(env, "keys", "create", "--role", "viewer", "--tenant", "default", "--json")
    assert viewer["tenant"] == "default" and viewer["role"] == "viewer"
    assert viewer["api_key"] not in (admin["api_key"], other["api_key"])

    # The running server accepts keys issued by other processes right away.
    with http(server, other["api_key"]) as client:
        assert client.get(ORDERS).json() == {"items": [], "next_cursor": None}
        r = client.post(ORDERS, json={**ORDER, "external_id": "OTHER-1"})
        assert r.status_code == 201, r.text
    with http(server, viewer["api_key"]) as client:
        listed = client.get(ORDERS)
        assert listed.status_code == 200
        assert "OTHER-1" not in {o["external_id"] for o in listed.json()["items"]}
        r = client.post(ORDERS, json={**ORDER, "external_id": "VIEWER-1"})
        assert r.status_code == 403
        assert r.json()["code"] == "permission_denied"

    # With two tenants, commands that need one say so instead of guessing.
    home = Path(env["ORDERHUB_HOME"])
    ambiguous = run_in_process(home, "keys", "create", "--role", "viewer")
    assert ambiguous.exit_code != 0
    assert "--tenant" in ambiguous.output
    unknown_role = run_in_process(home, "keys", "create", "--role", "superuser", "--tenant", "default")
    assert unknown_role.exit_code != 0
    assert "superuser" in unknown_role.output


# ---------------------------------------------------------------------------- audit verify


def test_audit_verify_detects_an_edited_and_a_deleted_entry(env: dict[str, str], admin: dict[str, Any],
                                                           home: Path) -> None:
    ok = run(env, "audit", "verify")
    assert "intact" in ok.stdout and "BROKEN" not in ok.stdout

    db_path = home / "orderhub.db"
    tenant_id = admin["tenant_id"]
    with sqlite3.connect(db_path) as db:
        entry_id, reason = db.execute("SELECT id, reason FROM audit_events WHERE tenant_id = ? AND seq = 2",
                                      (tenant_id,)).fetchone()
    try:
        with sqlite3.connect(db_path) as db:
            db.execute("UPDATE audit_events SET reason = 'nothing to see here' WHERE tenant_id = ? AND seq = 2",
                       (tenant_id,))
        broken = run(env, "audit", "verify", check=False)
        assert broken.returncode == 1, broken.stdout + broken.stderr
        output = broken.stdout + broken.stderr
        assert "#2" in output
        assert entry_id in output
        as_json = run_in_process(home, "audit", "verify", "--json")
        assert as_json.exit_code == 1
        report = json.loads(as_json.stdout)
        assert report["ok"] is False
        [default] = [t for t in report["tenants"] if t["tenant_id"] == tenant_id]
        assert default["break"]["seq"] == 2 and default["break"]["entry_id"] == entry_id
    finally:
        with sqlite3.connect(db_path) as db:
            db.execute("UPDATE audit_events SET reason = ? WHERE tenant_id = ? AND seq = 2", (reason, tenant_id))
    assert run(env, "audit", "verify").returncode == 0

    with sqlite3.connect(db_path) as db:
        db.row_factory = sqlite3.Row
        last = dict(db.execute("SELECT * FROM audit_events WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1",
                               (tenant_id,)).fetchone())
        db.execute("DELETE FROM audit_events WHERE tenant_id = ? AND seq = ?", (tenant_id, last["seq"]))
    try:
        truncated = run(env, "audit", "verify", check=False)
        assert truncated.returncode != 0
        assert f"#{last['seq']}" in truncated.stdout + truncated.stderr
    finally:
        with sqlite3.connect(db_path) as db:
            columns = ", ".join(last)
            db.execute(f"INSERT INTO audit_events ({columns}) VALUES ({', '.join('?' * len(last))})",
                       tuple(last.values()))


# ---------------------------------------------------------------------------- demo, help


def test_demo_seeds_orders_through_channel_webhooks(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "demo-home")
    port = free_port()
    data = run_json(env, "demo", "--orders", "30", "--no-serve", "--json", "--port", str(port))
    assert data["orders"] == 30
    assert data["tenant"] == "demo"
    assert data["api_key"].startswith("ohk_")
    assert data["url"] == f"http://127.0.0.1:{port}"
    assert data["events"] > 0
    result = run_in_process(tmp_path / "demo-home", "audit", "verify", "--json")
    assert result.exit_code == 0, result.output
    verified = json.loads(result.stdout)
    assert verified["ok"] is True
    [demo] = verified["tenants"]
    # A tenant entry, a key entry, one per shop, then one per order and one per applied or stale event;
    # the fulfillment act adds its own (warehouse, stock, rule sets, five orders, their shipments).
    assert data["shops"] == 8
    channel_entries = 2 + data["shops"] + 30 + data["events"] + data["stale"]
    assert demo["entries"] > channel_entries
    shipping = data["fulfillment"]
    assert shipping["shipments"] == 5
    assert shipping["shipment_statuses"].get("delivered") == 2
    assert shipping["order_statuses"].get("delivered") == 2
    assert [(u["carrier"], u["code"]) for u in shipping["unknown_codes"]] == [("ems", "RENAMED-CODE")]
    aftersale = data["aftersale"]
    assert aftersale["cases"] == 3
    assert aftersale["statuses"] == {"refunded": 2, "requested": 1}
    assert aftersale["rules"][aftersale["sample_case"]] == "unshipped_auto"
    assert aftersale["vouchers"] == 2 and aftersale["ties_out"] is True
    assert aftersale["queue"] == 1


def _commands(command: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*prefix, name))


def test_every_command_has_help(env: dict[str, str]) -> None:
    # The executable itself…
    top = run(env, "--help")
    assert "Usage" in top.stdout
    for name in ("init", "serve", "worker", "demo", "keys", "audit", "db"):
        assert name in top.stdout
    # …and every command and sub-command of the same Typer app (in-process: a subprocess
    # per command would cost a second each).
    root = typer.main.get_command(cli_app)
    paths = list(_commands(root))
    assert ("keys", "create") in paths and ("audit", "verify") in paths and ("db", "upgrade") in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(cli_app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output, path


# ---------------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
def test_served_api_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path / "pg-home", database_url=pg_url)
    tenant = f"e2e-{os.getpid()}"
    issued = run_json(env, "init", "--tenant", tenant, "--json")
    assert issued["tenant"] == tenant
    running = start_server(env, tmp_path / "serve-pg.log", "--no-workers")
    try:
        assert httpx.get(f"{running.url}/readyz").json() == {"status": "ready", "database": "postgresql"}
        with http(running, issued["api_key"]) as client:
            r = client.post(ORDERS, json=ORDER, headers={"Idempotency-Key": "pg-1"})
            assert r.status_code == 201, r.text
            got = client.get(f"{ORDERS}/{r.json()['id']}")
            assert got.status_code == 200
            assert got.json()["total"] == {"amount": 11980, "currency": "CNY"}
            assert client.get(f"{ORDERS}/{r.json()['id']}/timeline").json()["verified"] is True
    finally:
        stop_server(running)
    assert running.process.returncode == 0, running.output()  # Ctrl-C is a clean shutdown

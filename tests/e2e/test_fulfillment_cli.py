"""The CLI for fulfillment and tracking (issue 5): ``orderhub carriers add|list|codes``,
``orderhub shipments list|show``, ``orderhub devices list``, ``orderhub operators unlock`` and
``orderhub tracking unknown-codes``, run in-process against SQLite and PostgreSQL (and once as
the real executable), with ``--json`` output, refusals as one-line errors (exit 2) and carrier
secrets never printed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.entrypoints.api.app import create_app
from orderhub.entrypoints.cli.app import app as cli_app
from orderhub.entrypoints.cli.context import console
from orderhub.simulation.fake_carrier import FakeCarrier
from orderhub.workers.fulfillment import CarrierWaybillRelay, FulfilmentPlanner
from tests.e2e.test_cli_and_server import cli_env, orderhub_exe
from tests.http_helpers import auth
from tests.integration.test_api_orders import order_body

pytestmark = [pytest.mark.e2e]

API_KEY = "ck-carrier-secret-key"
PUSH_SECRET = "push-secret-never-shown"


class Cli:
    """``cli(*args)`` runs ``orderhub ARGS`` in this process on the per-test database;
    ``admin_key`` is the key ``orderhub init`` printed, ``env`` the environment used."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.admin_key = ""

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(cli_app, list(args), env=self.env)

    def hub(self) -> OrderHub:
        return bootstrap(Settings.from_env(self.env))


@pytest.fixture
def cli(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    # The console's width was fixed when it was created: tables must not be cut to 80 columns.
    monkeypatch.setattr(console, "width", 200)
    runner = Cli({"ORDERHUB_HOME": str(tmp_path / "home"), "ORDERHUB_DATABASE_URL": db_url, "COLUMNS": "200",
                  "NO_COLOR": "1"})
    runner.admin_key = as_json(runner("init", "--tenant", "acme", "--json"))["api_key"]
    yield runner


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"--json must print exactly one JSON line, got:\n{result.stdout}"
    return json.loads(lines[0])


def refused(result: Result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())  # a long line may be wrapped by the console
    assert message.startswith("error: "), result.output
    for word in words:
        assert word in message, (word, result.output)


def test_carrier_accounts_are_added_and_listed_without_secrets(cli: Cli) -> None:
    added = as_json(cli("carriers", "add", "sf", "--base-url", "https://api.sf.example/", "--api-key", API_KEY,
                        "--push-secret", PUSH_SECRET, "--json"))
    assert added == {"carrier": "sf", "protocol": "simulated", "api_base_url": "https://api.sf.example"}
    text = cli("carriers", "add", "zto", "--base-url", "https://api.zto.example", "--api-key", API_KEY,
               "--push-secret", PUSH_SECRET)
    assert text.exit_code == 0 and "connected carrier zto (simulated)" in text.output
    assert API_KEY not in text.output and PUSH_SECRET not in text.output

    listed = cli("carriers", "list", "--json")
    items = as_json(listed)["items"]
    assert [(i["carrier"], i["api_base_url"]) for i in items] == [("sf", "https://api.sf.example"),
                                                                   ("zto", "https://api.zto.example")]
    assert all(set(i) == {"carrier", "protocol", "api_base_url", "created_at"} for i in items)
    table = cli("carriers", "list")
    assert table.exit_code == 0 and "https://api.zto.example" in table.output
    for output in (listed.output, table.output):
        assert API_KEY not in output and PUSH_SECRET not in output

    refused(cli("carriers", "add", "acme", "--base-url", "https://x.example", "--api-key", API_KEY,
                "--push-secret", PUSH_SECRET), "carriers add:", "unknown carrier 'acme'", "usps")
    refused(cli("carriers", "add", "sf", "--base-url", "ftp://x.example", "--api-key", API_KEY,
                "--push-secret", PUSH_SECRET), "api_base_url")
    refused(cli("carriers", "add", "sf", "--base-url", "https://x.example", "--api-key", "short",
                "--push-secret", PUSH_SECRET), "api_key: 8–200 characters")
    refused(cli("carriers", "add", "sf", "--base-url", "https://x.example", "--api-key", API_KEY,
                "--push-secret", PUSH_SECRET, "--protocol", "carrier-pigeon"), "unknown protocol")
    refused(cli("carriers", "list", "--tenant", "globex"), "no tenant named 'globex'")


def test_code_tables_with_the_tenants_overrides(cli: Cli) -> None:
    usps = as_json(cli("carriers", "codes", "usps", "--json"))
    assert (usps["tenant"], usps["rule_set_version"]) == ("acme", 0)
    [table] = usps["carriers"]
    assert (table["carrier"], table["name"], table["case_sensitive"], table["overrides"]) == ("usps", "USPS", True, [])
    codes = {c["code"]: c for c in table["codes"]}
    assert codes["01"]["milestone"] == "delivered"
    assert codes["01"]["sub_status"].startswith("Delivered_")
    text = cli("carriers", "codes", "usps")
    assert text.exit_code == 0
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.output.splitlines()
            if line.count("│") > 3]
    assert ["01", "delivered", codes["01"]["sub_status"], codes["01"]["description"], "table"] in rows, text.output

    # Keyword fallbacks of carriers whose codes are scan texts are shown too.
    zto = as_json(cli("carriers", "codes", "zto", "--json"))["carriers"][0]
    assert any("签收" in k["match"] and k["milestone"] == "delivered" for k in zto["keywords"]), zto["keywords"]
    everything = as_json(cli("carriers", "codes", "--json"))
    assert len(everything["carriers"]) == 12 and {"sf", "usps", "dhl"} <= {c["carrier"] for c in everything["carriers"]}

    refused(cli("carriers", "codes", "nope"), "carriers codes:", "no code table for carrier 'nope'", "usps")

    hub = cli.hub()
    try:
        tenant = hub.queries.tenant_by_name("acme")
        assert tenant is not None
        hub.bus.handle(commands.PutRuleSet(actor=commands.Actor(tenant.id, "test", "test"), kind="carrier_codes",
                                           body={"overrides": {"usps": {"DELIVERED": {"milestone": "delivered"}}}}))
    finally:
        hub.close()
    usps = as_json(cli("carriers", "codes", "usps", "--json"))
    assert usps["rule_set_version"] == 1
    assert usps["carriers"][0]["overrides"] == [{"code": "DELIVERED", "milestone": "delivered",
                                                 "sub_status": "Delivered_001", "description": ""}]
    text = cli("carriers", "codes", "usps")
    assert text.exit_code == 0 and "DELIVERED" in text.output and "override (v1)" in text.output


def test_shipments_devices_and_tracking(cli: Cli) -> None:
    assert as_json(cli("shipments", "list", "--json")) == {"items": []}
    assert "no shipments yet" in cli("shipments", "list").output
    assert as_json(cli("tracking", "unknown-codes", "--json")) == {"items": []}
    refused(cli("shipments", "show", "shp_missing"), "shipments show:", "not found")
    refused(cli("shipments", "list", "--status", "lost"), "unknown status 'lost'", "handed_over")

    assert cli("warehouses", "add", "HZ1", "--name", "杭州仓").exit_code == 0
    assert cli("inventory", "set", "HZ1", "TEA-001", "20").exit_code == 0
    hub = cli.hub()
    with FakeCarrier(api_key=API_KEY) as carrier, \
            TestClient(create_app(hub), headers=auth(cli.admin_key)) as api, httpx.Client(timeout=5) as http:
        assert cli("carriers", "add", "sf", "--base-url", carrier.base_url, "--api-key", API_KEY,
                   "--push-secret", PUSH_SECRET).exit_code == 0
        r = api.post("/api/v1/orders", json=order_body("WEB-CLI-1", tags=["express"], lines=[
            {"sku": "TEA-001", "title": "龙井", "quantity": 2, "unit_price": "59.90"}]))
        assert r.status_code == 201, r.text
        order_id = r.json()["id"]
        assert FulfilmentPlanner(hub).run_once() == 1
        assert CarrierWaybillRelay(hub, http_client=http).run_once() == 1
        [shipment] = as_json(cli("shipments", "list", "--order", order_id, "--json"))["items"]
        sid, waybill = shipment["id"], shipment["waybill_no"]
        assert shipment["status"] == "waybill_issued" and shipment["carrier"] == "sf" and waybill
        r = api.post(f"/api/v1/shipments/{sid}/scans", json={"scan_id": "s-1", "step": "pick", "operator": "wang",
                                                              "device_id": "pda-1", "barcode": "TEA-001"})
        assert r.status_code == 200, r.text
        r = api.post(f"/api/v1/shipments/{sid}/scans", json={"scan_id": "s-2", "step": "pick", "operator": "wang",
                                                              "device_id": "pda-1", "barcode": "NOT-IN-THIS-BOX"})
        assert r.status_code == 422, r.text
    tenant_id = hub.queries.tenant_by_name("acme").id  # type: ignore[union-attr]
    actor = commands.Actor(tenant_id, "test", "test")
    hub.bus.handle(commands.ReceiveTrackingEvents(carrier="sf", source="push", verify=lambda _secret: True, events=(
        commands.CarrierEventInput(waybill_no=waybill, code="ZZ-NEW", description="mystery scan",
                                   occurred_at=datetime(2026, 11, 21, 3, tzinfo=UTC)),)))
    for device in ("pda-1", "pda-2", "pda-3"):
        hub.bus.handle(commands.DeviceHeartbeat(actor=actor, device_id=device, operator="li", app_version="2.1"))
    hub.close()

    assert as_json(cli("shipments", "list", "--status", "picking", "--json"))["items"][0]["id"] == sid
    assert as_json(cli("shipments", "list", "--status", "delivered", "--json")) == {"items": []}
    detail = as_json(cli("shipments", "show", sid, "--json"))
    assert [(ln["sku"], ln["quantity"], ln["picked"], ln["verified"]) for ln in detail["lines"]] == [
        ("TEA-001", 2, 1, 0)]
    assert [s["scan_id"] for s in detail["scans"]] == ["s-1"]
    assert [r["scan_id"] for r in detail["refused_scans"]] == ["s-2"]
    assert [(e["code"], e["outcome"]) for e in detail["tracking"]] == [("ZZ-NEW", "unknown")]
    text = cli("shipments", "show", sid)
    assert text.exit_code == 0
    for shown in (waybill, "Lines", "Refused scans", "NOT-IN-THIS-BOX", "ZZ-NEW", "unknown", "next step"):
        assert shown in text.output, (shown, text.output)
    assert waybill in cli("shipments", "list").output

    unknown = as_json(cli("tracking", "unknown-codes", "--json"))["items"]
    assert [(u["carrier"], u["code"], u["events"]) for u in unknown] == [("sf", "ZZ-NEW", 1)]
    assert "ZZ-NEW" in cli("tracking", "unknown-codes").output

    devices = as_json(cli("devices", "list", "--json"))
    assert {d["device_id"] for d in devices["items"]} == {"pda-1", "pda-2", "pda-3"}
    assert [d["refused_items"] for d in devices["items"] if d["device_id"] == "pda-1"] == [1]
    [locked] = devices["locked_operators"]
    assert locked["operator"] == "li" and set(locked["devices"]) == {"pda-1", "pda-2", "pda-3"}
    text = cli("devices", "list")
    assert text.exit_code == 0 and "Locked operators" in text.output and "pda-3" in text.output

    assert as_json(cli("operators", "unlock", "li", "--json")) == {"operator": "li", "unlocked": True}
    assert "was not locked" in cli("operators", "unlock", "li").output
    assert as_json(cli("devices", "list", "--json"))["locked_operators"] == []
    refused(cli("operators", "unlock", "bad operator!"), "operators unlock:")


def test_the_real_executable(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([orderhub_exe(), *args], env=env, capture_output=True, text=True, timeout=60,
                              check=False)

    assert run("init", "--json").returncode == 0
    codes = run("carriers", "codes", "usps", "--json")
    assert codes.returncode == 0, codes.stderr
    [table] = json.loads(codes.stdout)["carriers"]
    assert {"code": "01", "milestone": "delivered"}.items() <= next(
        c for c in table["codes"] if c["code"] == "01").items()
    unknown = run("carriers", "codes", "acme")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.startswith("error: carriers codes: no code table for carrier 'acme'"), unknown.stderr
    empty = run("shipments", "list", "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == {"items": []}

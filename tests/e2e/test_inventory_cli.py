"""The CLI for warehouses and stock (DESIGN.md §6): ``orderhub warehouses add|list`` and
``orderhub inventory set|adjust|list``, run in-process against SQLite and PostgreSQL, with
``--json`` output, refusals as one-line errors (exit 2) and every change in the audit chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from orderhub.entrypoints.cli.app import app as cli_app
from orderhub.entrypoints.cli.context import console

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def cli(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``cli(*args)`` runs ``orderhub ARGS`` in this process on the per-test database."""
    # The console's width was fixed when it was created (whatever COLUMNS was then): tables
    # must not be cut to 80 columns because another test imported the CLI first.
    monkeypatch.setattr(console, "width", 200)
    env = {"ORDERHUB_HOME": str(tmp_path / "home"), "ORDERHUB_DATABASE_URL": db_url, "COLUMNS": "200",
           "NO_COLOR": "1"}

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli_app, list(args), env=env)

    init = run("init", "--tenant", "acme", "--json")
    assert init.exit_code == 0, init.output
    yield run


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"--json must print exactly one JSON line, got:\n{result.stdout}"
    return json.loads(lines[0])


def test_warehouses_and_stock_through_the_cli(cli: Any) -> None:
    added = as_json(cli("warehouses", "add", "HZ1", "--name", "杭州仓", "--province", "浙江省", "--city", "杭州市",
                        "--lat", "30.2741", "--lon", "120.1551", "--json"))
    assert (added["code"], added["name"], added["lat"], added["lon"]) == ("HZ1", "杭州仓", "30.2741", "120.1551")
    again = cli("warehouses", "add", "HZ1", "--name", "again")
    assert again.exit_code == 2 and "already used" in again.output
    bad = cli("warehouses", "add", "SH1", "--name", "上海仓", "--lat", "95", "--lon", "1")
    assert bad.exit_code == 2 and "lat" in bad.output
    listed = as_json(cli("warehouses", "list", "--json"))
    assert [w["code"] for w in listed["items"]] == ["HZ1"]
    table = cli("warehouses", "list")
    assert table.exit_code == 0 and "杭州仓" in table.output

    row = as_json(cli("inventory", "set", "HZ1", "TEA-001", "10", "--safety-stock", "2", "--json"))
    assert row == {"warehouse": "HZ1", "sku": "TEA-001", "on_hand": 10, "reserved": 0, "presale_reserved": 0,
                   "available": 10, "safety_stock": 2, "sellable": 8, "version": 1}
    row = as_json(cli("inventory", "adjust", "HZ1", "TEA-001", "--kind", "damage", "--quantity", "3",
                      "--reason", "crushed", "--json"))
    assert (row["on_hand"], row["version"]) == (7, 2)
    row = as_json(cli("inventory", "adjust", "HZ1", "TEA-002", "--kind", "receipt", "--quantity", "4",
                      "--reason", "PO-1", "--json"))
    assert (row["sku"], row["on_hand"]) == ("TEA-002", 4)

    for refused, words in [
        (("inventory", "adjust", "HZ1", "TEA-001", "--kind", "damage", "--quantity", "30", "--reason", "flood"),
         "available"),
        (("inventory", "adjust", "NOPE", "TEA-001", "--kind", "receipt", "--quantity", "1", "--reason", "x"),
         "no warehouse"),
        (("inventory", "adjust", "HZ1", "TEA-001", "--kind", "theft", "--quantity", "1", "--reason", "x"),
         "not an adjustment"),
        (("inventory", "set", "HZ1", "TEA-001", "5", "--expected-version", "1"), "version 2"),
        (("inventory", "set", "HZ1", "TEA-001", "--", "-1"), "negative"),
    ]:
        result = cli(*refused)
        assert result.exit_code == 2, (refused, result.output)
        assert words in result.output, (refused, result.output)

    listed = as_json(cli("inventory", "list", "--json"))
    assert [(r["warehouse"], r["sku"], r["on_hand"]) for r in listed["items"]] == [
        ("HZ1", "TEA-001", 7), ("HZ1", "TEA-002", 4)]
    assert [r["sku"] for r in as_json(cli("inventory", "list", "--sku", "TEA-002", "--json"))["items"]] == ["TEA-002"]
    table = cli("inventory", "list")
    assert table.exit_code == 0 and "TEA-001" in table.output and "TEA-002" in table.output

    verified = cli("audit", "verify", "--json")
    assert verified.exit_code == 0, verified.output
    [tenant] = json.loads(verified.stdout)["tenants"]
    # init's tenant and key, the warehouse, then set, damage and receipt: the refusals left nothing.
    assert tenant["entries"] == 6 and tenant["break"] is None


def test_the_cli_names_the_tenant_it_acts_for(cli: Any) -> None:
    assert cli("init", "--tenant", "globex", "--json").exit_code == 0
    ambiguous = cli("warehouses", "add", "HZ1", "--name", "x")
    assert ambiguous.exit_code == 2 and "--tenant" in ambiguous.output
    assert as_json(cli("warehouses", "add", "HZ1", "--name", "x", "--tenant", "globex", "--json"))["code"] == "HZ1"
    assert as_json(cli("warehouses", "list", "--tenant", "acme", "--json")) == {"items": []}
    unknown = cli("inventory", "list", "--tenant", "nobody")
    assert unknown.exit_code == 2 and "nobody" in unknown.output

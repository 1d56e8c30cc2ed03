"""The finance CLI (issue 6 §6): ``orderhub finance import-statement FILE`` and ``orderhub
finance statement-lines``, run in-process against SQLite and PostgreSQL: the summary table
(matched by rule, ambiguous with candidates, unmatched, bad rows with line numbers, exit 1),
``--json``, a re-import that imports nothing, options, and refusals (exit 2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import typer
from sqlalchemy import insert
from typer.testing import CliRunner, Result

from orderhub.adapters.db.aftersale_tables import aftersale_cases
from orderhub.adapters.db.engine import build_engine
from orderhub.adapters.db.tables import orders
from orderhub.domain import ids
from orderhub.entrypoints.cli.app import app as cli_app
from orderhub.entrypoints.cli.context import console, err
from orderhub.entrypoints.cli.finance import finance_app

pytestmark = [pytest.mark.e2e]

NOW = datetime(2026, 11, 25, tzinfo=UTC)
STATEMENT = ("date,amount,memo,counterparty,reference\n"
             "2026-11-23 09:15:00,-59.90,支付宝退款,王小明,RF-2026112199\n"     # 2 reference
             "2026-11-22,-8.88,退款,赵六,\n"                                     # 3 ambiguous: twins
             "2026-11-22,-43.21,退款,钱七,\n"                                    # 4 unmatched
             "2026-11-20,119.80,货款 WEB-100001,平台,\n"                         # 5 payment, order in memo
             "yesterday,-1.00,x,y,\n")                                          # 6 bad date


def _finance_cli() -> typer.Typer:
    """The ``orderhub`` app once ``finance`` is registered in cli/app.py; until then an app
    with the finance sub-app alone (``init`` still goes through the real app)."""
    if any(group.name == "finance" for group in cli_app.registered_groups):
        return cli_app
    root = typer.Typer()
    root.add_typer(finance_app, name="finance")
    return root


def shanghai(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


def seed(db_url: str, tenant_id: str) -> None:
    engine = build_engine(db_url)
    with engine.begin() as conn:
        order_ids = {}
        for external_id, total, paid in (("WEB-100001", 11980, 18), ("WEB-100002", 5000, None)):
            order_ids[external_id] = ids.order_id(tenant_id, "own_site", "web", external_id)
            conn.execute(insert(orders).values(
                tenant_id=tenant_id, id=order_ids[external_id], channel="own_site", shop="web",
                external_id=external_id, currency="CNY", status="paid" if paid else "pending_payment",
                payment_status="paid" if paid else "unpaid", subtotal_minor=total, shipping_fee_minor=0,
                discount_minor=0, total_minor=total, buyer={}, tags=[], placed_at=shanghai(1),
                paid_at=shanghai(paid) if paid else None, status_changed_at=NOW, created_at=NOW, updated_at=NOW,
                version=1, search_text=external_id.lower()))
        for case_id, amount, day, ref in (("as_ref", 5990, 20, "RF-2026112199"), ("as_twin1", 888, 22, None),
                                          ("as_twin2", 888, 22, None)):
            conn.execute(insert(aftersale_cases).values(
                tenant_id=tenant_id, id=case_id, order_id=order_ids["WEB-100001"], channel="own_site", shop="web",
                type="refund_only", status="refunded", reason="changed_mind", currency="CNY", amount_minor=amount,
                refunded_minor=amount, lines=[], source="api", refund_ref=ref, refunded_at=shanghai(day),
                sla_due={}, created_at=NOW, updated_at=NOW, version=1))
    engine.dispose()


@pytest.fixture
def cli(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``cli(*args)`` runs ``orderhub ARGS`` in this process on the per-test database,
    seeded with orders and refunds of the tenant ``acme``."""
    # Consoles were sized when created: keep tables and messages from wrapping at 80 columns.
    monkeypatch.setattr(console, "width", 200)
    monkeypatch.setattr(err, "width", 200)
    env = {"ORDERHUB_HOME": str(tmp_path / "home"), "ORDERHUB_DATABASE_URL": db_url, "COLUMNS": "200",
           "NO_COLOR": "1"}
    finance = _finance_cli()

    def run(*args: str) -> Result:
        return CliRunner().invoke(finance if args[0] == "finance" else cli_app, list(args), env=env)

    init = run("init", "--tenant", "acme", "--json")
    assert init.exit_code == 0, init.output
    seed(db_url, json.loads(init.stdout)["tenant_id"])
    yield run


def write(tmp_path: Path, text: str, *, name: str = "statement.csv", encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def as_json(result: Result, *, exit_code: int = 0) -> Any:
    assert result.exit_code == exit_code, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"--json must print exactly one JSON line, got:\n{result.stdout}"
    return json.loads(lines[0])


def test_import_statement_shows_the_summary_and_flags_bad_rows(cli: Any, tmp_path: Path) -> None:
    result = cli("finance", "import-statement", write(tmp_path, STATEMENT))
    assert result.exit_code == 1, result.output                     # a bad row: like `orderhub import`
    out = result.output
    for words in ("matched by reference", "matched by memo_order", "matched by amount_date", "Ambiguous",
                  "as_twin1", "as_twin2", "Unmatched", "43.21", "钱七", "line 6: date", "2 of 4 new line(s) matched"):
        assert words in out, (words, out)
    assert "2026-11-22" in out                                      # dates in the statement's zone

    lines = as_json(cli("finance", "statement-lines", "--json"))["items"]
    assert [(i["line"], i["status"], i["rule"]) for i in lines] == [
        (2, "matched", "reference"), (3, "ambiguous", "amount_date"), (4, "unmatched", None),
        (5, "matched", "memo_order")]
    ambiguous = as_json(cli("finance", "statement-lines", "--status", "ambiguous", "--json"))["items"]
    assert [c["id"] for c in ambiguous[0]["candidates"]] == ["as_twin1", "as_twin2"]
    table = cli("finance", "statement-lines", "--status", "matched")
    assert table.exit_code == 0 and "refund as_ref" in table.output and "payment ord_" in table.output
    refused = cli("finance", "statement-lines", "--status", "pending")
    assert refused.exit_code == 2 and "unknown status" in refused.output


def test_json_report_and_reimport(cli: Any, tmp_path: Path) -> None:
    path = write(tmp_path, STATEMENT)
    report = as_json(cli("finance", "import-statement", path, "--json"), exit_code=1)
    assert (report["file"], report["lines"], report["matched"]) == ("statement.csv", 4, 2)
    assert report["by_rule"] == {"reference": 1, "memo_order": 1, "amount_date": 0}
    assert [a["line"] for a in report["ambiguous"]] == [3]
    assert report["unmatched"][0]["amount"] == {"amount": -4321, "currency": "CNY"}
    assert report["bad_rows"] == [{"line": 6, "field": "date", "error": report["bad_rows"][0]["error"]}]

    again = as_json(cli("finance", "import-statement", path, "--json"), exit_code=1)
    assert (again["lines"], again["already_imported"], again["matched"], again["ambiguous"]) == (4, 4, 0, [])
    assert again["already_imported_by_status"] == {"matched": 2, "ambiguous": 1, "unmatched": 1}
    assert len(as_json(cli("finance", "statement-lines", "--json"))["items"]) == 4


def test_options_and_a_gb18030_file(cli: Any, tmp_path: Path) -> None:
    text = "交易日期,amount,摘要,对方户名\n2026/11/27,-8.80,退款,赵六\n"
    # 0.08 off and five days away: matched only with a wider tolerance and window (still two twins).
    path = write(tmp_path, text, encoding="gb18030")
    report = as_json(cli("finance", "import-statement", path, "--tolerance", "0.10", "--window-days", "5", "--json"))
    assert [a["candidate_count"] for a in report["ambiguous"]] == [2] and report["bad_rows"] == []
    narrow = write(tmp_path, text.replace("-8.80", "-8.81"), name="narrow.csv", encoding="gb18030")
    report = as_json(cli("finance", "import-statement", narrow, "--json"))
    assert len(report["unmatched"]) == 1


@pytest.mark.parametrize(("args", "words"), [
    (("--tolerance", "0.001"), "decimal places"),
    (("--tolerance", "-1"), "negative"),
    (("--currency", "XYZ"), "ISO 4217"),
    (("--window-days", "-1"), "date window"),
    (("--timezone", "Mars/Base"), "time zone"),
])
def test_refusals_exit_2(cli: Any, tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    result = cli("finance", "import-statement", write(tmp_path, STATEMENT), *args)
    assert result.exit_code == 2 and words in result.output, result.output


def test_a_file_without_the_required_columns_is_refused(cli: Any, tmp_path: Path) -> None:
    result = cli("finance", "import-statement", write(tmp_path, "when,how much\n2026-11-21,1\n"))
    assert result.exit_code == 2
    assert "missing required column" in result.output and "counterparty" in result.output
    assert as_json(cli("finance", "statement-lines", "--json")) == {"items": []}

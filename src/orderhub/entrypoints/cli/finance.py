"""CLI commands of finance (issue 6 §6): ``orderhub finance import-statement FILE`` and
``orderhub finance statement-lines``. Thin like every entrypoint: read the file, call the
service (service_layer/statements.py), print a summary or ``--json``.

``import-statement`` exits 1 when rows were rejected (the good rows are still imported),
like ``orderhub import``; 2 when nothing could be imported (unreadable file, bad option).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orderhub.domain.errors import DomainError
from orderhub.domain.finance.statements import DEFAULT_CURRENCY, DEFAULT_ZONE, RULES, STATUSES, parse_zone
from orderhub.domain.money import Money
from orderhub.entrypoints.cli.context import (
    JsonOpt,
    TenantOpt,
    console,
    err,
    fail,
    open_hub,
    print_json,
    resolve_tenant,
)
from orderhub.service_layer.errors import ServiceError
from orderhub.service_layer.statements import StatementReport, import_statement, statement_lines

finance_app = typer.Typer(help="Finance: bank and payment-platform statements matched to refunds and payments.",
                          no_args_is_help=True)

SHOWN = 50      # rows of each list printed as a table; --json has them all


def _amount(money: dict[str, Any]) -> str:
    return Money(int(money["amount"]), str(money["currency"])).to_decimal_string()


def _day(iso: str, zone: ZoneInfo) -> str:
    # JSON carries UTC; people read the statement's calendar day (UTC midnight is 08:00 in Shanghai).
    return datetime.fromisoformat(iso).astimezone(zone).date().isoformat()


def _candidate(c: dict[str, Any], zone: ZoneInfo) -> str:
    return f"{c['id']} {_amount(c['amount'])} {_day(c['date'], zone)} order {c['order_external_id']}"


def _zone(name: str) -> ZoneInfo:
    try:
        return parse_zone(name)
    except DomainError as exc:
        fail(exc.message)
        raise


@finance_app.command("import-statement")
def import_statement_cmd(
        file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                             help="Statement CSV (UTF-8 or GB18030).")],
        tolerance: Annotated[str, typer.Option(help="Amount difference still matched, in major units.")] = "0.50",
        window_days: Annotated[int, typer.Option("--window-days", help="Days either side of the line date "
                                                                       "for the amount/date rule.")] = 3,
        currency: Annotated[str, typer.Option(help="Currency of rows without a currency column.")]
        = DEFAULT_CURRENCY,
        timezone: Annotated[str, typer.Option(help="IANA zone of dates without an offset.")] = DEFAULT_ZONE,
        tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Import a bank / payment-platform statement and match its lines to refunds (money out)
    and order payments (money in); re-importing a file imports nothing twice."""
    currency = currency.strip().upper()
    zone = _zone(timezone)
    try:
        tolerance_minor = Money.parse(tolerance, currency, field="tolerance").amount
    except DomainError as exc:
        fail(exc.message)
        return
    if tolerance_minor < 0:
        fail("--tolerance can't be negative")
    data = file.read_bytes()
    hub = open_hub()
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        # The bar only on a terminal: piped output and --json stay clean.
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, disable=as_json or not err.is_terminal) as progress:
            task = progress.add_task("matching", total=None)
            report = import_statement(
                hub.uow_factory, tenant_id=tenant_id, filename=file.name, data=data, tolerance_minor=tolerance_minor,
                window_days=window_days, currency=currency, zone=timezone,
                progress=lambda done, total: progress.update(task, completed=done, total=total))
    except (ServiceError, DomainError) as exc:
        fail(f"{file.name}: {exc.message}")
        return
    finally:
        hub.close()
    if as_json:
        print_json(report.to_dict())
    else:
        _show_report(report, zone)
    if report.bad_rows:
        raise typer.Exit(1)


def _show_report(report: StatementReport, zone: ZoneInfo) -> None:
    data = report.to_dict()
    table = Table(title=f"Statement {report.file} (import {report.import_id})")
    table.add_column("result")
    table.add_column("lines", justify="right")
    for rule in RULES:
        table.add_row(f"matched by {rule}", str(report.by_rule[rule]))
    table.add_row("[bold]matched[/]", f"[bold]{report.matched}[/]")
    table.add_row("ambiguous", str(len(report.ambiguous)))
    table.add_row("unmatched", str(len(report.unmatched)))
    earlier = ", ".join(f"{n} {s}" for s, n in report.earlier_status.items() if n)
    table.add_row("already imported" + (f" ({earlier})" if earlier else ""), str(report.already_imported))
    table.add_row("bad rows", str(len({b.line for b in report.bad_rows})))
    console.print(table)
    if data["ambiguous"]:
        amb = Table(title="Ambiguous: pick the right one")
        for col in ("line", "amount", "memo", "why", "candidates"):
            amb.add_column(col, justify="right" if col in ("line", "amount") else "left")
        for a in data["ambiguous"][:SHOWN]:
            more = a["candidate_count"] - len(a["candidates"])
            listed = "\n".join(_candidate(c, zone) for c in a["candidates"]) + (f"\n… {more} more" if more else "")
            amb.add_row(str(a["line"]), _amount(a["amount"]), escape(a["memo"]), escape(a["reason"]), escape(listed))
        console.print(amb)
    if data["unmatched"]:
        unm = Table(title="Unmatched")
        for col in ("line", "date", "amount", "memo", "counterparty"):
            unm.add_column(col, justify="right" if col in ("line", "amount") else "left")
        for u in data["unmatched"][:SHOWN]:
            unm.add_row(str(u["line"]), _day(u["date"], zone), _amount(u["amount"]), escape(u["memo"]),
                        escape(u["counterparty"]))
        console.print(unm)
    for listed in ("ambiguous", "unmatched"):
        if len(data[listed]) > SHOWN:
            err.print(f"  … and {len(data[listed]) - SHOWN} more {listed} lines (use --json for all)")
    for bad in report.bad_rows[:SHOWN]:
        err.print(f"  line {bad.line}: {bad.field}: {escape(bad.error)}")
    if len(report.bad_rows) > SHOWN:
        err.print(f"  … and {len(report.bad_rows) - SHOWN} more bad rows (use --json for all)")
    console.print(f"{report.matched} of {report.lines - report.already_imported} new line(s) matched, "
                  f"{len(report.ambiguous)} ambiguous, {len(report.unmatched)} unmatched, "
                  f"{report.already_imported} already imported, {len(report.bad_rows)} bad row problem(s)")


@finance_app.command("statement-lines")
def statement_lines_cmd(
        status: Annotated[str | None, typer.Option(help=" | ".join(STATUSES))] = None,
        import_id: Annotated[str | None, typer.Option("--import", help="Only the lines of this import.")] = None,
        limit: Annotated[int, typer.Option(help="How many (newest import first).")] = 100,
        timezone: Annotated[str, typer.Option(help="IANA zone dates are shown in.")] = DEFAULT_ZONE,
        tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Imported statement lines with their match (or candidates, when ambiguous)."""
    zone = _zone(timezone)
    hub = open_hub()
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        items = statement_lines(hub.engine, tenant_id=tenant_id, status=status, import_id=import_id, limit=limit)
    except (ServiceError, DomainError) as exc:
        fail(f"statement-lines: {exc.message}")
        return
    finally:
        hub.close()
    if as_json:
        print_json({"items": items})
        return
    if not items:
        console.print("no statement lines" + (f" with status {status}" if status else "")
                      + "; import one with `orderhub finance import-statement FILE`")
        return
    table = Table(title="Statement lines" + (f" ({status})" if status else ""))
    for col in ("import", "line", "date", "amount", "memo", "status", "rule", "matched / candidates"):
        table.add_column(col, justify="right" if col in ("line", "amount") else "left")
    for item in items:
        matched = item["matched"]
        detail = (f"{matched['kind']} {matched['id']}" if matched
                  else "\n".join(_candidate(c, zone) for c in item["candidates"]) or "-")
        table.add_row(item["import_id"], str(item["line"]), _day(item["date"], zone), _amount(item["amount"]),
                      escape(item["memo"]), item["status"], item["rule"] or "-", escape(detail))
    console.print(table)

"""CLI commands for after-sale (issue 6): ``orderhub aftersales list|show|open|act`` and the
ledger commands ``orderhub finance vouchers|tie-out`` (the statement import is in
``cli/finance.py``). Thin like every entrypoint: parse, send a command or read a query, print."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from orderhub.domain import commands
from orderhub.domain.money import Money
from orderhub.entrypoints.cli.context import (
    JsonOpt,
    TenantOpt,
    cli_actor,
    console,
    fail,
    print_json,
    resolve_tenant,
    session,
)
from orderhub.service_layer.aftersale_queries import case_view
from orderhub.service_layer.aftersale_sandbox import replay_refund_policy

aftersales_app = typer.Typer(help="After-sale cases: the queue, one case, actions.", no_args_is_help=True)

SLA_STYLE = {"yellow": "yellow", "orange": "dark_orange", "red": "bold red"}


def money_text(value: dict[str, Any]) -> str:
    """``{"amount": 1230, "currency": "CNY"}`` as ``12.30 CNY``."""
    return f"{Money(value['amount'], value['currency']).to_decimal_string()} {value['currency']}"


def _sla(level: str) -> str:
    style = SLA_STYLE.get(level)
    return f"[{style}]{level}[/]" if style else level


@aftersales_app.command("list")
def aftersales_list(status: Annotated[str | None, typer.Option(help="Only this case status.")] = None,
                    queue: Annotated[str | None, typer.Option(help="Only this review queue.")] = None,
                    sla: Annotated[str | None, typer.Option(help="Only this SLA level (yellow, orange, red).")] = None,
                    closed: Annotated[bool, typer.Option("--closed", help="Include closed cases.")] = False,
                    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
                    tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The case queue, most urgent first (red, orange, yellow, then the nearest deadline)."""
    with session("aftersales list") as hub:
        tenant_id, _ = resolve_tenant(hub, tenant)
        items = hub.queries.aftersale_queue(tenant_id, status=status, queue=queue, sla=sla, include_closed=closed,
                                            limit=limit)
    if as_json:
        print_json({"items": items})
        return
    if not items:
        console.print("no after-sale case in the queue")
        return
    table = Table(title="After-sale queue")
    for col in ("case", "order", "type", "status", "amount", "reason", "rule", "queue", "sla", "opened"):
        table.add_column(col, justify="right" if col == "amount" else "left")
    for c in items:
        table.add_row(c["id"], c.get("order_external_id") or c["order_id"], c["type"], c["status"],
                      money_text(c["amount"]), c["reason"], (c["decision"] or {}).get("rule") or "-",
                      c["queue"] or "-", _sla(c["sla"]["level"]), c["created_at"])
    console.print(table)


@aftersales_app.command("show")
def aftersales_show(case_id: str, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """One case: decision and the rule that fired, lines, return parcel, refund, vouchers, timeline."""
    with session("aftersales show") as hub:
        tenant_id, _ = resolve_tenant(hub, tenant)
        case = hub.queries.aftersale(tenant_id, case_id)
    if as_json:
        print_json(case)
        return
    decision = case["decision"] or {}
    console.print(f"[bold]{case['id']}[/] {case['type']} · {case['status']} · {money_text(case['amount'])} "
                  f"(refunded {money_text(case['refunded'])}) · SLA {_sla(case['sla']['level'])}")
    console.print(f"order {case['order']['external_id'] if case['order'] else case['order_id']} · reason "
                  f"{case['reason']} · source {case['source']}")
    console.print(f"decision: {decision.get('action', '-')} by rule [bold]{decision.get('rule', '-')}[/]"
                  f"{' — ' + decision['reason'] if decision.get('reason') else ''}")
    if case["return_parcel"]:
        parcel = case["return_parcel"]
        console.print(f"return parcel: {parcel['status']} {parcel.get('carrier') or ''} "
                      f"{parcel.get('waybill_no') or ''}")
    elif case["type"] == "refund_only":
        console.print("no return parcel: refund only")
    for v in case["vouchers"]:
        console.print(f"voucher {v['id']}: Dr {v['debit']} / Cr {v['credit']} {money_text(v['amount'])} "
                      f"[{', '.join(v['tags'])}]")
    console.print(f"allowed actions: {', '.join(case['allowed_actions']) or 'none (closed)'}")


@aftersales_app.command("open")
def aftersales_open(order_id: str, type_: Annotated[str, typer.Option("--type")] = "refund_only",
                    reason: Annotated[str, typer.Option()] = "changed_mind",
                    amount: Annotated[str | None, typer.Option(help="Partial refund, e.g. 12.30.")] = None,
                    tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Open a case on ORDER_ID (the refund policy decides it at once)."""
    with session("aftersales open") as hub:
        tenant_id, _ = resolve_tenant(hub, tenant)
        result = hub.bus.handle(commands.RequestAfterSale(actor=cli_actor(tenant_id), order_id=order_id,
                                                          type=type_, reason=reason, amount=amount))
    view = case_view(result.case)
    if as_json:
        print_json(view)
    else:
        decision = view["decision"] or {}
        console.print(f"opened [bold]{view['id']}[/]: {view['status']} ({decision.get('action')} by rule "
                      f"{decision.get('rule')})")


@aftersales_app.command("act")
def aftersales_act(case_id: str, action: str,
                   params: Annotated[str, typer.Option("--params", help="The action's fields as JSON, e.g. "
                                                       "'{\"reason\": \"no damage on photos\"}'.")] = "{}",
                   tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Take ACTION on a case (approve, reject, negotiate, choose, cancel, assign, return_shipped,
    receive_return, retry_refund)."""
    try:
        fields = json.loads(params)
    except ValueError as exc:
        fail(f"aftersales act: --params is not JSON ({exc})")
    if not isinstance(fields, dict):
        fail("aftersales act: --params must be a JSON object")
    with session("aftersales act") as hub:
        tenant_id, _ = resolve_tenant(hub, tenant)
        result = hub.bus.handle(commands.ActOnAfterSale(actor=cli_actor(tenant_id), case_id=case_id, action=action,
                                                        params=fields))
    view = case_view(result.case)
    if as_json:
        print_json(view)
    else:
        console.print(f"{view['id']}: {view['status']}")


def vouchers_command(tag: Annotated[str | None, typer.Option(help="Only vouchers with this tag.")] = None,
                     as_csv: Annotated[bool, typer.Option("--csv", help="Write the ledger as CSV.")] = False,
                     tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The voucher ledger (append-only) as a table, JSON or CSV on stdout."""
    with session("finance vouchers") as hub:
        tenant_id, _ = resolve_tenant(hub, tenant)
        if as_csv:
            for chunk in hub.queries.vouchers_csv(tenant_id, tag=tag):
                sys.stdout.write(chunk)
            return
        items = hub.queries.vouchers(tenant_id, tag=tag, limit=10_000)
    if as_json:
        print_json({"items": items})
        return
    table = Table(title="Vouchers")
    for col in ("seq", "posted", "case", "debit", "credit", "amount", "tags"):
        table.add_column(col, justify="right" if col in ("seq", "amount") else "left")
    for v in items:
        table.add_row(str(v["seq"]), v["posted_at"], v["case_id"], v["debit"], v["credit"], money_text(v["amount"]),
                      ", ".join(v["tags"]))
    console.print(table)


def tie_out_command(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Voucher totals against the refunded cases per currency; exit 1 when they don't tie out."""
    with session("finance tie-out") as hub:
        tenant_id, _ = resolve_tenant(hub, tenant)
        result = hub.queries.ledger_tie_out(tenant_id)
    if as_json:
        print_json(result)
    else:
        for row in result["currencies"]:
            console.print(f"{row['currency']}: vouchers {money_text(row['vouchers'])} ({row['voucher_count']}) · "
                          f"refunded cases {money_text(row['refunded_cases'])} ({row['case_count']}) · "
                          f"difference {money_text(row['difference'])}")
        if result["cases_without_voucher"]:
            console.print(f"[red]refunded cases without a voucher:[/] {', '.join(result['cases_without_voucher'])}")
        console.print("[green]ledger ties out[/]" if result["ties_out"] else "[red]ledger does NOT tie out[/]")
    if not result["ties_out"]:
        raise typer.Exit(1)


def sandbox_command(kind: str, file: Annotated[Path, typer.Argument(help="The proposed rule set, YAML or JSON.")],
                    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most recent cases replayed.")] = 1000,
                    tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Replay a proposed KIND rule set (refund_policy) on the stored decisions; nothing changes."""
    try:
        body = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        fail(f"sandbox: can't read {file}: {exc}")
    if not isinstance(body, dict):
        fail(f"sandbox: {file} must hold a mapping (the rule set)")
    if kind != "refund_policy":
        fail(f"sandbox: the sandbox replays refund_policy so far, not {kind!r}")
    with session("sandbox") as hub:
        tenant_id, _ = resolve_tenant(hub, tenant)
        report = replay_refund_policy(hub.queries, tenant_id, body, limit=limit)
    if as_json:
        print_json(report)
        return
    console.print(f"{report['cases']} cases replayed, {report['changed']} decisions would change")
    table = Table(title="Per rule")
    for col in ("rule", "now", "proposed", "difference"):
        table.add_column(col, justify="left" if col == "rule" else "right")
    for r in report["rules"]:
        table.add_row(r["rule"], str(r["before"]), str(r["after"]), f"{r['difference']:+d}")
    console.print(table)
    for change in report["changes"]:
        console.print(f"{change['count']} × {change['from']['rule']} ({change['from']['action']}) → "
                      f"{change['to']['rule']} ({change['to']['action']}), e.g. {', '.join(change['examples'])}")

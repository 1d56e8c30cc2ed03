"""`orderhub inventory check [--repair]`: the inventory self-check (issue 4 scope 7).

Without ``--repair`` it only reads. With it, each tenant is repaired in one transaction
(service_layer/inventory_check.py). Exit status 1 when problems were found and are still
there (not repaired, or not repairable), 0 otherwise.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from orderhub.entrypoints.cli.context import (
    JsonOpt,
    TenantOpt,
    cli_actor,
    console,
    err,
    open_hub,
    print_json,
    resolve_tenant,
)
from orderhub.service_layer.inventory_check import RepairReport, TenantCheck, check_inventory, repair_inventory

RepairOpt = Annotated[bool, typer.Option("--repair", help="Close phantom reservations and fix drift through "
                                                           "audited REPAIR movements.")]


def inventory_check(repair: RepairOpt = False, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Compare stock rows with their reservations and movements and list phantom
    reservations (held for cancelled, shipped or missing orders); exit 1 on problems left."""
    hub = open_hub()
    try:
        names = {t.id: t.name for t in hub.queries.tenants()}
        ids = [resolve_tenant(hub, tenant)[0]] if tenant else sorted(names, key=lambda t: names[t])
        checks: list[TenantCheck] = []
        repairs: list[RepairReport] = []
        for tenant_id in ids:
            if repair:
                uow = hub.uow_factory()
                uow.act_as(cli_actor(tenant_id))
                repairs.append(repair_inventory(uow, tenant_id))
            else:
                checks.append(check_inventory(hub.engine, tenant_id))
    finally:
        hub.close()
    remaining = [r.after for r in repairs] if repair else checks
    failed = any(not c.ok for c in remaining)
    if as_json:
        if repair:
            print_json({"ok": not failed, "repaired": True,
                        "tenants": [{"tenant": names.get(r.before.tenant_id), **r.to_json()} for r in repairs]})
        else:
            print_json({"ok": not failed, "repaired": False,
                        "tenants": [{"tenant": names.get(c.tenant_id), **c.to_json()} for c in checks]})
    else:
        for check in [r.before for r in repairs] if repair else checks:
            _show(check, names.get(check.tenant_id, check.tenant_id))
        for report in repairs:
            _show_repair(report, names.get(report.before.tenant_id, report.before.tenant_id))
    if failed:
        raise typer.Exit(1)


def _show(check: TenantCheck, name: str) -> None:
    if check.ok:
        console.print(f"tenant [bold]{name}[/]: {check.rows} stock rows, [green]consistent[/]")
        return
    table = Table(title=f"Inventory check: tenant {name} ({check.rows} stock rows, {check.problems} problems)")
    for col in ("problem", "warehouse", "sku", "detail", "row", "expected"):
        table.add_column(col, justify="right" if col in ("row", "expected") else "left")
    for d in check.reserved_drift:
        table.add_row("[red]reserved drift[/]", d.warehouse, d.sku, f"{d.bucket} bucket vs active reservations",
                      str(d.row), str(d.reservations))
    for ld in check.ledger_drift:
        table.add_row("[red]ledger drift[/]", ld.warehouse, ld.sku, f"{ld.figure} vs sum of movements",
                      str(ld.row), str(ld.movements))
    for p in check.phantoms:
        table.add_row("[yellow]phantom[/]", p.warehouse, p.sku,
                      f"{p.reservation_id} of order {p.order_id} ({p.order_status}) → {p.target.value}",
                      str(p.quantity), "0")
    console.print(table)


def _show_repair(report: RepairReport, name: str) -> None:
    if report.before.ok:
        return
    console.print(f"tenant [bold]{name}[/]: closed {report.phantoms_closed} phantom reservations, repaired "
                  f"{len(report.repairs)} stock rows")
    for line in report.unrepaired:
        err.print(f"[bold red]not repaired:[/] {line}")
    if report.ok:
        console.print(f"tenant [bold]{name}[/]: [green]consistent now[/]")
    else:
        err.print(f"[bold red]tenant {name}: {report.after.problems} problems remain[/]")

"""CLI commands for warehouses and stock: ``orderhub warehouses …`` and ``orderhub inventory …``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from orderhub.domain import commands
from orderhub.domain.errors import DomainError
from orderhub.domain.inventory.stock import StockLevel
from orderhub.entrypoints.cli.context import (
    JsonOpt,
    TenantOpt,
    cli_actor,
    console,
    fail,
    open_hub,
    print_json,
    resolve_tenant,
)
from orderhub.service_layer.errors import ServiceError
from orderhub.service_layer.inventory_queries import stock_view, warehouse_view

warehouses_app = typer.Typer(help="Warehouses that hold stock.", no_args_is_help=True)
inventory_app = typer.Typer(help="Stock per SKU and warehouse.", no_args_is_help=True)

STOCK_COLUMNS = ("warehouse", "sku", "on_hand", "reserved", "presale_reserved", "available", "safety_stock",
                 "sellable", "version")


def _handle(name: str, tenant: str | None, build: Callable[[str], object]) -> Any:
    """Resolve the tenant, send the command ``build(tenant_id)`` makes, and turn refusals into
    a one-line error (exit 2)."""
    hub = open_hub()
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        return hub.bus.handle(build(tenant_id))
    except (ServiceError, DomainError) as exc:
        fail(f"{name}: {exc.message}")
        return None
    finally:
        hub.close()


def _show_rows(rows: list[dict[str, Any]], *, title: str) -> None:
    table = Table(title=title)
    for col in STOCK_COLUMNS:
        table.add_column(col, justify="left" if col in ("warehouse", "sku") else "right")
    for r in rows:
        table.add_row(*(str(r[col]) for col in STOCK_COLUMNS))
    console.print(table)


def _show_level(level: StockLevel, as_json: bool) -> None:
    row = stock_view(level)
    if as_json:
        print_json(row)
        return
    _show_rows([row], title=f"{level.sku} in {level.warehouse}")


# --------------------------------------------------------------------------- warehouses
@warehouses_app.command("add")
def warehouses_add(code: str, name: Annotated[str, typer.Option(help="Display name, e.g. 杭州仓.")],
                   province: Annotated[str | None, typer.Option(help="Province, e.g. 浙江省.")] = None,
                   city: Annotated[str | None, typer.Option(help="City, e.g. 杭州市.")] = None,
                   lat: Annotated[str | None, typer.Option(help="Latitude in degrees, e.g. 30.2741.")] = None,
                   lon: Annotated[str | None, typer.Option(help="Longitude in degrees, e.g. 120.1551.")] = None,
                   on_time_rate: Annotated[str | None, typer.Option(help="Share shipped on time, 0..1.")] = None,
                   handling_cost: Annotated[str | None, typer.Option(help="Cost per order in CNY, e.g. 3.50.")
                                            ] = None,
                   tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Add warehouse CODE (stock is tracked for the tenant from its first warehouse on)."""
    row = _handle("warehouses add", tenant, lambda tenant_id: commands.CreateWarehouse(
        actor=cli_actor(tenant_id), code=code, name=name, province=province, city=city, lat=lat, lon=lon,
        on_time_rate=on_time_rate, handling_cost=handling_cost))
    view = warehouse_view(row)
    if as_json:
        print_json(view)
    else:
        console.print(f"added warehouse [bold]{view['code']}[/] {view['name']} ({view['id']})")


@warehouses_app.command("list")
def warehouses_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The tenant's warehouses."""
    hub = open_hub()
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        rows = hub.queries.warehouses(tenant_id)
    finally:
        hub.close()
    if as_json:
        print_json({"items": rows})
        return
    table = Table(title="Warehouses")
    for col in ("code", "name", "province", "city", "lat", "lon", "on-time", "handling cost"):
        table.add_column(col)
    for w in rows:
        cost = w["handling_cost"]
        table.add_row(w["code"], w["name"], w["province"] or "-", w["city"] or "-", w["lat"] or "-",
                      w["lon"] or "-", w["on_time_rate"], f"{cost['amount']} {cost['currency']} minor")
    console.print(table)


# --------------------------------------------------------------------------- stock
@inventory_app.command("set")
def inventory_set(warehouse: str, sku: str, on_hand: int,
                  safety_stock: Annotated[int | None, typer.Option(help="Kept back from channel sales.")] = None,
                  expected_version: Annotated[int | None, typer.Option(help="Refuse if the row moved on.")] = None,
                  reason: Annotated[str | None, typer.Option(help="Why (kept in the audit chain).")] = None,
                  tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Set ON_HAND of SKU in WAREHOUSE (a count movement records the difference)."""
    level = _handle("inventory set", tenant, lambda tenant_id: commands.SetStock(
        actor=cli_actor(tenant_id), warehouse=warehouse, sku=sku, on_hand=on_hand, safety_stock=safety_stock,
        expected_version=expected_version, reason=reason))
    _show_level(level, as_json)


@inventory_app.command("adjust")
def inventory_adjust(warehouse: str, sku: str,
                     kind: Annotated[str, typer.Option(help="receipt, count, damage or correction.")],
                     quantity: Annotated[int, typer.Option(
                         help="receipt/damage: units (> 0); correction: signed change; count: counted figure.")],
                     reason: Annotated[str, typer.Option(help="Why (kept in the audit chain).")],
                     expected_version: Annotated[int | None, typer.Option(help="Refuse if the row moved on.")
                                                 ] = None,
                     tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Post an adjustment to SKU in WAREHOUSE."""
    level = _handle("inventory adjust", tenant, lambda tenant_id: commands.AdjustStock(
        actor=cli_actor(tenant_id), warehouse=warehouse, sku=sku, kind=kind, quantity=quantity, reason=reason,
        expected_version=expected_version))
    _show_level(level, as_json)


@inventory_app.command("list")
def inventory_list(sku: Annotated[str | None, typer.Option(help="Only this SKU.")] = None,
                   warehouse: Annotated[str | None, typer.Option(help="Only this warehouse code.")] = None,
                   tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Stock rows by SKU and warehouse."""
    hub = open_hub()
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        rows = hub.queries.inventory(tenant_id, sku=sku, warehouse=warehouse)
    finally:
        hub.close()
    if as_json:
        print_json({"items": rows})
        return
    _show_rows(rows, title="Stock")

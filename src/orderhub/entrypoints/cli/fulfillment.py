"""CLI commands for fulfillment and tracking (issue 5): ``orderhub carriers …``,
``orderhub shipments …``, ``orderhub devices list``, ``orderhub operators unlock`` and
``orderhub tracking unknown-codes``. Thin like every entrypoint: parse, send a command or
read a query, print. Carrier keys and push secrets are written, never printed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from orderhub.bootstrap import OrderHub
from orderhub.domain import commands
from orderhub.domain.fulfillment.states import ShipmentStatus
from orderhub.domain.rules import RuleInvalid
from orderhub.domain.tracking.codes import CodeBook, CodeMapping, CodeTable, parse_overrides
from orderhub.entrypoints.cli.context import (
    JsonOpt,
    TenantOpt,
    cli_actor,
    console,
    err,
    fail,
    print_json,
    resolve_tenant,
    session,
)
from orderhub.service_layer.fulfillment_rules import CARRIER_CODES
from orderhub.service_layer.handlers.rules import current_rule_set

carriers_app = typer.Typer(help="Carrier accounts and their tracking code tables.", no_args_is_help=True)
shipments_app = typer.Typer(help="Shipments: lines, warehouse scans and carrier tracking.", no_args_is_help=True)
devices_app = typer.Typer(help="Warehouse handhelds and locked operator accounts.", no_args_is_help=True)
operators_app = typer.Typer(help="Warehouse operator accounts.", no_args_is_help=True)
tracking_app = typer.Typer(help="Carrier tracking events.", no_args_is_help=True)

MAX_LIST = 500


def _send(name: str, tenant: str | None, build: Callable[[str], object]) -> Any:
    """Resolve the tenant and send the command ``build(tenant_id)`` makes."""
    with session(name) as hub:
        tenant_id, _ = resolve_tenant(hub, tenant)
        return hub.bus.handle(build(tenant_id))


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[object, ...]], *,
           right: tuple[str, ...] = ()) -> Table:
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left")
    for row in rows:
        table.add_row(*("-" if cell is None or cell == "" else str(cell) for cell in row))
    return table


def _yes(value: object) -> str:
    return "yes" if value else "no"


# --------------------------------------------------------------------------- carriers
@carriers_app.command("add")
def carriers_add(carrier: str,
                 base_url: Annotated[str, typer.Option("--base-url", help="The carrier API's base URL.")],
                 api_key: Annotated[str, typer.Option("--api-key", help="The key OrderHub calls the carrier with.")],
                 push_secret: Annotated[str, typer.Option("--push-secret",
                                                          help="The secret the carrier signs its pushes with.")],
                 protocol: Annotated[str, typer.Option(help="How to talk to the carrier's API.")] = "simulated",
                 tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Connect the tenant to CARRIER (replaces an earlier connection); the key and secret are never shown."""
    row = _send("carriers add", tenant, lambda tenant_id: commands.AddCarrierAccount(
        actor=cli_actor(tenant_id), carrier=carrier.strip(), api_base_url=base_url.strip(), api_key=api_key,
        push_secret=push_secret, protocol=protocol.strip()))
    if as_json:
        print_json({"carrier": row.carrier, "protocol": row.protocol, "api_base_url": row.api_base_url})
    else:
        console.print(f"connected carrier [bold]{row.carrier}[/] ({row.protocol}) at {row.api_base_url}")


@carriers_app.command("list")
def carriers_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The tenant's carrier accounts (without their key or push secret)."""
    with session("carriers list") as hub:
        tenant_id, _ = resolve_tenant(hub, tenant)
        rows = hub.queries.carrier_accounts(tenant_id)
    if as_json:
        print_json({"items": rows})
        return
    if not rows:
        console.print("no carrier account yet; connect one with `orderhub carriers add`")
        return
    console.print(_table("Carrier accounts", ("carrier", "protocol", "api base url", "connected"),
                         [(r["carrier"], r["protocol"], r["api_base_url"], r["created_at"]) for r in rows]))


def _mapping(code: str, mapping: CodeMapping) -> dict[str, str]:
    return {"code": code, "milestone": mapping.milestone.value, "sub_status": mapping.sub_status,
            "description": mapping.description}


def _code_table_view(table: CodeTable, overrides: dict[str, CodeMapping]) -> dict[str, Any]:
    return {"carrier": table.carrier, "name": table.name, "case_sensitive": table.case_sensitive,
            "codes": [_mapping(code, m) for code, m in table.codes.items()],
            "keywords": [{"match": match, **{k: v for k, v in _mapping(match, m).items() if k != "code"}}
                         for match, m in table.keywords],
            "overrides": [_mapping(code, m) for code, m in overrides.items()]}


def _tenant_overrides(hub: OrderHub, book: CodeBook, tenant: str | None
                      ) -> tuple[str | None, int | None, dict[str, dict[str, CodeMapping]]]:
    """The tenant's name, its ``carrier_codes`` version and overrides; no tenant yet: none."""
    if tenant is None and not hub.queries.tenants():
        return None, None, {}
    tenant_id, name = resolve_tenant(hub, tenant)
    stored = current_rule_set(hub.engine, tenant_id, CARRIER_CODES)
    try:
        overrides = parse_overrides(stored.body, known_carriers=book.carriers())
    except RuleInvalid as exc:
        # The hub reads events with the tables as shipped in that case; say so rather than fail.
        err.print(f"[yellow]warning:[/] carrier_codes version {stored.version} is unusable "
                  f"({exc.message}); the tables apply as shipped")
        overrides = {}
    return name, stored.version, overrides


@carriers_app.command("codes")
def carriers_codes(carrier: Annotated[str | None, typer.Argument(help="A carrier id, e.g. usps (default: all).")
                                      ] = None,
                   tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The carrier code tables (code → milestone, sub-status, description), with the tenant's overrides."""
    with session("carriers codes") as hub:
        book = hub.code_books.base
        tables = [book.table(carrier.strip())] if carrier is not None else [book.table(c) for c in book.carriers()]
        name, version, overrides = _tenant_overrides(hub, book, tenant)
    views = [_code_table_view(t, overrides.get(t.carrier, {})) for t in tables]
    if as_json:
        print_json({"tenant": name, "rule_set_version": version, "carriers": views})
        return
    for view in views:
        spelling = "case-sensitive" if view["case_sensitive"] else "case-insensitive"
        rows: list[tuple[object, ...]] = [
            (o["code"], o["milestone"], o["sub_status"], o["description"], f"override (v{version})")
            for o in view["overrides"]]
        rows += [(c["code"], c["milestone"], c["sub_status"], c["description"], "table") for c in view["codes"]]
        rows += [(f"*{k['match']}*", k["milestone"], k["sub_status"], k["description"], "keyword")
                 for k in view["keywords"]]
        console.print(_table(f"{view['name']} ({view['carrier']}), {spelling} codes",
                             ("code", "milestone", "sub_status", "description", "source"), rows))
    if name is not None:
        console.print(f"overrides: tenant {name}, {CARRIER_CODES} version {version} "
                      "(edit with PUT /api/v1/rules/carrier_codes); overrides win over the table")


# --------------------------------------------------------------------------- shipments
@shipments_app.command("list")
def shipments_list(order: Annotated[str | None, typer.Option("--order", help="Only this order's shipments.")] = None,
                   status: Annotated[str | None, typer.Option(help="Only shipments in this status.")] = None,
                   limit: Annotated[int, typer.Option(min=1, max=MAX_LIST, help="At most this many.")] = 100,
                   tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The tenant's shipments, newest first."""
    if status is not None and status not in {s.value for s in ShipmentStatus}:
        fail(f"shipments list: unknown status {status!r}; expected one of: "
             + ", ".join(s.value for s in ShipmentStatus))
    with session("shipments list") as hub:
        tenant_id, _ = resolve_tenant(hub, tenant)
        rows = hub.queries.shipments(tenant_id, order_id=order, status=status, limit=limit)
    if as_json:
        print_json({"items": rows})
        return
    if not rows:
        console.print("no shipments" + (" match these filters" if order or status else " yet"))
        return
    console.print(_table("Shipments", ("id", "order", "status", "carrier", "waybill", "warehouse", "wave", "rule",
                                       "milestone", "stall", "next step", "created"),
                         [(s["id"], s["order_id"], s["status"], s["carrier"], s["waybill_no"], s["warehouse"],
                           s["wave"], s["routing_rule"], s["milestone"], s["stall_level"], s["next_step"],
                           s["created_at"]) for s in rows], right=("stall",)))


@shipments_app.command("show")
def shipments_show(shipment_id: Annotated[str, typer.Argument(metavar="ID", help="The shipment id.")],
                   tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """One shipment: lines (picked / verified), warehouse scans, refused scans and carrier events."""
    with session("shipments show") as hub:
        tenant_id, _ = resolve_tenant(hub, tenant)
        s = hub.queries.shipment(tenant_id, shipment_id.strip())
    if as_json:
        print_json(s)
        return
    console.print(f"[bold]shipment {s['id']}[/] of order {s['order_id']}: {s['status']} (version {s['version']})")
    facts = [("carrier", s["carrier"]), ("service", s["service"]), ("waybill", s["waybill_no"]),
             ("warehouse", s["warehouse"]), ("wave", s["wave"]), ("routing rule", s["routing_rule"]),
             ("milestone", s["milestone"]), ("sub-status", s["sub_status"]), ("stall level", s["stall_level"]),
             ("next step", s["next_step"]),
             ("weight", None if s["weight_g"] is None else f"{s['weight_g']} g (expected {s['expected_weight_g']} g"
              + (", out of tolerance)" if s["weight_flagged"] else ")")),
             ("handed over", s["handed_over_at"]), ("delivered", s["delivered_at"]),
             ("cancelled", s["cancel_reason"])]
    for label, value in facts:
        if value is not None:
            console.print(f"  {label:<13}: {value}")
    console.print(_table("Lines", ("#", "sku", "kind", "barcode", "quantity", "picked", "verified"),
                         [(ln["line_no"], ln["sku"], ln["kind"], ln["barcode"], ln["quantity"], ln["picked"],
                           ln["verified"]) for ln in s["lines"]], right=("quantity", "picked", "verified")))
    console.print(_table("Scans", ("scan", "step", "operator", "device", "barcode", "qty", "weight g", "flags",
                                   "occurred"),
                         [(c["scan_id"], c["step"], c["operator"], c["device_id"], c["barcode"], c["quantity"],
                           c["weight_g"], ", ".join(c["flags"]), c["occurred_at"]) for c in s["scans"]],
                         right=("qty", "weight g")))
    if s["refused_scans"]:
        console.print(_table("Refused scans", ("scan", "status", "code", "detail", "operator", "device", "received"),
                             [(r["scan_id"], r["status"], r["code"], r["detail"], r["operator"], r["device_id"],
                               r["received_at"]) for r in s["refused_scans"]]))
    console.print(_table("Carrier events", ("occurred", "code", "description", "location", "milestone",
                                            "sub_status", "outcome", "source"),
                         [(e["occurred_at"], e["code"], e["description"], e["location"], e["milestone"],
                           e["sub_status"], e["outcome"], e["source"]) for e in s["tracking"]]))


# --------------------------------------------------------------------------- devices and operators
@devices_app.command("list")
def devices_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Handhelds (last heartbeat and sync, refused items) and locked operator accounts."""
    with session("devices list") as hub:
        tenant_id, _ = resolve_tenant(hub, tenant)
        data = hub.queries.devices(tenant_id)
    if as_json:
        print_json(data)
        return
    if data["items"]:
        console.print(_table("Devices", ("device", "last operator", "app", "last heartbeat", "last sync", "refused"),
                             [(d["device_id"], d["last_operator"], d["app_version"], d["last_heartbeat_at"],
                               d["last_sync_at"], d["refused_items"]) for d in data["items"]], right=("refused",)))
    else:
        console.print("no device has reported yet")
    locked = data["locked_operators"]
    if locked:
        console.print(_table("Locked operators", ("operator", "locked", "devices", "reason"),
                             [(o["operator"], o["locked_at"], ", ".join(o["devices"]), o["reason"]) for o in locked]))
        console.print("unlock one with `orderhub operators unlock OPERATOR`")
    else:
        console.print("no operator account is locked")


@operators_app.command("unlock")
def operators_unlock(operator: str, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Give a locked warehouse account OPERATOR its write access back."""
    unlocked = _send("operators unlock", tenant, lambda tenant_id: commands.UnlockOperator(
        actor=cli_actor(tenant_id), operator=operator))
    if as_json:
        print_json({"operator": operator, "unlocked": bool(unlocked)})
    elif unlocked:
        console.print(f"unlocked operator [bold]{operator}[/]")
    else:
        console.print(f"operator {operator} was not locked; nothing changed")


# --------------------------------------------------------------------------- tracking
@tracking_app.command("unknown-codes")
def tracking_unknown_codes(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Carrier codes no table or override maps yet, with how many stored events carry each."""
    with session("tracking unknown-codes") as hub:
        tenant_id, _ = resolve_tenant(hub, tenant)
        rows = hub.queries.unknown_codes(tenant_id)
    if as_json:
        print_json({"items": rows})
        return
    if not rows:
        console.print("no unknown carrier codes")
        return
    console.print(_table("Unknown carrier codes", ("carrier", "code", "events", "first seen", "last seen"),
                         [(r["carrier"], r["code"], r["events"], r["first_seen_at"], r["last_seen_at"])
                          for r in rows], right=("events",)))
    console.print("map them with PUT /api/v1/rules/carrier_codes; the stored events are then applied")

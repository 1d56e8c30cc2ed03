"""The ``orderhub`` command line (Typer + Rich). Commands are thin: parse → command → bus."""

from __future__ import annotations

import sys
from typing import Annotated

import structlog
import typer
from rich.table import Table

from orderhub.adapters.db import migrate
from orderhub.bootstrap import bootstrap
from orderhub.config import Settings
from orderhub.domain import commands
from orderhub.domain.access import Role
from orderhub.entrypoints.cli.aftersale import aftersales_app, sandbox_command, tie_out_command, vouchers_command
from orderhub.entrypoints.cli.channels import channels_app, import_file, inbox_app, shops_app
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
from orderhub.entrypoints.cli.finance import finance_app
from orderhub.entrypoints.cli.fulfillment import (
    carriers_app,
    devices_app,
    operators_app,
    shipments_app,
    tracking_app,
)
from orderhub.entrypoints.cli.inventory import inventory_app, warehouses_app
from orderhub.entrypoints.cli.inventory_check import inventory_check
from orderhub.entrypoints.cli.polling import shops_backfill, shops_poll
from orderhub.service_layer.errors import ServiceError
from orderhub.service_layer.handlers.tenancy import IssuedKey

app = typer.Typer(help="OrderHub: one canonical order from every sales channel.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit chain.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Outgoing webhook subscriptions.", no_args_is_help=True)
outbox_app = typer.Typer(help="Outgoing messages waiting, delivered or dead-lettered.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(db_app, name="db")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(outbox_app, name="outbox")
app.add_typer(shops_app, name="shops")
shops_app.command("poll")(shops_poll)
shops_app.command("backfill")(shops_backfill)
app.add_typer(channels_app, name="channels")
app.add_typer(inbox_app, name="inbox")
app.add_typer(warehouses_app, name="warehouses")
app.add_typer(inventory_app, name="inventory")
inventory_app.command("check")(inventory_check)
app.add_typer(carriers_app, name="carriers")
app.add_typer(shipments_app, name="shipments")
app.add_typer(devices_app, name="devices")
app.add_typer(operators_app, name="operators")
app.add_typer(tracking_app, name="tracking")
app.add_typer(aftersales_app, name="aftersales")
finance_app.command("vouchers")(vouchers_command)
finance_app.command("tie-out")(tie_out_command)
app.add_typer(finance_app, name="finance")
app.command("sandbox")(sandbox_command)
app.command("import")(import_file)

def _show_key(issued: IssuedKey, as_json: bool, *, heading: str) -> None:
    if as_json:
        print_json({"tenant": issued.tenant, "tenant_id": issued.tenant_id, "api_key": issued.api_key,
                     "key_id": issued.key_id, "role": issued.role.value})
        return
    console.print(f"[bold green]{heading}[/]")
    console.print(f"  tenant : {issued.tenant} ({issued.tenant_id})")
    console.print(f"  role   : {issued.role.value}")
    console.print(f"  api key: [bold]{issued.api_key}[/]")
    console.print("  [yellow]This key is shown once; OrderHub stores only its hash.[/]")


@app.command()
def init(tenant: Annotated[str, typer.Option(help="Tenant name.")] = "default", as_json: JsonOpt = False) -> None:
    """Create or upgrade the database, create a tenant and print an admin API key (once)."""
    hub = open_hub(upgrade=True)
    try:
        issued: IssuedKey = hub.bus.handle(commands.CreateTenant(tenant))
    except ServiceError as exc:
        fail(exc.message)
        return
    finally:
        hub.close()
    heading = "Tenant created." if issued.tenant_created else "Tenant exists; issued a new admin key."
    _show_key(issued, as_json, heading=heading)


@keys_app.command("create")
def keys_create(role: Annotated[str, typer.Option(help="admin, operator, warehouse, finance or viewer.")],
                tenant: TenantOpt = None, label: Annotated[str | None, typer.Option(help="A note.")] = None,
                as_json: JsonOpt = False) -> None:
    """Issue an API key with ROLE; the key is printed once."""
    if role not in {r.value for r in Role}:
        fail(f"unknown role {role!r}; expected one of: " + ", ".join(r.value for r in Role))
    hub = open_hub()
    try:
        _, name = resolve_tenant(hub, tenant)
        issued: IssuedKey = hub.bus.handle(commands.CreateApiKey(tenant=name, role=role, label=label))
    except ServiceError as exc:
        fail(exc.message)
        return
    finally:
        hub.close()
    _show_key(issued, as_json, heading="API key created.")


@audit_app.command("verify")
def audit_verify(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Recompute every tenant's hash chain; exit 1 naming the first broken entry."""
    hub = open_hub()
    try:
        ids = [resolve_tenant(hub, tenant)[0]] if tenant else None
        names = {t.id: t.name for t in hub.queries.tenants()}
        results = list(hub.queries.verify_audit(ids))
    finally:
        hub.close()
    broken = [(t, n, b) for t, n, b in results if b is not None]
    if as_json:
        print_json({"ok": not broken, "tenants": [
            {"tenant": names.get(t, t), "tenant_id": t, "entries": n,
             "break": None if b is None else {"seq": b.seq, "entry_id": b.entry_id, "reason": b.reason}}
            for t, n, b in results]})
    else:
        table = Table(title="Audit chain")
        for col in ("tenant", "entries", "result"):
            table.add_column(col)
        for t, n, b in results:
            result = "[green]intact[/]" if b is None else f"[red]BROKEN at #{b.seq}[/]"
            table.add_row(names.get(t, t), str(n), result)
        console.print(table)
        for t, _, b in broken:
            assert b is not None
            entry = f" ({b.entry_id})" if b.entry_id else ""
            err.print(f"[bold red]tenant {names.get(t, t)}: entry #{b.seq}{entry}: {b.reason}[/]")
    if broken:
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations."""
    settings = Settings.from_env()
    hub = bootstrap(settings, upgrade_db=True)
    try:
        console.print(f"database at revision [bold]{migrate.current_revision(hub.engine)}[/] "
                      f"({hub.engine.dialect.name})")
    finally:
        hub.close()


@app.command()
def serve(host: Annotated[str | None, typer.Option(help="Bind address (ORDERHUB_HOST).")] = None,
          port: Annotated[int | None, typer.Option(help="Port (ORDERHUB_PORT).")] = None,
          no_workers: Annotated[bool, typer.Option("--no-workers", help="API only.")] = False) -> None:
    """Serve the API, channel webhooks, dashboard and docs, with the workers in the same process."""
    # Imported here: uvicorn and FastAPI cost ~1 s, which every other command would pay.
    from orderhub.entrypoints.cli.server import RunningServer  # noqa: PLC0415
    hub = open_hub(upgrade=True)
    settings = hub.settings
    server = RunningServer(hub, host=host or settings.host, port=port or settings.port, workers=not no_workers)
    server.start()
    console.print(f"OrderHub on [bold]{server.url}[/] — docs at {server.url}/docs "
                  f"({hub.engine.dialect.name}{', workers on' if not no_workers else ''})")
    server.wait()
    hub.close()


@app.command()
def worker() -> None:
    """Run the workers only (inbox normalizer, outbox relay, channel pollers); any number may run on PostgreSQL."""
    from orderhub.workers.runner import build_runner  # noqa: PLC0415 - see serve()
    hub = open_hub(upgrade=True)
    console.print(f"OrderHub workers on {hub.engine.dialect.name}; Ctrl-C to stop")
    try:
        build_runner(hub).run_forever()
    finally:
        hub.close()


@webhooks_app.command("add")
def webhooks_add(url: str, secret: Annotated[str, typer.Option(help="Signing secret (16+ chars).")],
                 events: Annotated[list[str] | None, typer.Option("--event", help="Topic; repeatable.")] = None,
                 tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Subscribe URL to the tenant's events (signed with SECRET)."""
    hub = open_hub()
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        actor = commands.Actor(tenant_id=tenant_id, actor="cli", source="cli")
        endpoint = hub.bus.handle(commands.RegisterWebhookEndpoint(actor=actor, url=url, secret=secret,
                                                                   events=tuple(events or ["*"])))
    except ServiceError as exc:
        fail(exc.message)
        return
    finally:
        hub.close()
    if as_json:
        print_json({"id": endpoint.id, "url": endpoint.url, "events": list(endpoint.events)})
    else:
        console.print(f"subscribed [bold]{endpoint.url}[/] to {', '.join(endpoint.events)} ({endpoint.id})")


@outbox_app.command("status")
def outbox_status(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Count outgoing messages by status."""
    hub = open_hub()
    try:
        tenant_id = resolve_tenant(hub, tenant)[0] if tenant else None
        counts = hub.queries.outbox_counts(tenant_id)
    finally:
        hub.close()
    if as_json:
        print_json(counts)
        return
    table = Table(title="Outbox")
    table.add_column("status")
    table.add_column("messages", justify="right")
    for status in ("pending", "in_progress", "done", "dead"):
        table.add_row(status, str(counts.get(status, 0)))
    console.print(table)


@outbox_app.command("retry-dead")
def outbox_retry_dead(tenant: TenantOpt = None) -> None:
    """Send dead-lettered messages again from the first attempt."""
    hub = open_hub()
    try:
        tenant_id, name = resolve_tenant(hub, tenant)
        count = hub.bus.handle(commands.RequeueDeadMessages(actor=commands.Actor(tenant_id, "cli", "cli")))
    finally:
        hub.close()
    console.print(f"requeued {count} dead message(s) of tenant {name}")


@app.command()
def demo(orders: Annotated[int, typer.Option(help="How many orders to seed.")] = 300,
         host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
         port: Annotated[int | None, typer.Option(help="Port.")] = None,
         serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Keep serving after seeding.")] = True,
         as_json: JsonOpt = False) -> None:
    """Run a demo tenant fed by signed webhooks from eight sales channels in their own formats, then keep serving it."""
    from orderhub.entrypoints.cli.demo import run_demo  # noqa: PLC0415 - see serve()
    run_demo(console, orders=orders, host=host, port=port, serve_after=serve_after, as_json=as_json)


def main() -> None:
    """Console-script entry point."""
    # Logs go to stderr: stdout is for data (`--json` prints exactly one JSON document).
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    app()

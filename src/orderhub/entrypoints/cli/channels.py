"""CLI commands of the channel gateway: ``shops``, ``channels``, ``inbox`` and ``import``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orderhub.domain import commands
from orderhub.domain.errors import DomainError
from orderhub.entrypoints.cli.context import (
    JsonOpt,
    TenantOpt,
    cli_actor,
    console,
    err,
    fail,
    open_hub,
    print_json,
    resolve_tenant,
)
from orderhub.service_layer.errors import ServiceError

shops_app = typer.Typer(help="Shops on sales channels.", no_args_is_help=True)
channels_app = typer.Typer(help="Channel health and circuit breakers.", no_args_is_help=True)
inbox_app = typer.Typer(help="Received channel messages.", no_args_is_help=True)


def _settings_from(api_base_url: str | None, app_key: str | None, access_token: str | None,
                   poll_interval: int | None) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if api_base_url:
        settings["api_base_url"] = api_base_url
    if app_key:
        settings["app_key"] = app_key
    if access_token:
        settings["access_token"] = access_token
    if poll_interval:
        settings["poll"] = {"enabled": True, "interval_seconds": poll_interval}
    return settings


@shops_app.command("add")
def shops_add(code: str, channel: Annotated[str, typer.Option(help="Channel, e.g. shopify, taobao, douyin.")],
              secret: Annotated[str, typer.Option(help="The secret the channel signs pushes with (8+ chars).")],
              name: Annotated[str | None, typer.Option(help="Display name (default: the code).")] = None,
              timezone: Annotated[str | None, typer.Option(help="IANA zone for times without offset.")] = None,
              api_base_url: Annotated[str | None, typer.Option(help="Channel API base URL (polling).")] = None,
              app_key: Annotated[str | None, typer.Option(help="App key (TikTok signs with it).")] = None,
              access_token: Annotated[str | None, typer.Option(help="Channel API access token.")] = None,
              poll_interval: Annotated[int | None, typer.Option(help="Poll every N seconds.")] = None,
              tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Register shop CODE on a channel; prints the webhook path to give the channel."""
    hub = open_hub()
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        shop = hub.bus.handle(commands.RegisterShop(
            actor=cli_actor(tenant_id), code=code, channel=channel, name=name or code, secret=secret,
            timezone=timezone, settings=_settings_from(api_base_url, app_key, access_token, poll_interval)))
    except (ServiceError, DomainError) as exc:
        fail(exc.message)
        return
    finally:
        hub.close()
    path = f"/webhooks/{shop.channel}/{shop.code}"
    if as_json:
        print_json({"id": shop.id, "code": shop.code, "channel": shop.channel, "webhook_path": path})
    else:
        console.print(f"registered {shop.channel} shop [bold]{shop.code}[/] ({shop.id}); point its pushes at "
                      f"[bold]{path}[/]")


@shops_app.command("list")
def shops_list(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The tenant's shops."""
    hub = open_hub()
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        shops = hub.queries.shops(tenant_id)
    finally:
        hub.close()
    if as_json:
        print_json([{"id": s.id, "code": s.code, "channel": s.channel, "name": s.name, "timezone": s.timezone,
                     "webhook_path": f"/webhooks/{s.channel}/{s.code}"} for s in shops])
        return
    table = Table(title="Shops")
    for col in ("channel", "code", "name", "timezone", "webhook path"):
        table.add_column(col)
    for s in shops:
        table.add_row(s.channel, s.code, s.name, s.timezone or "-", f"/webhooks/{s.channel}/{s.code}")
    console.print(table)


@channels_app.command("health")
def channels_health(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Per channel: received, mapped, failed, failure rate, top failing fields; flags > 0.8%."""
    hub = open_hub()
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        health = hub.queries.channel_health(tenant_id)
    finally:
        hub.close()
    if as_json:
        print_json(health)
        return
    table = Table(title=f"Channel health (flag above {health['threshold']:.1%} failures)")
    for col in ("channel", "received", "mapped", "failed", "rejected", "parked", "pending", "failure rate",
                "top failing fields", "breaker"):
        table.add_column(col, justify="right" if col in ("received", "mapped", "failed", "rejected", "parked",
                                                         "pending", "failure rate") else "left")
    for c in health["channels"]:
        rate = f"{c['failure_rate']:.2%}"
        fields = ", ".join(f"{f['field']} ({f['count']})" for f in c["top_failing_fields"]) or "-"
        state = c["breaker"]["state"]
        breaker = state if state == "closed" else f"[red]OPEN[/] {c['breaker']['reason']}"
        table.add_row(c["channel"], str(c["received"]), str(c["mapped"]), str(c["failed"]), str(c["rejected"]),
                      str(c["parked"]), str(c["pending"]), f"[red]{rate} FLAGGED[/]" if c["flagged"] else rate,
                      fields, breaker)
    console.print(table)
    if any(c["flagged"] for c in health["channels"]):
        err.print("[yellow]flagged channels: fix their mapping (docs/channels.md), then run "
                  "`orderhub inbox replay --failed`[/]")


@channels_app.command("resume")
def channels_resume(channel: str, tenant: TenantOpt = None) -> None:
    """Close CHANNEL's circuit breaker and process its parked messages."""
    hub = open_hub()
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        count = hub.bus.handle(commands.ResumeChannel(actor=cli_actor(tenant_id), channel=channel))
    except (ServiceError, DomainError) as exc:
        fail(exc.message)
        return
    finally:
        hub.close()
    console.print(f"{channel} resumed; {count} parked message(s) requeued")


@inbox_app.command("replay")
def inbox_replay(failed: Annotated[bool, typer.Option("--failed", help="Dead-lettered (mapping failed).")] = False,
                 parked: Annotated[bool, typer.Option("--parked", help="Parked by a circuit breaker.")] = False,
                 channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
                 tenant: TenantOpt = None) -> None:
    """Send dead-lettered (--failed) and/or parked messages through the normalizer again."""
    states = tuple(s for s, on in (("dead", failed), ("parked", parked)) if on)
    if not states:
        fail("say what to replay: --failed and/or --parked")
    hub = open_hub()
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        count = hub.bus.handle(commands.ReplayInbox(actor=cli_actor(tenant_id), statuses=states, channel=channel))
    except (ServiceError, DomainError) as exc:
        fail(exc.message)
        return
    finally:
        hub.close()
    console.print(f"requeued {count} message(s); running workers (`orderhub serve` / `orderhub worker`) process "
                  "them now")


@inbox_app.command("list")
def inbox_list(status: Annotated[str | None, typer.Option(help="pending, applied, dead, parked…")] = None,
               channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
               limit: Annotated[int, typer.Option(help="How many (newest first).")] = 50,
               tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """The newest inbox messages with their state and error."""
    hub = open_hub()
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        items = hub.queries.inbox_messages(tenant_id, status=status, channel=channel, limit=limit)
    finally:
        hub.close()
    if as_json:
        print_json(items)
        return
    table = Table(title="Inbox")
    for col in ("id", "channel", "shop", "source", "external id", "status", "outcome / error"):
        table.add_column(col)
    for m in items:
        error = m["error"]
        detail = f"{error['field']}: {error['detail']}" if error else (m["outcome"] or "")
        table.add_row(m["id"], m["channel"], m["shop"], m["source"], m["external_id"], m["status"], detail)
    console.print(table)


def import_file(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
                channel: Annotated[str | None, typer.Option(help="Channel of every row (JSONL native payloads).")]
                = None,
                shop: Annotated[str | None, typer.Option(help="Shop code of every row.")] = None,
                fmt: Annotated[str | None, typer.Option("--format", help="csv or jsonl (default: extension).")]
                = None,
                dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would change; write nothing.")]
                = False,
                tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Import orders from a CSV or JSONL file through the inbox (deduplicated like webhooks)."""
    from orderhub.adapters.channels.import_files import read_import_file  # noqa: PLC0415 - keeps --help fast
    from orderhub.service_layer.importing import Importer  # noqa: PLC0415
    from orderhub.service_layer.normalizer import Normalizer  # noqa: PLC0415

    try:
        items = read_import_file(file, fmt=fmt, channel=channel, shop=shop)
    except (ValueError, UnicodeDecodeError) as exc:
        fail(f"{file}: {exc}")
        return
    hub = open_hub()
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        normalizer = Normalizer(hub.uow_factory, specs=hub.specs, clock=hub.clock, metrics=hub.metrics,
                                refund_policies=hub.refund_policies, worker_id="cli:import")
        importer = Importer(bus=hub.bus, specs=hub.specs, uow_factory=hub.uow_factory, normalizer=normalizer,
                            tenant_id=tenant_id)
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, disable=as_json) as progress:
            task = progress.add_task("dry run" if dry_run else "importing", total=len(items))
            report = importer.run(items, dry_run=dry_run, progress=lambda n: progress.advance(task, n))
    finally:
        hub.close()
    if as_json:
        print_json(report.as_dict())
    else:
        verb = "would be" if dry_run else "were"
        table = Table(title=f"Import of {file.name}{' (dry run: nothing written)' if dry_run else ''}")
        table.add_column("result")
        table.add_column("messages", justify="right")
        for label, n in (("created", report.created), ("updated", report.updated), ("duplicate", report.duplicate),
                         ("held by filters", report.held), ("ignored", report.ignored),
                         ("rejected", len(report.rejected))):
            table.add_row(label, str(n))
        console.print(table)
        for line, reason in report.rejected[:50]:
            err.print(f"  line {line}: {reason}")
        if len(report.rejected) > 50:
            err.print(f"  … and {len(report.rejected) - 50} more (use --json for all)")
        console.print(f"{report.created} order(s) {verb} created, {report.duplicate} duplicate(s), "
                      f"{len(report.rejected)} rejected")
    if report.rejected:
        raise typer.Exit(1)


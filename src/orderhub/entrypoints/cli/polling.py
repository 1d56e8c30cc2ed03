"""``orderhub shops poll`` and ``orderhub shops backfill``: pull a shop's orders now.

Registered on the ``shops`` sub-command by ``cli/app.py``. Both run the same poller the
workers run (:class:`~orderhub.workers.pollers.ChannelPoller`), so orders land in the
inbox through the same dedup key as webhooks and scheduled polls.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from orderhub.adapters.channels.poll_config import PollConfigError
from orderhub.bootstrap import OrderHub
from orderhub.domain.errors import InvalidTime
from orderhub.domain.time import ensure_utc
from orderhub.entrypoints.cli.context import (
    JsonOpt,
    TenantOpt,
    console,
    fail,
    open_hub,
    print_json,
    resolve_tenant,
)
from orderhub.workers.pollers import ChannelPoller, PassResult, ShopNotPollable

ChannelOpt = Annotated[str | None, typer.Option(help="The shop's channel, when several channels use this code.")]


def _poller(hub: OrderHub) -> ChannelPoller:
    return ChannelPoller(hub.engine, hub.clock, hub.bus, hub.specs, name="pollers-cli")


def _parse_time(text: str, option: str) -> datetime:
    try:
        return ensure_utc(datetime.fromisoformat(text), field=option)
    except ValueError as exc:
        fail(f"{option}: expected an ISO 8601 time such as 2026-11-01T00:00:00+08:00, got {text!r}")
        raise AssertionError("unreachable") from exc
    except InvalidTime as exc:
        fail(exc.message)
        raise


def _report(result: PassResult, as_json: bool) -> None:
    if as_json:
        print_json(result.as_dict())
    else:
        console.print(f"{result.source} [bold]{result.channel}/{result.shop}[/]: {result.pages} pages, "
                      f"{result.items} orders — [green]{result.accepted} new[/], {result.duplicates} duplicate, "
                      f"{result.rejected} rejected")
        if result.updated_until is not None and result.source == "poll":
            console.print(f"  cursor: updated until {result.updated_until.isoformat()}")
        if result.error:
            console.print(f"  [bold red]stopped:[/] {result.error}")
    if result.error:
        raise typer.Exit(1)


def shops_poll(code: str, channel: ChannelOpt = None, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Poll shop CODE's channel once now, whether or not it is due; the cursor moves as usual."""
    hub = open_hub()
    poller = _poller(hub)
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        result = poller.poll_now(code, tenant_id=tenant_id, channel=channel)
    except (ShopNotPollable, PollConfigError) as exc:
        fail(str(exc))
        return
    finally:
        poller.close()
        hub.close()
    _report(result, as_json)


def shops_backfill(code: str,
                   since: Annotated[str, typer.Option(help="Start (inclusive), ISO 8601 with an offset.")],
                   until: Annotated[str, typer.Option(help="End (exclusive), ISO 8601 with an offset.")],
                   channel: ChannelOpt = None, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
    """Re-pull shop CODE's orders updated in [--since, --until) through the inbox dedup.

    Orders already received (by webhook, poll or an earlier backfill) are reported as
    duplicates and change nothing; the poll cursor is not moved.
    """
    start, end = _parse_time(since, "--since"), _parse_time(until, "--until")
    if end <= start:
        fail("--until must be after --since")
    hub = open_hub()
    poller = _poller(hub)
    try:
        tenant_id, _ = resolve_tenant(hub, tenant)
        with Progress(TextColumn("[bold]backfill[/] {task.description}"), BarColumn(), TaskProgressColumn(),
                      TextColumn("{task.fields[orders]} orders"), TimeElapsedColumn(),
                      console=console, disable=as_json, transient=False) as progress:
            task = progress.add_task(code, total=1.0, orders=0)

            def advance(fraction: float, partial: PassResult) -> None:
                progress.update(task, completed=fraction, orders=partial.items)

            result = poller.backfill(code, start, end, tenant_id=tenant_id, channel=channel, progress=advance)
    except (ShopNotPollable, PollConfigError, ValueError) as exc:
        fail(str(exc))
        return
    finally:
        poller.close()
        hub.close()
    _report(result, as_json)

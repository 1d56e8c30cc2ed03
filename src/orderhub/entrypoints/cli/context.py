"""What every CLI command needs: the wired hub, tenant resolution, output and failure."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from orderhub.adapters.db import migrate
from orderhub.bootstrap import OrderHub, bootstrap
from orderhub.config import Settings
from orderhub.domain.commands import Actor
from orderhub.domain.errors import DomainError
from orderhub.service_layer.errors import ServiceError

console = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
TenantOpt = Annotated[str | None, typer.Option("--tenant", help="Tenant name (default: the only tenant).")]


def open_hub(*, upgrade: bool = False) -> OrderHub:
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        fail(str(exc))
        raise
    hub = bootstrap(settings, upgrade_db=upgrade)
    if not upgrade:
        current = migrate.current_revision(hub.engine)
        if current is None:
            hub.close()
            fail(f"no OrderHub database at {hub.settings.database_url}; run `orderhub init` first "
                  "(or set ORDERHUB_HOME / ORDERHUB_DATABASE_URL)")
        elif current != migrate.head_revision(hub.engine):
            hub.close()
            fail("the database schema is behind this version of OrderHub; run `orderhub db upgrade`")
    return hub


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


def resolve_tenant(hub: OrderHub, name: str | None) -> tuple[str, str]:
    if name is not None:
        tenant = hub.queries.tenant_by_name(name)
        if tenant is None:
            fail(f"no tenant named {name!r}; create it with `orderhub init --tenant {name}`")
        assert tenant is not None
        return tenant.id, tenant.name
    tenants = hub.queries.tenants()
    if not tenants:
        fail("no tenant yet; run `orderhub init` first")
    if len(tenants) > 1:
        fail("several tenants exist (" + ", ".join(t.name for t in tenants) + "); pass --tenant NAME")
    return tenants[0].id, tenants[0].name


def cli_actor(tenant_id: str) -> Actor:
    """The actor recorded for CLI commands."""
    return Actor(tenant_id=tenant_id, actor="cli", source="cli")


@contextmanager
def session(name: str) -> Iterator[OrderHub]:
    """The hub for one command; refusals (service or domain errors) become a one-line
    ``NAME: message`` error with exit code 2."""
    hub = open_hub()
    try:
        yield hub
    except (ServiceError, DomainError) as exc:
        fail(f"{name}: {exc.message}")
    finally:
        hub.close()

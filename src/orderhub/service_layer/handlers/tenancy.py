"""Command handlers for tenants, API keys and webhook subscriptions."""

from __future__ import annotations

from dataclasses import dataclass

from orderhub.adapters.db.outbox import WebhookEndpoint
from orderhub.adapters.webhook_targets import WebhookTargetGuard
from orderhub.domain.access import Role
from orderhub.domain.commands import Actor, CreateApiKey, CreateTenant, RegisterWebhookEndpoint
from orderhub.domain.events import ApiKeyIssued, TenantCreated, WebhookEndpointRegistered
from orderhub.service_layer.errors import InvalidInput, TenantNotFound
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly issued API key. ``api_key`` is the only copy of the secret: show it once."""

    tenant_id: str
    tenant: str
    key_id: str
    role: Role
    api_key: str
    tenant_created: bool = False


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError as exc:
        names = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role {value!r}; expected one of: {names}", field="role") from exc


def create_tenant(cmd: CreateTenant, uow: SqlAlchemyUnitOfWork) -> IssuedKey:
    """Create the tenant named ``cmd.name`` if needed and issue an admin key for it."""
    name = cmd.name.strip()
    if not name:
        raise InvalidInput("tenant name must not be empty", field="tenant")
    with uow:
        now = uow.clock.now()
        tenant = uow.tenants.by_name(name)
        created = tenant is None
        if tenant is None:
            tenant = uow.tenants.add(name, now=now)
            uow.record(TenantCreated(tenant_id=tenant.id, name=name, occurred_at=now))
        uow.act_as(Actor(tenant_id=tenant.id, actor="cli", source="cli"))
        key_id, plain = uow.tenants.issue_key(tenant.id, Role.ADMIN, now=now, label="init")
        uow.record(ApiKeyIssued(tenant_id=tenant.id, key_id=key_id, role=Role.ADMIN.value, label="init",
                                occurred_at=now))
        uow.commit()
    return IssuedKey(tenant.id, tenant.name, key_id, Role.ADMIN, plain, tenant_created=created)


def create_api_key(cmd: CreateApiKey, uow: SqlAlchemyUnitOfWork) -> IssuedKey:
    """Issue a key with ``cmd.role`` for an existing tenant."""
    role = _role(cmd.role)
    with uow:
        tenant = uow.tenants.by_name(cmd.tenant)
        if tenant is None:
            raise TenantNotFound(f"no tenant named {cmd.tenant!r}; create it with `orderhub init --tenant NAME`",
                                 field="tenant")
        now = uow.clock.now()
        uow.act_as(Actor(tenant_id=tenant.id, actor="cli", source="cli"))
        key_id, plain = uow.tenants.issue_key(tenant.id, role, now=now, label=cmd.label)
        uow.record(ApiKeyIssued(tenant_id=tenant.id, key_id=key_id, role=role.value, label=cmd.label,
                                occurred_at=now))
        uow.commit()
    return IssuedKey(tenant.id, tenant.name, key_id, role, plain)


def register_webhook_endpoint(cmd: RegisterWebhookEndpoint, uow: SqlAlchemyUnitOfWork,
                              guard: WebhookTargetGuard) -> WebhookEndpoint:
    """Subscribe an http(s) URL to the tenant's events, if ``guard`` lets it be called."""
    problem = guard.problem(cmd.url)
    if problem is not None:
        raise InvalidInput(f"url: {problem}", field="url")
    if len(cmd.secret) < 16:
        raise InvalidInput("secret: use at least 16 characters; it signs every delivery", field="secret")
    with uow:
        uow.act_as(cmd.actor)
        now = uow.clock.now()
        endpoint = uow.outbox.add_endpoint(cmd.actor.tenant_id, cmd.url, cmd.secret, cmd.events, now=now)
        uow.record(WebhookEndpointRegistered(tenant_id=cmd.actor.tenant_id, endpoint_id=endpoint.id,
                                             url=cmd.url, events=cmd.events, occurred_at=now))
        uow.commit()
    return endpoint

"""Request dependencies: the wired OrderHub, the authenticated principal, role checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from orderhub.bootstrap import OrderHub
from orderhub.domain.access import Permission, Role, allows
from orderhub.domain.commands import Actor
from orderhub.service_layer.errors import InvalidApiKey, PermissionDenied


def get_hub(request: Request) -> OrderHub:
    """The OrderHub the app was created with."""
    hub: OrderHub = request.app.state.hub
    return hub


Hub = Annotated[OrderHub, Depends(get_hub)]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as proven by its API key."""

    tenant_id: str
    key_id: str
    role: Role
    trace_id: str | None

    def actor(self) -> Actor:
        """The audit actor for commands issued by this caller."""
        return Actor(tenant_id=self.tenant_id, actor=f"key:{self.key_id}", source="api", trace_id=self.trace_id,
                     role=self.role)


def authenticate(request: Request, hub: Hub) -> Principal:
    """Resolve ``Authorization: Bearer <key>`` to a principal; 401 otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidApiKey("missing API key: send `Authorization: Bearer <api key>` (create one with "
                            "`orderhub keys create --role ROLE`)")
    record = hub.queries.authenticate(token.strip())
    if record is None or record.revoked:
        raise InvalidApiKey("unknown or revoked API key")
    return Principal(record.tenant_id, record.id, record.role, getattr(request.state, "trace_id", None))


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency that authenticates and checks that the caller's role has ``permission``."""

    def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not allows(principal.role, permission):
            raise PermissionDenied(f"role {principal.role.value!r} lacks permission {permission.value!r}; "
                                   "use a key with a role that has it (e.g. operator or admin)")
        return principal

    return check


CanReadOrders = Annotated[Principal, Depends(require(Permission.ORDERS_READ))]
CanWriteOrders = Annotated[Principal, Depends(require(Permission.ORDERS_WRITE))]
CanManageWebhooks = Annotated[Principal, Depends(require(Permission.WEBHOOKS_MANAGE))]
CanManageShops = Annotated[Principal, Depends(require(Permission.SHOPS_MANAGE))]
CanOperateChannels = Annotated[Principal, Depends(require(Permission.CHANNELS_OPERATE))]

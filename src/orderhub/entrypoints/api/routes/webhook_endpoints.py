"""Outgoing webhook subscriptions: where OrderHub delivers the tenant's events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from orderhub.adapters.db.outbox import WebhookEndpoint
from orderhub.domain import commands
from orderhub.domain.time import isoformat
from orderhub.entrypoints.api.deps import CanManageWebhooks, Hub
from orderhub.entrypoints.api.schemas import WebhookEndpointIn, WebhookEndpointOut

router = APIRouter(prefix="/api/v1/webhook-endpoints", tags=["webhooks"])


def _out(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {"id": endpoint.id, "url": endpoint.url, "events": list(endpoint.events), "active": endpoint.active,
            "created_at": isoformat(endpoint.created_at)}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookEndpointOut)
def register(body: WebhookEndpointIn, principal: CanManageWebhooks, hub: Hub) -> dict[str, Any]:
    """Subscribe an http(s) endpoint; deliveries are signed with ``secret`` (HMAC-SHA256)."""
    endpoint = hub.bus.handle(commands.RegisterWebhookEndpoint(actor=principal.actor(), url=body.url,
                                                               secret=body.secret, events=tuple(body.events)))
    return _out(endpoint)


@router.get("", response_model=list[WebhookEndpointOut])
def list_endpoints(principal: CanManageWebhooks, hub: Hub) -> list[dict[str, Any]]:
    """The tenant's subscriptions."""
    return [_out(e) for e in hub.queries.webhook_endpoints(principal.tenant_id)]

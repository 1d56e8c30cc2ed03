"""Channel health, the inbox and the channel circuit breaker."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from orderhub.domain import commands
from orderhub.entrypoints.api.deps import CanOperateChannels, CanReadOrders, Hub
from orderhub.service_layer.errors import InboxMessageNotFound

router = APIRouter(prefix="/api/v1", tags=["channels"])


@router.get("/channels/health")
def channel_health(principal: CanReadOrders, hub: Hub) -> dict[str, Any]:
    """Per channel: received, mapped, failed, failure rate, top failing fields, breaker state;
    channels over the failure threshold (0.8%) are ``flagged``."""
    return hub.queries.channel_health(principal.tenant_id)


@router.post("/channels/{channel}/resume")
def resume(channel: str, principal: CanOperateChannels, hub: Hub) -> dict[str, Any]:
    """Close the channel's breaker; its parked messages are processed again."""
    requeued = hub.bus.handle(commands.ResumeChannel(actor=principal.actor(), channel=channel))
    return {"channel": channel, "breaker": "closed", "requeued": requeued}


@router.post("/inbox/replay")
def replay(principal: CanOperateChannels, hub: Hub,
           status: Annotated[list[str] | None, Query(description="dead (default) and/or parked")] = None,
           channel: str | None = None) -> dict[str, Any]:
    """Send dead-lettered (or parked) messages through the normalizer again."""
    states = tuple(status or ["dead"])
    count = hub.bus.handle(commands.ReplayInbox(actor=principal.actor(), statuses=states, channel=channel))
    return {"requeued": count, "statuses": list(states), "channel": channel}


@router.get("/inbox/{message_id}")
def inbox_message(message_id: str, principal: CanReadOrders, hub: Hub) -> dict[str, Any]:
    """One inbox message with its raw payload, state and error (field path and reason)."""
    message = hub.queries.inbox_message(principal.tenant_id, message_id)
    if message is None:
        raise InboxMessageNotFound(f"no inbox message {message_id!r}")
    return message


@router.get("/alerts")
def list_alerts(principal: CanReadOrders, hub: Hub, open_only: bool = True) -> dict[str, Any]:
    """The tenant's alerts, newest first (open ones only by default)."""
    return {"items": hub.queries.alerts(principal.tenant_id, open_only=open_only)}

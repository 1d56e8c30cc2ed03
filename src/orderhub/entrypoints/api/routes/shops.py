"""Shops: a merchant's storefronts on the sales channels."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from orderhub.domain import commands
from orderhub.domain.channels.shop import Shop
from orderhub.domain.time import isoformat
from orderhub.entrypoints.api.deps import CanManageShops, CanReadOrders, Hub
from orderhub.entrypoints.api.schemas import ShopIn, ShopOut

router = APIRouter(prefix="/api/v1/shops", tags=["shops"])


def shop_out(shop: Shop) -> dict[str, Any]:
    """The public view of a shop (never its secret or tokens)."""
    return {"id": shop.id, "code": shop.code, "channel": shop.channel, "name": shop.name,
            "timezone": shop.timezone, "active": shop.active,
            "webhook_path": f"/webhooks/{shop.channel}/{shop.code}",
            "created_at": isoformat(shop.created_at) if shop.created_at else None}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ShopOut)
def register(body: ShopIn, principal: CanManageShops, hub: Hub) -> dict[str, Any]:
    """Register a shop; point the channel's push at ``webhook_path``, signed with ``secret``."""
    shop = hub.bus.handle(commands.RegisterShop(
        actor=principal.actor(), code=body.code, channel=body.channel, name=body.name, secret=body.secret,
        timezone=body.timezone, settings=dict(body.settings)))
    return shop_out(shop)


@router.get("", response_model=list[ShopOut])
def list_shops(principal: CanReadOrders, hub: Hub) -> list[dict[str, Any]]:
    """The tenant's shops."""
    return [shop_out(s) for s in hub.queries.shops(principal.tenant_id)]

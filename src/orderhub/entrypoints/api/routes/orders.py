"""Order routes: thin — parse, build a command, hand it to the bus, render the result."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response, status

from orderhub.domain import commands
from orderhub.domain.audit import canonical_json
from orderhub.domain.orders.states import OrderStatus
from orderhub.entrypoints.api.deps import CanReadOrders, CanWriteOrders, Hub
from orderhub.entrypoints.api.schemas import Clean, OrderEventIn, OrderEventOut, OrderIn, OrderOut, OrderPage, Timeline
from orderhub.service_layer.queries import OrderFilter

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=150,
                                              pattern=r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$",
                                              description="retry-safe key (printable ASCII, 1–150 chars): "
                                                          "same key + same body = same order")]
OrderId = Annotated[str, Path(max_length=100), Clean]


def _request_hash(body: OrderIn) -> str:
    return hashlib.sha256(canonical_json(body.model_dump(mode="json")).encode()).hexdigest()


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderOut,
             responses={200: {"model": OrderOut, "description": "repeated Idempotency-Key with the same body"}})
def create_order(body: OrderIn, principal: CanWriteOrders, hub: Hub, response: Response,
                 idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """Create a canonical order. Honours ``Idempotency-Key``."""
    cmd = commands.CreateOrder(
        actor=principal.actor(), channel=body.channel, shop=body.shop, external_id=body.external_id,
        currency=body.currency, status=body.status.value, placed_at=body.placed_at, paid_at=body.paid_at,
        lines=tuple(commands.LineInput(sku=ln.sku, title=ln.title, quantity=ln.quantity, unit_price=ln.unit_price,
                                       discount=ln.discount, tax=ln.tax) for ln in body.lines),
        buyer=body.buyer.model_dump(), shipping_address=body.shipping_address.model_dump()
        if body.shipping_address else None, shipping_fee=body.shipping_fee, discount=body.discount,
        tags=tuple(body.tags), idempotency_key=idempotency_key,
        request_hash=_request_hash(body) if idempotency_key else None)
    result = hub.bus.handle(cmd)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/orders/{result.order_id}"
    return hub.queries.get_order(principal.tenant_id, result.order_id)


@router.get("", response_model=OrderPage)
def list_orders(*, principal: CanReadOrders, hub: Hub,
                status_: Annotated[OrderStatus | None, Query(alias="status")] = None,
                q: Annotated[str | None, Query(max_length=200, description="search ids, buyer, SKU"), Clean] = None,
                channel_: Annotated[str | None, Query(alias="channel", max_length=40), Clean] = None,
                shop_: Annotated[str | None, Query(alias="shop", max_length=100), Clean] = None,
                cursor: Annotated[str | None, Query(max_length=500)] = None,
                limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    """List orders newest first; filter by status, channel, shop and free text ``q``."""
    flt = OrderFilter(status=status_.value if status_ else None, channel=channel_, shop=shop_, q=q)
    return hub.queries.list_orders(principal.tenant_id, flt, cursor=cursor, limit=limit)


@router.get("/{order_id}", response_model=OrderOut)
def get_order(order_id: OrderId, principal: CanReadOrders, hub: Hub) -> dict[str, Any]:
    """One order with its lines, shipments, after-sale cases and reservations."""
    return hub.queries.get_order(principal.tenant_id, order_id)


@router.get("/{order_id}/timeline", response_model=Timeline)
def get_timeline(order_id: OrderId, principal: CanReadOrders, hub: Hub) -> dict[str, Any]:
    """Every change of the order, each entry verified against the hash chain."""
    return hub.queries.timeline(principal.tenant_id, order_id)


@router.post("/{order_id}/events", response_model=OrderEventOut)
def post_event(order_id: OrderId, body: OrderEventIn, principal: CanWriteOrders, hub: Hub,
               idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """Apply an event (cancel, hold, release, mark_paid, ready_to_ship, ship, deliver, complete…)."""
    result = hub.bus.handle(commands.ApplyOrderEvent(
        actor=principal.actor(), order_id=order_id, type=body.type.value, reason=body.reason,
        key=body.key or idempotency_key, occurred_at=body.occurred_at, expected_version=body.expected_version))
    return {"outcome": result.outcome.value, "order": hub.queries.get_order(principal.tenant_id, order_id)}

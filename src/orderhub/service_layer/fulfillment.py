"""From paid to the door (DESIGN.md §2 step 4): a paid, released order with reserved stock
gets one shipment per warehouse holding its stock, a carrier and a wave chosen by the
routing rules, and a waybill request queued in the outbox for the carrier relay. The order
follows its shipments: ready_to_ship when they are planned, partially_shipped / shipped as
they are handed over, delivered when every one is delivered.

Everything here runs inside the caller's unit of work; nothing leaves the process except
through outbox rows written in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from orderhub.adapters.db.outbox import OutboxMessage
from orderhub.adapters.routing import CarrierRouting, order_facts_of, shipment_facts
from orderhub.domain import ids
from orderhub.domain.fulfillment.policy import FulfillmentPolicy
from orderhub.domain.fulfillment.scanning import ShipmentLine
from orderhub.domain.fulfillment.shipment import Shipment
from orderhub.domain.fulfillment.states import LineKind, ShipmentStatus
from orderhub.domain.orders.model import ApplyOutcome, Order, OrderEvent, OrderLine
from orderhub.domain.orders.states import PROGRESS_RANK, OrderEventType, OrderStatus
from orderhub.domain.time import isoformat
from orderhub.service_layer.inventory import OrderState, after_order_change
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

CARRIER_WAYBILL = "carrier_waybill"
CHANNEL_TRACKING = "channel_tracking"
PROMO_TAG = "promo"
# A shipment counts as handed over (for the order) from handover on, whatever happens later.
LEFT_WAREHOUSE = frozenset({ShipmentStatus.HANDED_OVER, ShipmentStatus.IN_TRANSIT, ShipmentStatus.OUT_FOR_DELIVERY,
                            ShipmentStatus.DELIVERED, ShipmentStatus.EXCEPTION, ShipmentStatus.RETURNING,
                            ShipmentStatus.RETURNED})


def _kind(line: OrderLine) -> LineKind:
    """Gifts are free lines; promo lines are paid for entirely by their own discount. Both
    must be picked and scanned like any other (a missing gift is a complaint too)."""
    if line.unit_price.amount == 0:
        return LineKind.GIFT
    if line.discount.amount >= line.gross.amount:
        return LineKind.PROMO
    return LineKind.GOODS


def plan_shipments(uow: SqlAlchemyUnitOfWork, order: Order, *, policy: FulfillmentPolicy, routing: CarrierRouting,
                   now: datetime) -> list[Shipment]:
    """Create the order's shipments from its active reservations (one per warehouse), each
    with the carrier, wave and rule the routing chose, queue their waybill requests and move
    the order to ready_to_ship. Returns the new shipments (none when the order isn't ready:
    not paid, held, nothing reserved, or shipments exist already)."""
    if order.status is not OrderStatus.PAID or uow.shipments.for_order(order.tenant_id, order.id):
        return []
    reservations = uow.inventory.active_for_order(order.tenant_id, order.id)
    if not reservations:
        return []
    codes = {w.id: w.code for w in uow.inventory.warehouses(order.tenant_id)}
    by_line = {line.line_no: line for line in order.lines}
    per_house: dict[str, dict[int, int]] = {}
    for r in reservations:
        held = per_house.setdefault(r.warehouse, {})
        held[r.line_no] = held.get(r.line_no, 0) + r.quantity
    order_facts = order_facts_of(order)
    address = order.shipping_address
    created: list[Shipment] = []
    for warehouse_id in sorted(per_house):
        lines = [ShipmentLine(line_no=no, sku=by_line[no].sku, quantity=qty, kind=_kind(by_line[no]),
                              barcode=policy.barcode_for(by_line[no].sku),
                              unit_weight_g=policy.unit_weight_g(by_line[no].sku))
                 for no, qty in sorted(per_house[warehouse_id].items()) if no in by_line]
        if not lines:
            continue
        code = codes.get(warehouse_id, warehouse_id)
        value = sum(by_line[ln.line_no].unit_price.amount * ln.quantity for ln in lines)
        facts = shipment_facts(
            warehouse=code, country=address.country if address else "", province=(address.province or "") if address
            else "", city=(address.city or "") if address else "",
            weight_g=sum(ln.unit_weight_g * ln.quantity for ln in lines), value_minor=value,
            item_count=sum(ln.quantity for ln in lines), paid_at=order.paid_at, timezone=routing.timezone)
        decision = routing.decide(order_facts, facts)
        shipment = Shipment.create(id=ids.new_id("shp"), tenant_id=order.tenant_id, order_id=order.id,
                                   warehouse=code, lines=lines, carrier=decision.carrier, service=None,
                                   routing_rule=decision.rule, wave=decision.wave, priority=decision.priority,
                                   now=now)
        uow.shipments.add(shipment)
        uow.outbox.add([OutboxMessage(
            tenant_id=order.tenant_id, kind=CARRIER_WAYBILL, target=decision.carrier, topic="carrier.waybill",
            message_id=ids.new_id("msg"), payload={"shipment_id": shipment.id, "order_id": order.id,
                                                   "carrier": decision.carrier, "rule": decision.rule})], now=now)
        created.append(shipment)
    if created:
        order.apply(OrderEvent(OrderEventType.READY_TO_SHIP, occurred_at=now,
                               reason=f"{len(created)} shipment(s) planned", key=f"fulfil:{order.id}"), now=now)
    return created


def writeback_message(order: Order, shipment: Shipment, now: datetime) -> OutboxMessage:
    """The outbox row that gives the channel the parcel's carrier and tracking number."""
    return OutboxMessage(
        tenant_id=order.tenant_id, kind=CHANNEL_TRACKING, target=f"{order.channel}:{order.shop}",
        topic="channel.tracking", message_id=ids.new_id("msg"),
        payload={"order_id": order.id, "external_id": order.external_id, "channel": order.channel,
                 "shop": order.shop, "carrier": shipment.carrier, "waybill_no": shipment.waybill_no,
                 "shipment_id": shipment.id, "shipped_at": isoformat(now),
                 "lines": [{"sku": ln.sku, "quantity": ln.quantity} for ln in shipment.lines]})


def follow_shipments(uow: SqlAlchemyUnitOfWork, order: Order, shipments: Iterable[Shipment], *, now: datetime,
                     occurred_at: datetime | None = None) -> ApplyOutcome | None:
    """Move the order where its shipments are: every one delivered → delivered; every one
    left the warehouse → shipped; some → partially_shipped. Cancelled shipments don't count.
    Stock is consumed through the usual order-change path. Returns the outcome, or None when
    nothing was asked of the order."""
    live = [s for s in shipments if s.status is not ShipmentStatus.CANCELLED]
    if not live:
        return None
    if all(s.status is ShipmentStatus.DELIVERED for s in live):
        target = OrderEventType.DELIVER
    elif all(s.status in LEFT_WAREHOUSE for s in live):
        target = OrderEventType.SHIP
    elif any(s.status in LEFT_WAREHOUSE for s in live):
        target = OrderEventType.SHIP_PARTIAL
    else:
        return None
    wanted = {OrderEventType.DELIVER: OrderStatus.DELIVERED, OrderEventType.SHIP: OrderStatus.SHIPPED,
              OrderEventType.SHIP_PARTIAL: OrderStatus.PARTIALLY_SHIPPED}[target]
    if PROGRESS_RANK.get(order.status, -1) >= PROGRESS_RANK[wanted] or order.status in (
            OrderStatus.CANCELLED, OrderStatus.ON_HOLD, OrderStatus.PENDING_PAYMENT):
        return None
    before = OrderState.of(order)
    when = occurred_at or now
    # The order's own clock must not run before its shipments' (a delivered push may be
    # older than the handover we recorded when the scan arrived late).
    outcome = order.apply(OrderEvent(target, occurred_at=min(max(when, order.placed_at), now),
                                     reason="shipments: " + ", ".join(f"{s.id} {s.status.value}" for s in live)),
                          now=now)
    if outcome is ApplyOutcome.APPLIED:
        after_order_change(uow, order, before, now=now)
    return outcome


def shipment_view(shipment: Shipment) -> dict[str, Any]:
    """A shipment as the API shows it."""
    view = shipment.snapshot()
    view.update({
        "tenant": shipment.tenant_id, "warehouse": shipment.warehouse, "carrier": shipment.carrier,
        "service": shipment.service, "routing_rule": shipment.routing_rule, "wave": shipment.wave,
        "priority": shipment.priority, "stall_level": shipment.stall_level,
        "compensation_flag": shipment.compensation_flag, "created_at": isoformat(shipment.created_at),
        "updated_at": isoformat(shipment.updated_at),
        "last_progress_at": isoformat(shipment.last_progress_at),
        "last_event_at": isoformat(shipment.last_event_at) if shipment.last_event_at else None,
        "handed_over_at": isoformat(shipment.handed_over_at) if shipment.handed_over_at else None,
        "delivered_at": isoformat(shipment.delivered_at) if shipment.delivered_at else None,
        "cancel_reason": shipment.cancel_reason,
    })
    return view

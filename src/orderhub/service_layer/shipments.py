"""Shipments follow their order's cancellation: an order cancelled before it left the
warehouse must not be packed and handed over. Its open shipments are cancelled in the same
transaction as the order, and every waybill already issued is voided at the carrier through
the outbox (kind ``carrier_cancel``), so the label can't be used and isn't billed.
"""

from __future__ import annotations

from datetime import datetime

from orderhub.adapters.db.outbox import OutboxMessage
from orderhub.domain import ids
from orderhub.domain.fulfillment.states import IN_WAREHOUSE
from orderhub.domain.orders.model import Order
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

CARRIER_CANCEL = "carrier_cancel"


def cancel_open_shipments(uow: SqlAlchemyUnitOfWork, order: Order, *, now: datetime) -> int:
    """Cancel the order's shipments still in the warehouse (and queue their waybills' voiding);
    returns how many were cancelled. Parcels the carrier already has are left alone: those
    are after-sale's (intercept or return), not a cancellation's."""
    cancelled = 0
    reason = f"order cancelled: {order.cancel_reason or 'no reason given'}"
    for shipment in uow.shipments.for_order(order.tenant_id, order.id):
        if shipment.status not in IN_WAREHOUSE:
            continue
        loaded = shipment.version
        if not shipment.cancel(reason, now=now):
            continue
        uow.shipments.save(shipment, loaded_version=loaded, next_poll_at=None)
        if shipment.waybill_no and shipment.carrier:
            uow.outbox.add([OutboxMessage(
                tenant_id=order.tenant_id, kind=CARRIER_CANCEL, target=shipment.carrier, topic="carrier.cancel",
                message_id=ids.new_id("msg"),
                payload={"shipment_id": shipment.id, "order_id": order.id, "waybill_no": shipment.waybill_no,
                         "carrier": shipment.carrier})], now=now)
        cancelled += 1
    return cancelled

"""Stock for orders (DESIGN.md §2 step 3): every order reserves in the transaction that
stores it, and every later change of the order (paid, cancelled, shipped, released from a
hold) moves its reservations in the same transaction.

Inventory is on for a tenant once it has a warehouse: from then on an order line whose SKU
has no stock anywhere is out of stock (never silently unreserved). A tenant without
warehouses doesn't track stock, and its orders reserve nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from orderhub.adapters.db.inventory import WarehouseRow
from orderhub.domain import ids
from orderhub.domain.events import OrderAllocated, ReservationsClosed
from orderhub.domain.inventory.allocation import (
    AllocationPlan,
    AllocationWeights,
    Destination,
    LineDemand,
    WarehouseProfile,
    plan_allocation,
)
from orderhub.domain.inventory.policy import InventoryPolicy
from orderhub.domain.inventory.reservations import Reservation, ReservationStatus, reservation_transition
from orderhub.domain.inventory.stock import Bucket, Movement, MovementKind
from orderhub.domain.orders.model import Order, OrderEvent
from orderhub.domain.orders.states import PROGRESS_RANK, OrderEventType, OrderStatus, PaymentStatus
from orderhub.service_layer.channel_feed import publish_stock_feed
from orderhub.service_layer.inventory_policy import load_policy
from orderhub.service_layer.shipments import cancel_open_shipments
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

OUT_OF_STOCK = "out_of_stock"
PARTIALLY_RESERVED = "partially_reserved"
PRESALE_TAG = "presale"
PROMISE_TAG_PREFIX = "promise:"
RESERVABLE = frozenset({OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.READY_TO_SHIP})
SHIPPED_RANK = PROGRESS_RANK[OrderStatus.SHIPPED]


def _promise_date(order: Order) -> date | None:
    for tag in order.tags:
        if tag.startswith(PROMISE_TAG_PREFIX):
            try:
                return date.fromisoformat(tag.removeprefix(PROMISE_TAG_PREFIX))
            except ValueError:
                return None
    return None


def _profile(w: WarehouseRow) -> WarehouseProfile:
    return WarehouseProfile(code=w.code, province=w.province, city=w.city, lat_e6=w.lat_e6, lon_e6=w.lon_e6,
                            on_time_permille=w.on_time_permille, handling_cost_minor=w.handling_cost_minor)


@dataclass(frozen=True, slots=True)
class ReserveOutcome:
    """What reserving an order did: ``reserved`` (everything, or as much as the policy
    allows), and the plan (None when the tenant doesn't track stock)."""

    reserved: bool
    plan: AllocationPlan | None


def reserve_for_order(uow: SqlAlchemyUnitOfWork, order: Order, *, policy: InventoryPolicy,
                      now: datetime) -> ReserveOutcome:
    """Allocate and reserve stock for every line of ``order`` in this transaction.

    Stock rows of the order's SKUs are locked first (in primary-key order), so the plan is
    made on figures nobody else can change before the reservations are written. An order
    that can't be covered is put on hold ``out_of_stock`` (or, where the tenant allows
    partial reservations, reserves what there is and is tagged ``partially_reserved``).
    """
    tenant = order.tenant_id
    if order.status not in RESERVABLE:
        return ReserveOutcome(False, None)
    houses = [w for w in uow.inventory.warehouses(tenant) if w.active]
    if not houses:
        return ReserveOutcome(False, None)
    by_id = {w.id: w for w in houses}
    by_code = {w.code: w for w in houses}
    levels = uow.inventory.lock_stock(tenant, skus=[ln.sku for ln in order.lines])
    available = {(by_id[wid].code, sku): level.available for (wid, sku), level in levels.items() if wid in by_id}
    address = order.shipping_address
    destination = Destination(country=address.country if address else None,
                              province=address.province if address else None,
                              city=address.city if address else None)
    plan = plan_allocation([LineDemand(ln.line_no, ln.sku, ln.quantity) for ln in order.lines], available,
                           [_profile(w) for w in houses], destination,
                           weights=AllocationWeights.from_mapping(policy.allocation_weights),
                           allow_split=policy.allow_split)
    if not plan.complete and not policy.allow_partial:
        _hold_out_of_stock(uow, order, plan, now)
        return ReserveOutcome(False, plan)
    bucket = Bucket.PRESALE if PRESALE_TAG in order.tags else Bucket.STOCK
    expires = now + policy.hold_for(order.channel) if order.payment_status is PaymentStatus.UNPAID else None
    promise = _promise_date(order) if bucket is Bucket.PRESALE else None
    made: list[Reservation] = []
    moves: list[Movement] = []
    for a in sorted(plan.assignments, key=lambda a: (by_code[a.warehouse].id, a.sku, a.line_no)):
        wid = by_code[a.warehouse].id
        if not uow.inventory.reserve(tenant, wid, a.sku, a.quantity, bucket, now=now):
            # Can't happen while we hold the rows' locks; if it does, the CHECK held the line.
            raise RuntimeError(f"stock {a.sku} in {a.warehouse} changed under its lock")
        r = Reservation(id=ids.new_id("rsv"), order_id=order.id, line_no=a.line_no, warehouse=wid, sku=a.sku,
                        quantity=a.quantity, bucket=bucket, status=ReservationStatus.ACTIVE, created_at=now,
                        expires_at=expires, promise_date=promise)
        made.append(r)
        moves.append(Movement(wid, a.sku, MovementKind.PRESALE_RESERVE if bucket is Bucket.PRESALE
                              else MovementKind.RESERVE, reserved_delta=a.quantity if bucket is Bucket.STOCK else 0,
                              presale_delta=a.quantity if bucket is Bucket.PRESALE else 0, order_id=order.id,
                              reservation_id=r.id))
    uow.inventory.add_reservations(tenant, made)
    uow.inventory.add_movements(tenant, moves, actor=uow.actor.actor, now=now)
    plan_json = plan.to_json()
    uow.inventory.save_allocation(tenant, order.id, plan_json, now=now)
    uow.record(OrderAllocated(tenant_id=tenant, order_id=order.id, reserved=True, plan=plan_json, occurred_at=now))
    if not plan.complete:
        order.tags = tuple(dict.fromkeys((*order.tags, PARTIALLY_RESERVED)))
    return ReserveOutcome(True, plan)


def _hold_out_of_stock(uow: SqlAlchemyUnitOfWork, order: Order, plan: AllocationPlan, now: datetime) -> None:
    missing = ", ".join(f"{sku} short by {n}" for _, sku, n in plan.shortfalls)
    plan_json = plan.to_json()
    uow.inventory.save_allocation(order.tenant_id, order.id, plan_json, now=now)
    uow.record(OrderAllocated(tenant_id=order.tenant_id, order_id=order.id, reserved=False, plan=plan_json,
                              occurred_at=now))
    if order.status is not OrderStatus.ON_HOLD:
        order.apply(OrderEvent(type=OrderEventType.HOLD, occurred_at=now,
                               reason=f"{OUT_OF_STOCK}: {missing}"[:500]), now=now)


def close_reservations(uow: SqlAlchemyUnitOfWork, order: Order, target: ReservationStatus, *, now: datetime,
                       reason: str | None = None) -> int:
    """Release, expire or consume (ship) every active reservation of ``order``; returns how
    many. The move is checked against the reservation state table and each leaves a
    movement. Reservations are taken before their stock rows are locked (the same order as
    every other closer), and a reservation another closer took first is not given back twice."""
    reservation_transition(ReservationStatus.ACTIVE, target)
    taken = uow.inventory.take_active(order.tenant_id, order.id, target, now=now)
    if taken:
        uow.inventory.lock_stock(order.tenant_id, keys=[(r.warehouse, r.sku) for r in taken])
        give_back(uow, order.tenant_id, order.id, taken, target, now=now, reason=reason)
    return len(taken)


def give_back(uow: SqlAlchemyUnitOfWork, tenant_id: str, order_id: str, taken: list[Reservation],
              target: ReservationStatus, *, now: datetime, reason: str | None = None) -> None:
    """Move the stock of reservations already taken (moved to ``target``), whose stock rows
    the caller has locked: back to available, or out of the warehouse for ``consumed``."""
    kind = {ReservationStatus.RELEASED: MovementKind.RELEASE, ReservationStatus.EXPIRED: MovementKind.EXPIRE,
            ReservationStatus.CONSUMED: MovementKind.SHIP}[target]
    consume = target is ReservationStatus.CONSUMED
    moves: list[Movement] = []
    items: list[dict[str, Any]] = []
    for r in taken:
        if not uow.inventory.unreserve(tenant_id, r.warehouse, r.sku, r.quantity, r.bucket, consume=consume,
                                       now=now):
            # The row holds less than the reservation (drift): close it without a movement and
            # leave the figures to `orderhub inventory check`.
            items.append({"reservation": r.id, "sku": r.sku, "quantity": r.quantity, "drift": True})
            continue
        moves.append(Movement(r.warehouse, r.sku, kind, on_hand_delta=-r.quantity if consume else 0,
                              reserved_delta=-r.quantity if r.bucket is Bucket.STOCK else 0,
                              presale_delta=-r.quantity if r.bucket is Bucket.PRESALE else 0, reason=reason,
                              order_id=order_id, reservation_id=r.id))
        items.append({"reservation": r.id, "warehouse": r.warehouse, "sku": r.sku, "quantity": r.quantity})
    uow.inventory.add_movements(tenant_id, moves, actor=uow.actor.actor, now=now)
    uow.record(ReservationsClosed(tenant_id=tenant_id, order_id=order_id, status=target.value, items=tuple(items),
                                  occurred_at=now))


@dataclass(frozen=True, slots=True)
class OrderState:
    """What an order was before a change (to see what the change did)."""

    status: OrderStatus
    payment: PaymentStatus
    held_for_stock: bool

    @staticmethod
    def of(order: Order) -> OrderState:
        """Snapshot ``order``."""
        return OrderState(order.status, order.payment_status,
                          order.status is OrderStatus.ON_HOLD and (order.hold_reason or "").startswith(OUT_OF_STOCK))


def after_order_change(uow: SqlAlchemyUnitOfWork, order: Order, before: OrderState, *, now: datetime) -> None:
    """Move the order's stock the way its change asks: cancelled → release, shipped →
    consume, paid → no expiry (and a new reservation if the old one expired), released from
    an out-of-stock hold → try to reserve again (held again if still short)."""
    if order.status is before.status and order.payment_status is before.payment:
        return
    if not uow.inventory.warehouses(order.tenant_id):
        return  # the tenant doesn't track stock: nothing was ever reserved
    if order.status is OrderStatus.CANCELLED:
        close_reservations(uow, order, ReservationStatus.RELEASED, now=now, reason=order.cancel_reason)
        cancel_open_shipments(uow, order, now=now)
        return
    rank = PROGRESS_RANK.get(order.status, -1)
    if rank >= SHIPPED_RANK > PROGRESS_RANK.get(before.status, -1):
        close_reservations(uow, order, ReservationStatus.CONSUMED, now=now)
        return
    became_paid = before.payment is PaymentStatus.UNPAID and order.payment_status is PaymentStatus.PAID
    released = before.status is OrderStatus.ON_HOLD and order.status is not OrderStatus.ON_HOLD
    if became_paid:
        uow.inventory.clear_expiry(order.tenant_id, order.id)
    # Paid, or back from any hold (out of stock; or paid while held after its unpaid
    # reservation expired), and holding nothing: reserve now (held out_of_stock if short).
    if (became_paid or released) and order.status in RESERVABLE \
            and not uow.inventory.active_for_order(order.tenant_id, order.id):
        reserve_for_order(uow, order, policy=load_policy(uow, order.tenant_id), now=now)


def expire_due(uow: SqlAlchemyUnitOfWork, *, limit: int = 100) -> int:
    """Release the stock of unpaid orders whose reservations are past ``expires_at``, in one
    transaction for up to ``limit`` orders; returns how many orders. Safe in several
    processes at once: reservations are taken (conditional updates) order by order in one
    shared order, then the stock rows are locked once per tenant in primary-key order, so
    two expirers neither release a reservation twice nor wait on each other in a cycle.
    Orders that are gone expire too (their stock must not stay held)."""
    with uow:
        now = uow.clock.now()
        taken: dict[str, list[Reservation]] = {}
        for tenant_id, order_id in sorted(uow.inventory.due_for_expiry(now=now, limit=limit)):
            order = uow.orders.get(tenant_id, order_id)
            if order is not None and order.payment_status is PaymentStatus.PAID:
                continue
            took = uow.inventory.take_active(tenant_id, order_id, ReservationStatus.EXPIRED, now=now)
            if took:
                taken.setdefault(tenant_id, []).extend(took)
        for tenant_id, items in taken.items():
            uow.inventory.lock_stock(tenant_id, keys=[(r.warehouse, r.sku) for r in items])
            by_order: dict[str, list[Reservation]] = {}
            for r in items:
                by_order.setdefault(r.order_id, []).append(r)
            for order_id, mine in by_order.items():
                give_back(uow, tenant_id, order_id, mine, ReservationStatus.EXPIRED, now=now,
                          reason="unpaid past the reservation's hold time")
        publish_touched(uow)
        uow.commit()
        return sum(len({r.order_id for r in items}) for items in taken.values())


def publish_touched(uow: SqlAlchemyUnitOfWork) -> int:
    """Queue channel stock figures for every SKU this transaction changed (before commit)."""
    published = 0
    for tenant_id, skus in sorted(uow.inventory.touched.items()):
        published += publish_stock_feed(uow, tenant_id, sorted(skus))
    uow.inventory.touched.clear()
    return published

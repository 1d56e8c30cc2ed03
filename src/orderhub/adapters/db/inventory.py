"""The inventory repository: warehouses, stock rows, movements, reservations, allocations.

Stock rows are locked through ONE helper, :meth:`SqlInventoryRepository.lock_stock`, always
in primary-key order (tenant, warehouse, sku), so two transactions that need the same rows
queue instead of deadlocking. Every change to a reserved figure is a conditional UPDATE that
can't take ``available`` below zero, and the table's CHECK constraints back that up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from orderhub.adapters.db.engine import insert_unless_duplicate
from orderhub.adapters.db.errors import DuplicateKeyError, StaleVersionError
from orderhub.adapters.db.tables import (
    allocations,
    channel_stock,
    orders,
    reservations,
    stock_levels,
    stock_movements,
    warehouses,
)
from orderhub.domain.inventory.reservations import Reservation, ReservationStatus
from orderhub.domain.inventory.stock import Bucket, Movement, StockLevel

StockKey = tuple[str, str]  # (warehouse id, sku)


@dataclass(frozen=True, slots=True)
class WarehouseRow:
    """A stored warehouse."""

    id: str
    tenant_id: str
    code: str
    name: str
    province: str | None
    city: str | None
    lat_e6: int | None
    lon_e6: int | None
    on_time_permille: int
    handling_cost_minor: int
    active: bool
    created_at: datetime


def _warehouse(row: Any) -> WarehouseRow:
    return WarehouseRow(id=row.id, tenant_id=row.tenant_id, code=row.code, name=row.name, province=row.province,
                        city=row.city, lat_e6=row.lat_e6, lon_e6=row.lon_e6, on_time_permille=row.on_time_permille,
                        handling_cost_minor=row.handling_cost_minor, active=row.active, created_at=row.created_at)


def _level(row: Any, code: str | None = None) -> StockLevel:
    return StockLevel(warehouse=code or row.warehouse_id, sku=row.sku, on_hand=int(row.on_hand),
                      reserved=int(row.reserved), presale_reserved=int(row.presale_reserved),
                      safety_stock=int(row.safety_stock), version=int(row.version))


def _reservation(row: Any) -> Reservation:
    return Reservation(id=row.id, order_id=row.order_id, line_no=row.line_no, warehouse=row.warehouse_id,
                       sku=row.sku, quantity=int(row.quantity), bucket=Bucket(row.bucket),
                       status=ReservationStatus(row.status), created_at=row.created_at, expires_at=row.expires_at,
                       promise_date=row.promise_date)


_RESERVED_COLUMN = {Bucket.STOCK: stock_levels.c.reserved, Bucket.PRESALE: stock_levels.c.presale_reserved}


class SqlInventoryRepository:
    """Inventory of any tenant, on one connection (inside the unit of work's transaction)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        # SKUs whose figures this transaction changed, per tenant: the channel stock feed
        # recomputes them before commit.
        self.touched: dict[str, set[str]] = {}
        # Warehouses read once per transaction and tenant (a batch of orders asks for each order).
        self._warehouses: dict[str, list[WarehouseRow]] = {}

    def _touch(self, tenant_id: str, sku: str) -> None:
        self.touched.setdefault(tenant_id, set()).add(sku)

    # ------------------------------------------------------------------ warehouses
    def add_warehouse(self, row: WarehouseRow) -> None:
        """Insert a warehouse; DuplicateKeyError when the tenant already has its code."""
        result = self._conn.execute(insert_unless_duplicate(warehouses, self._conn.dialect.name), {
            "tenant_id": row.tenant_id, "id": row.id, "code": row.code, "name": row.name,
            "province": row.province, "city": row.city, "lat_e6": row.lat_e6, "lon_e6": row.lon_e6,
            "on_time_permille": row.on_time_permille, "handling_cost_minor": row.handling_cost_minor,
            "active": row.active, "created_at": row.created_at})
        self._warehouses.pop(row.tenant_id, None)
        if result.rowcount != 1:
            raise DuplicateKeyError(f"warehouse code {row.code!r} is already used", entity="warehouse", key=row.code)

    def warehouse(self, tenant_id: str, code: str) -> WarehouseRow | None:
        """The tenant's warehouse with ``code``."""
        row = self._conn.execute(select(warehouses).where(warehouses.c.tenant_id == tenant_id,
                                                          warehouses.c.code == code)).first()
        return _warehouse(row) if row else None

    def warehouses(self, tenant_id: str) -> list[WarehouseRow]:
        """The tenant's warehouses by code."""
        cached = self._warehouses.get(tenant_id)
        if cached is None:
            rows = self._conn.execute(select(warehouses).where(warehouses.c.tenant_id == tenant_id)
                                      .order_by(warehouses.c.code)).all()
            cached = self._warehouses[tenant_id] = [_warehouse(r) for r in rows]
        return list(cached)

    # ------------------------------------------------------------------ stock rows
    def lock_stock(self, tenant_id: str, *, skus: Iterable[str] = (), keys: Iterable[StockKey] = ()
                   ) -> dict[StockKey, StockLevel]:
        """THE way stock rows are locked: every row of the tenant for ``skus`` and for the SKUs
        of ``keys`` — in every warehouse — in primary-key order, held to the end of the
        transaction. Returns what they hold now, keyed (warehouse id, sku).

        Whole SKUs, always: a transaction that locked one warehouse's row of a SKU and later
        needs the same SKU's other rows (the channel feed sums them) would otherwise take
        locks in two steps, and two such transactions could wait on each other.
        On SQLite the write transaction (BEGIN IMMEDIATE) already excludes other writers.
        """
        wanted = sorted(set(skus) | {sku for _, sku in keys})
        if not wanted:
            return {}
        c = stock_levels.c
        query = (select(stock_levels).where(c.tenant_id == tenant_id, c.sku.in_(wanted))
                 .order_by(c.tenant_id, c.warehouse_id, c.sku))
        if self._conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return {(r.warehouse_id, r.sku): _level(r) for r in self._conn.execute(query)}

    def set_stock(self, tenant_id: str, warehouse_id: str, sku: str, *, on_hand: int, safety_stock: int | None,
                  expected_version: int | None, now: datetime) -> tuple[StockLevel | None, StockLevel]:
        """Set a row's on_hand (and safety stock), creating it if new; returns (before, after).

        Raises StaleVersionError when ``expected_version`` is given and the row has moved on.
        The CHECK constraints refuse less on hand than is reserved (IntegrityError → caller).
        """
        before = self.lock_stock(tenant_id, keys=[(warehouse_id, sku)]).get((warehouse_id, sku))
        if expected_version is not None and (before.version if before else 0) != expected_version:
            raise StaleVersionError(f"stock {sku} in this warehouse is at version "
                                    f"{before.version if before else 0}, not {expected_version}",
                                    entity="stock", key=f"{warehouse_id}/{sku}")
        c = stock_levels.c
        self._touch(tenant_id, sku)
        if before is None:
            after = StockLevel(warehouse_id, sku, on_hand, safety_stock=safety_stock or 0, version=1)
            self._conn.execute(insert(stock_levels).values(
                tenant_id=tenant_id, warehouse_id=warehouse_id, sku=sku, on_hand=on_hand, reserved=0,
                presale_reserved=0, safety_stock=after.safety_stock, version=1, updated_at=now))
            return None, after
        safety = before.safety_stock if safety_stock is None else safety_stock
        self._conn.execute(update(stock_levels).where(
            c.tenant_id == tenant_id, c.warehouse_id == warehouse_id, c.sku == sku).values(
            on_hand=on_hand, safety_stock=safety, version=c.version + 1, updated_at=now))
        return before, StockLevel(warehouse_id, sku, on_hand, before.reserved, before.presale_reserved, safety,
                                  before.version + 1)

    def change_on_hand(self, tenant_id: str, warehouse_id: str, sku: str, delta: int, *, now: datetime) -> bool:
        """Add ``delta`` (may be negative) to on_hand if that leaves it at or above what is
        reserved; False (nothing changed) otherwise or when the row doesn't exist."""
        c = stock_levels.c
        result = self._conn.execute(update(stock_levels).where(
            c.tenant_id == tenant_id, c.warehouse_id == warehouse_id, c.sku == sku,
            c.on_hand + delta - c.reserved - c.presale_reserved >= 0, c.on_hand + delta >= 0).values(
            on_hand=c.on_hand + delta, version=c.version + 1, updated_at=now))
        if result.rowcount == 1:
            self._touch(tenant_id, sku)
        return result.rowcount == 1

    def reserve(self, tenant_id: str, warehouse_id: str, sku: str, quantity: int, bucket: Bucket, *,
                now: datetime) -> bool:
        """Hold ``quantity`` in ``bucket`` if that much is available (a conditional update:
        it can't take available below zero, whatever runs concurrently); True when held."""
        c = stock_levels.c
        column = _RESERVED_COLUMN[bucket]
        result = self._conn.execute(update(stock_levels).where(
            c.tenant_id == tenant_id, c.warehouse_id == warehouse_id, c.sku == sku,
            c.on_hand - c.reserved - c.presale_reserved >= quantity).values(
            {column: column + quantity, c.version: c.version + 1, c.updated_at: now}))
        if result.rowcount == 1:
            self._touch(tenant_id, sku)
        return result.rowcount == 1

    def unreserve(self, tenant_id: str, warehouse_id: str, sku: str, quantity: int, bucket: Bucket, *,
                  consume: bool, now: datetime) -> bool:
        """Give back ``quantity`` of ``bucket`` (``consume``: it shipped, so on_hand goes down
        too). False when the row holds less than that (drift: reported, never negative)."""
        c = stock_levels.c
        column = _RESERVED_COLUMN[bucket]
        values: dict[Any, Any] = {column: column - quantity, c.version: c.version + 1, c.updated_at: now}
        conditions = [c.tenant_id == tenant_id, c.warehouse_id == warehouse_id, c.sku == sku, column >= quantity]
        if consume:
            values[c.on_hand] = c.on_hand - quantity
            conditions.append(c.on_hand >= quantity)
        done = self._conn.execute(update(stock_levels).where(*conditions).values(values)).rowcount == 1
        if done:
            self._touch(tenant_id, sku)
        return done

    def add_movements(self, tenant_id: str, movements: Sequence[Movement], *, actor: str, now: datetime) -> None:
        """Append movements (the ledger every stock row must sum to)."""
        if not movements:
            return
        self._conn.execute(insert(stock_movements), [{
            "tenant_id": tenant_id, "warehouse_id": m.warehouse, "sku": m.sku, "kind": m.kind.value,
            "on_hand_delta": m.on_hand_delta, "reserved_delta": m.reserved_delta, "presale_delta": m.presale_delta,
            "reason": m.reason, "order_id": m.order_id, "reservation_id": m.reservation_id, "actor": actor,
            "created_at": now} for m in movements])

    # ------------------------------------------------------------------ reservations
    def add_reservations(self, tenant_id: str, items: Sequence[Reservation]) -> None:
        """Store new reservations."""
        if not items:
            return
        try:
            self._conn.execute(insert(reservations), [{
                "tenant_id": tenant_id, "id": r.id, "order_id": r.order_id, "line_no": r.line_no,
                "warehouse_id": r.warehouse, "sku": r.sku, "quantity": r.quantity, "bucket": r.bucket.value,
                "status": r.status.value, "expires_at": r.expires_at, "promise_date": r.promise_date,
                "created_at": r.created_at} for r in items])
        except IntegrityError as exc:
            raise DuplicateKeyError("reservation ids collided", entity="reservation", key=items[0].id) from exc

    def active_for_order(self, tenant_id: str, order_id: str) -> list[Reservation]:
        """The order's reservations still holding stock, in primary-key order of their rows."""
        c = reservations.c
        rows = self._conn.execute(select(reservations).where(
            c.tenant_id == tenant_id, c.order_id == order_id, c.status == ReservationStatus.ACTIVE.value)
            .order_by(c.warehouse_id, c.sku, c.id)).all()
        return [_reservation(r) for r in rows]

    def take_active(self, tenant_id: str, order_id: str, status: ReservationStatus, *,
                    now: datetime) -> list[Reservation]:
        """Move the order's active reservations to ``status`` and return them (as they were).

        The status change comes first and is conditional, so two closers racing for the same
        reservation (a cancel and the expiry worker) can't both give its stock back: only the
        one whose UPDATE took the row does.
        """
        c = reservations.c
        rows = self._conn.execute(update(reservations).where(
            c.tenant_id == tenant_id, c.order_id == order_id, c.status == ReservationStatus.ACTIVE.value).values(
            status=status.value, closed_at=now, expires_at=None).returning(*reservations.c)).all()
        taken = [_reservation(r) for r in rows]
        taken = [Reservation(r.id, r.order_id, r.line_no, r.warehouse, r.sku, r.quantity, r.bucket,
                             ReservationStatus.ACTIVE, r.created_at, r.expires_at, r.promise_date) for r in taken]
        return sorted(taken, key=lambda r: (r.warehouse, r.sku, r.id))

    def active_keys(self, tenant_id: str, order_ids: Sequence[str]) -> list[StockKey]:
        """The stock rows the given orders' active reservations hold."""
        if not order_ids:
            return []
        c = reservations.c
        rows = self._conn.execute(select(c.warehouse_id, c.sku).distinct().where(
            c.tenant_id == tenant_id, c.order_id.in_(list(order_ids)), c.status == ReservationStatus.ACTIVE.value))
        return [(r.warehouse_id, r.sku) for r in rows]

    def clear_expiry(self, tenant_id: str, order_id: str) -> int:
        """The order was paid: its active reservations no longer expire."""
        c = reservations.c
        return int(self._conn.execute(update(reservations).where(
            c.tenant_id == tenant_id, c.order_id == order_id, c.status == ReservationStatus.ACTIVE.value,
            c.expires_at.is_not(None)).values(expires_at=None)).rowcount)

    def due_for_expiry(self, *, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(tenant, order id) of orders with active reservations past ``expires_at``, oldest
        first. Nothing is locked here: expirers take reservations with conditional updates in
        one shared order (see ``service_layer.inventory.expire_due``)."""
        c = reservations.c
        query = (select(c.tenant_id, c.order_id).where(
            c.status == ReservationStatus.ACTIVE.value, c.expires_at.is_not(None), c.expires_at <= now)
            .order_by(c.expires_at).limit(limit))
        seen: dict[tuple[str, str], None] = {}
        for row in self._conn.execute(query):
            seen.setdefault((row.tenant_id, row.order_id), None)
        return list(seen)

    def reservations_for_order(self, tenant_id: str, order_id: str) -> list[Reservation]:
        """Every reservation the order ever had."""
        c = reservations.c
        rows = self._conn.execute(select(reservations).where(c.tenant_id == tenant_id, c.order_id == order_id)
                                  .order_by(c.created_at, c.line_no, c.id)).all()
        return [_reservation(r) for r in rows]

    # ------------------------------------------------------------------ allocations
    def save_allocation(self, tenant_id: str, order_id: str, plan: dict[str, Any], *, now: datetime) -> None:
        """Store (or replace) the allocation plan chosen for an order."""
        c = allocations.c
        result = self._conn.execute(update(allocations).where(c.tenant_id == tenant_id, c.order_id == order_id)
                                    .values(plan=plan, created_at=now))
        if result.rowcount == 0:
            self._conn.execute(insert(allocations).values(tenant_id=tenant_id, order_id=order_id, plan=plan,
                                                          created_at=now))

    def allocation(self, tenant_id: str, order_id: str) -> dict[str, Any] | None:
        """The allocation plan stored for an order."""
        c = allocations.c
        plan = self._conn.execute(select(c.plan).where(c.tenant_id == tenant_id, c.order_id == order_id)).scalar()
        return dict(plan) if plan is not None else None

    # ------------------------------------------------------------------ ledger checks
    def movement_sums(self, tenant_id: str) -> dict[StockKey, tuple[int, int, int]]:
        """Per stock row: the sums of its movements' (on_hand, reserved, presale) deltas."""
        m = stock_movements.c
        rows = self._conn.execute(select(m.warehouse_id, m.sku, func.sum(m.on_hand_delta), func.sum(m.reserved_delta),
                                         func.sum(m.presale_delta))
                                  .where(m.tenant_id == tenant_id).group_by(m.warehouse_id, m.sku)).all()
        return {(r[0], r[1]): (int(r[2] or 0), int(r[3] or 0), int(r[4] or 0)) for r in rows}

    def levels(self, tenant_id: str) -> dict[StockKey, StockLevel]:
        """Every stock row of the tenant (unlocked: for reports and checks)."""
        rows = self._conn.execute(select(stock_levels).where(stock_levels.c.tenant_id == tenant_id)).all()
        return {(r.warehouse_id, r.sku): _level(r) for r in rows}

    def active_sums(self, tenant_id: str) -> dict[tuple[StockKey, str], int]:
        """Per (stock row, bucket): the quantity of active reservations."""
        c = reservations.c
        rows = self._conn.execute(select(c.warehouse_id, c.sku, c.bucket, func.sum(c.quantity)).where(
            c.tenant_id == tenant_id, c.status == ReservationStatus.ACTIVE.value)
            .group_by(c.warehouse_id, c.sku, c.bucket)).all()
        return {((r[0], r[1]), r[2]): int(r[3]) for r in rows}


    # ------------------------------------------------------------------ self-check, metrics, channel feed
    # Appended for `orderhub inventory check` (service_layer/inventory_check.py), the phantom
    # reservation metric (adapters/inventory_metrics.py) and the channel stock feed
    # (service_layer/channel_feed.py). Their table imports sit at the end of this module.
    def phantom_candidates(self, tenant_id: str, order_statuses: Iterable[str]) -> list[tuple[Reservation, str | None]]:
        """Active reservations whose order is in one of ``order_statuses`` or gone, each with
        the order's status (None when there is no such order), in stock-row order."""
        r, o = reservations.c, orders.c
        statuses = sorted(set(order_statuses))
        query = (select(reservations, o.status.label("order_status"))
                 .select_from(reservations.outerjoin(orders, (o.tenant_id == r.tenant_id) & (o.id == r.order_id)))
                 .where(r.tenant_id == tenant_id, r.status == ReservationStatus.ACTIVE.value,
                        or_(o.id.is_(None), o.status.in_(statuses)))
                 .order_by(r.warehouse_id, r.sku, r.id))
        return [(_reservation(row), row.order_status) for row in self._conn.execute(query)]

    def take_reservations(self, tenant_id: str, reservation_ids: Sequence[str], status: ReservationStatus, *,
                          now: datetime) -> list[Reservation]:
        """Move the given reservations that are still active to ``status`` and return them
        (as they were). Conditional like :meth:`take_active`: one racing closer wins."""
        if not reservation_ids:
            return []
        c = reservations.c
        rows = self._conn.execute(update(reservations).where(
            c.tenant_id == tenant_id, c.id.in_(list(reservation_ids)), c.status == ReservationStatus.ACTIVE.value)
            .values(status=status.value, closed_at=now, expires_at=None).returning(*reservations.c)).all()
        taken = [_reservation(r) for r in rows]
        return sorted((Reservation(r.id, r.order_id, r.line_no, r.warehouse, r.sku, r.quantity, r.bucket,
                                   ReservationStatus.ACTIVE, r.created_at, r.expires_at, r.promise_date)
                       for r in taken), key=lambda r: (r.warehouse, r.sku, r.id))

    def set_reserved(self, tenant_id: str, warehouse_id: str, sku: str, *, reserved: int, presale_reserved: int,
                     now: datetime) -> bool:
        """Set a (locked) row's reserved figures outright, if on_hand covers them; False
        (nothing changed) otherwise. Only the self-check's repair uses it."""
        c = stock_levels.c
        result = self._conn.execute(update(stock_levels).where(
            c.tenant_id == tenant_id, c.warehouse_id == warehouse_id, c.sku == sku,
            c.on_hand >= reserved + presale_reserved).values(
            reserved=reserved, presale_reserved=presale_reserved, version=c.version + 1, updated_at=now))
        return result.rowcount == 1

    def stock_figures(self, paid_unshipped: Iterable[str]) -> dict[str, tuple[int, int]]:
        """Per tenant with stock: (units available, units held by active reservations of
        paid orders whose status is in ``paid_unshipped``). Read-only; for metrics."""
        s, r, o = stock_levels.c, reservations.c, orders.c
        figures = {row[0]: (int(row[1] or 0), 0) for row in self._conn.execute(
            select(s.tenant_id, func.sum(s.on_hand - s.reserved - s.presale_reserved)).group_by(s.tenant_id))}
        held = self._conn.execute(
            select(r.tenant_id, func.sum(r.quantity))
            .select_from(reservations.join(orders, (o.tenant_id == r.tenant_id) & (o.id == r.order_id)))
            .where(r.status == ReservationStatus.ACTIVE.value, o.payment_status == "paid",
                   o.status.in_(sorted(set(paid_unshipped))))
            .group_by(r.tenant_id))
        for tenant_id, units in held:
            figures[tenant_id] = (figures.get(tenant_id, (0, 0))[0], int(units or 0))
        return figures

    def channel_figures(self, tenant_id: str, skus: Iterable[str]) -> dict[tuple[str, str], int]:
        """The quantity last sent to each channel, keyed (channel, sku), for ``skus``."""
        sku_list = sorted(set(skus))
        if not sku_list:
            return {}
        c = channel_stock.c
        rows = self._conn.execute(select(c.channel, c.sku, c.quantity).where(
            c.tenant_id == tenant_id, c.sku.in_(sku_list))).all()
        return {(row.channel, row.sku): int(row.quantity) for row in rows}

    def save_channel_figure(self, tenant_id: str, channel: str, sku: str, quantity: int, *, now: datetime) -> None:
        """Record ``quantity`` as the figure last sent to ``channel`` for ``sku``."""
        c = channel_stock.c
        where = (c.tenant_id == tenant_id, c.channel == channel, c.sku == sku)
        if self._conn.execute(update(channel_stock).where(*where).values(quantity=quantity,
                                                                         updated_at=now)).rowcount:
            return
        inserted = self._conn.execute(insert_unless_duplicate(channel_stock, self._conn.dialect.name), {
            "tenant_id": tenant_id, "channel": channel, "sku": sku, "quantity": quantity, "updated_at": now})
        if inserted.rowcount != 1:  # a concurrent first figure won the insert: ours is newer
            self._conn.execute(update(channel_stock).where(*where).values(quantity=quantity, updated_at=now))

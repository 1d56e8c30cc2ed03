"""Read-side queries of inventory: warehouses, stock rows, per-SKU availability, movements.

Mixed into :class:`orderhub.service_layer.queries.Queries`; like every query they never
change state (nothing here locks a stock row) and are scoped to one tenant per call.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from orderhub.adapters.db.inventory import SqlInventoryRepository, WarehouseRow
from orderhub.adapters.db.tables import stock_levels, stock_movements, warehouses
from orderhub.domain.inventory.stock import StockLevel
from orderhub.domain.money import Money
from orderhub.domain.time import isoformat
from orderhub.service_layer.channel_queries import ChannelQueries

HANDLING_COST_CURRENCY = "CNY"
TOTAL_FIELDS = ("on_hand", "reserved", "presale_reserved", "available", "safety_stock", "sellable")
MAX_MOVEMENTS = 500


def _degrees(e6: int | None) -> str | None:
    # Decimal text, never a float: 30274100 → "30.2741".
    if e6 is None:
        return None
    text = format(Decimal(e6).scaleb(-6).normalize(), "f")
    return text


def warehouse_view(w: WarehouseRow) -> dict[str, Any]:
    """A warehouse as the API and the CLI show it."""
    return {"id": w.id, "code": w.code, "name": w.name, "province": w.province, "city": w.city,
            "lat": _degrees(w.lat_e6), "lon": _degrees(w.lon_e6),
            "on_time_rate": format(Decimal(w.on_time_permille).scaleb(-3).normalize(), "f"),
            "handling_cost": Money(w.handling_cost_minor, HANDLING_COST_CURRENCY).to_dict(),
            "active": w.active, "created_at": isoformat(w.created_at)}


def stock_view(level: StockLevel) -> dict[str, Any]:
    """A stock row as the API and the CLI show it (``warehouse`` is the warehouse's code)."""
    return {"warehouse": level.warehouse, "sku": level.sku, "on_hand": level.on_hand, "reserved": level.reserved,
            "presale_reserved": level.presale_reserved, "available": level.available,
            "safety_stock": level.safety_stock, "sellable": level.sellable, "version": level.version}


class InventoryQueries(ChannelQueries):
    """Inventory read models (the read connection comes from the base read model)."""

    def warehouses(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's warehouses by code."""
        with self._connect() as conn:
            rows = SqlInventoryRepository(conn).warehouses(tenant_id)
        return [warehouse_view(w) for w in rows]

    def inventory(self, tenant_id: str, *, sku: str | None = None, warehouse: str | None = None
                  ) -> list[dict[str, Any]]:
        """Stock rows by SKU then warehouse code, optionally for one SKU and/or one warehouse code."""
        s, w = stock_levels.c, warehouses.c
        query = (select(stock_levels, w.code.label("warehouse_code"))
                 .join(warehouses, (w.tenant_id == s.tenant_id) & (w.id == s.warehouse_id))
                 .where(s.tenant_id == tenant_id).order_by(s.sku, w.code))
        if sku is not None:
            query = query.where(s.sku == sku)
        if warehouse is not None:
            query = query.where(w.code == warehouse)
        with self._connect() as conn:
            rows = conn.execute(query).all()
        return [stock_view(StockLevel(r.warehouse_code, r.sku, int(r.on_hand), int(r.reserved),
                                      int(r.presale_reserved), int(r.safety_stock), int(r.version))) for r in rows]

    def availability(self, tenant_id: str, sku: str) -> dict[str, Any]:
        """One SKU across the tenant's warehouses: a row per warehouse that stocks it and the
        totals (a SKU no warehouse stocks has no rows and zero totals)."""
        rows = self.inventory(tenant_id, sku=sku)
        totals = {name: sum(int(r[name]) for r in rows) for name in TOTAL_FIELDS}
        # Sellable is per row (safety stock applies in each warehouse), so the total is their sum.
        return {"sku": sku, "warehouses": rows, "totals": totals}

    def stock_movements(self, tenant_id: str, warehouse: str, sku: str, *,
                        limit: int = MAX_MOVEMENTS) -> list[dict[str, Any]]:
        """A stock row's movements, oldest first (the ledger the row sums to)."""
        m, w = stock_movements.c, warehouses.c
        query = (select(stock_movements).join(warehouses, (w.tenant_id == m.tenant_id) & (w.id == m.warehouse_id))
                 .where(m.tenant_id == tenant_id, w.code == warehouse, m.sku == sku)
                 .order_by(m.id).limit(max(1, min(limit, MAX_MOVEMENTS))))
        with self._connect() as conn:
            rows = conn.execute(query).all()
        return [{"kind": r.kind, "on_hand_delta": int(r.on_hand_delta), "reserved_delta": int(r.reserved_delta),
                 "presale_delta": int(r.presale_delta), "reason": r.reason, "order_id": r.order_id,
                 "reservation_id": r.reservation_id, "actor": r.actor, "created_at": isoformat(r.created_at)}
                for r in rows]

    def order_stock(self, tenant_id: str, order_id: str) -> dict[str, Any]:
        """An order's reservations (every one it had, with warehouse codes) and the allocation
        plan chosen for it, with every candidate warehouse's score; empty when none."""
        with self._connect() as conn:
            repo = SqlInventoryRepository(conn)
            codes = {w.id: w.code for w in repo.warehouses(tenant_id)}
            held = repo.reservations_for_order(tenant_id, order_id)
            plan = repo.allocation(tenant_id, order_id)
        return {
            "reservations": [{"id": r.id, "line_no": r.line_no, "warehouse": codes.get(r.warehouse, r.warehouse),
                              "sku": r.sku, "quantity": r.quantity, "bucket": r.bucket.value,
                              "status": r.status.value, "expires_at": isoformat(r.expires_at) if r.expires_at else None,
                              "promise_date": r.promise_date.isoformat() if r.promise_date else None}
                             for r in held],
            "allocation": plan,
        }

"""Warehouses and stock (DESIGN.md §6): thin — parse, build a command, hand it to the bus.

Figures are whole numbers given as JSON integers (``"10"``, ``10.0`` and ``true`` are refused
with the field path); coordinates and the on-time rate are decimals (number or string),
the handling cost a decimal string in CNY.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from orderhub.domain import commands
from orderhub.domain.access import Permission
from orderhub.domain.inventory.stock import MAX_STOCK, StockLevel
from orderhub.entrypoints.api.deps import CanReadOrders, Hub, Principal, require
from orderhub.entrypoints.api.schemas import Clean, LongText, MoneyText, NonBlank, Text
from orderhub.service_layer.inventory_queries import stock_view, warehouse_view

router = APIRouter(prefix="/api/v1", tags=["inventory"])

CanManageInventory = Annotated[Principal, Depends(require(Permission.INVENTORY_MANAGE))]

WarehouseCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32,
                                                 pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"), Clean]
Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Clean]
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_STOCK)]
Version = Annotated[int, Field(strict=True, ge=0)]
WarehousePath = Annotated[str, Path(min_length=1, max_length=32, description="warehouse code, e.g. HZ1"), Clean]
SkuPath = Annotated[str, Path(min_length=1, max_length=100, description="SKU, e.g. TEA-001"), Clean]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WarehouseIn(_In):
    """``POST /api/v1/warehouses``."""

    code: WarehouseCode = Field(examples=["HZ1"])
    name: NonBlank = Field(examples=["杭州仓"])
    province: Text | None = Field(default=None, examples=["浙江省"])
    city: Text | None = Field(default=None, examples=["杭州市"])
    lat: Annotated[Decimal, Field(ge=-90, le=90, decimal_places=6, allow_inf_nan=False)] | None = Field(
        default=None, examples=["30.2741"], description="latitude in degrees (up to 6 decimals)")
    lon: Annotated[Decimal, Field(ge=-180, le=180, decimal_places=6, allow_inf_nan=False)] | None = Field(
        default=None, examples=["120.1551"], description="longitude in degrees (up to 6 decimals)")
    on_time_rate: Annotated[Decimal, Field(ge=0, le=1, decimal_places=3, allow_inf_nan=False)] | None = Field(
        default=None, examples=["0.97"], description="share of orders shipped on time, 0..1 (default 1)")
    handling_cost: MoneyText | None = Field(default=None, examples=["3.50"],
                                            description="handling cost per order, decimal string in CNY")


class WarehouseOut(BaseModel):
    """A warehouse (coordinates and rate as decimal strings, cost in CNY minor units)."""

    id: str
    code: str
    name: str
    province: str | None
    city: str | None
    lat: str | None
    lon: str | None
    on_time_rate: str
    handling_cost: dict[str, Any]
    active: bool
    created_at: str


class WarehousePage(BaseModel):
    """``GET /api/v1/warehouses``."""

    items: list[WarehouseOut]


class StockSetIn(_In):
    """``PUT /api/v1/inventory/{warehouse_code}/{sku}``."""

    on_hand: Count = Field(examples=[10])
    safety_stock: Count | None = Field(default=None, description="kept back from what channels may sell")
    expected_version: Version | None = Field(default=None, description="the row's version as read (0: no row "
                                                                        "yet); a stale one is refused with 409")
    reason: LongText | None = None


class AdjustmentIn(_In):
    """``POST /api/v1/inventory/{warehouse_code}/{sku}/adjustments``."""

    kind: Literal["receipt", "count", "damage", "correction"]
    quantity: Annotated[int, Field(strict=True, ge=-MAX_STOCK, le=MAX_STOCK)] = Field(
        description="receipt, damage: units received or lost (> 0); correction: signed change of on_hand; "
                    "count: the counted figure")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), Clean]
    expected_version: Version | None = None


class StockTotals(BaseModel):
    """One SKU's figures summed over its warehouses."""

    on_hand: int
    reserved: int
    presale_reserved: int
    available: int
    safety_stock: int
    sellable: int


class StockOut(StockTotals):
    """A stock row: available = on_hand − reserved − presale_reserved; sellable subtracts safety stock."""

    warehouse: str
    sku: str
    version: int


class StockPage(BaseModel):
    """``GET /api/v1/inventory``."""

    items: list[StockOut]


class Availability(BaseModel):
    """``GET /api/v1/inventory/{sku}/availability``."""

    sku: str
    warehouses: list[StockOut]
    totals: StockTotals


class MovementOut(BaseModel):
    """One change of a stock row."""

    kind: str
    on_hand_delta: int
    reserved_delta: int
    presale_delta: int
    reason: str | None
    order_id: str | None
    reservation_id: str | None
    actor: str
    created_at: str


class MovementPage(BaseModel):
    """``GET /api/v1/inventory/{warehouse_code}/{sku}/movements``."""

    items: list[MovementOut]


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


# --------------------------------------------------------------------------- warehouses
@router.post("/warehouses", status_code=status.HTTP_201_CREATED, response_model=WarehouseOut)
def create_warehouse(body: WarehouseIn, principal: CanManageInventory, hub: Hub) -> dict[str, Any]:
    """Add a warehouse (inventory is tracked for the tenant from its first warehouse on)."""
    row = hub.bus.handle(commands.CreateWarehouse(
        actor=principal.actor(), code=body.code, name=body.name, province=body.province, city=body.city,
        lat=_decimal_text(body.lat), lon=_decimal_text(body.lon), on_time_rate=_decimal_text(body.on_time_rate),
        handling_cost=body.handling_cost))
    return warehouse_view(row)


@router.get("/warehouses", response_model=WarehousePage)
def list_warehouses(principal: CanReadOrders, hub: Hub) -> dict[str, Any]:
    """The tenant's warehouses by code."""
    return {"items": hub.queries.warehouses(principal.tenant_id)}


# --------------------------------------------------------------------------- stock
@router.get("/inventory", response_model=StockPage)
def list_inventory(principal: CanReadOrders, hub: Hub,
                   sku: Annotated[str | None, Query(max_length=100), Clean] = None,
                   warehouse: Annotated[str | None, Query(max_length=32, description="warehouse code"),
                                        Clean] = None) -> dict[str, Any]:
    """Stock rows by SKU then warehouse, optionally for one SKU and/or one warehouse."""
    return {"items": hub.queries.inventory(principal.tenant_id, sku=sku, warehouse=warehouse)}


@router.put("/inventory/{warehouse_code}/{sku}", response_model=StockOut)
def set_stock(warehouse_code: WarehousePath, sku: SkuPath, body: StockSetIn, principal: CanManageInventory,
              hub: Hub) -> dict[str, Any]:
    """Set on_hand (and safety stock); the difference is recorded as a count movement.

    409 ``stock_version_mismatch`` for a stale ``expected_version``; 422 ``invalid_stock``
    when on_hand would be less than is reserved for orders (nothing changes).
    """
    level: StockLevel = hub.bus.handle(commands.SetStock(
        actor=principal.actor(), warehouse=warehouse_code, sku=sku, on_hand=body.on_hand,
        safety_stock=body.safety_stock, expected_version=body.expected_version, reason=body.reason))
    return stock_view(level)


@router.post("/inventory/{warehouse_code}/{sku}/adjustments", response_model=StockOut)
def adjust_stock(warehouse_code: WarehousePath, sku: SkuPath, body: AdjustmentIn, principal: CanManageInventory,
                 hub: Hub) -> dict[str, Any]:
    """Post a receipt, count, damage or correction with its reason; answers the row after it."""
    level: StockLevel = hub.bus.handle(commands.AdjustStock(
        actor=principal.actor(), warehouse=warehouse_code, sku=sku, kind=body.kind, quantity=body.quantity,
        reason=body.reason, expected_version=body.expected_version))
    return stock_view(level)


@router.get("/inventory/{warehouse_code}/{sku}/movements", response_model=MovementPage)
def list_movements(warehouse_code: WarehousePath, sku: SkuPath, principal: CanReadOrders,
                   hub: Hub) -> dict[str, Any]:
    """The row's movements, oldest first (their sum is the row)."""
    return {"items": hub.queries.stock_movements(principal.tenant_id, warehouse_code, sku)}


@router.get("/inventory/{sku}/availability", response_model=Availability)
def availability(sku: SkuPath, principal: CanReadOrders, hub: Hub) -> dict[str, Any]:
    """One SKU in every warehouse that stocks it, with totals."""
    return hub.queries.availability(principal.tenant_id, sku)

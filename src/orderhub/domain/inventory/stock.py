"""Stock levels and the movements that change them (DESIGN.md §3).

available = on_hand − reserved − presale_reserved, and no figure is ever negative: the
database holds the same rule as CHECK constraints, and every reservation is a conditional
update that can't break it. Every change of a stock row is a :class:`Movement`, so the sum
of a row's movements always equals the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orderhub.domain.errors import InvalidStock

MAX_STOCK = 1_000_000_000


class MovementKind(StrEnum):
    """Why a stock row changed."""

    RECEIPT = "receipt"            # goods arrived: on_hand up
    COUNT = "count"                # a stock count set on_hand (delta = counted − before)
    DAMAGE = "damage"              # damaged or lost: on_hand down
    CORRECTION = "correction"      # an operator's correction, with a reason
    RESERVE = "reserve"            # an order line took stock: reserved up
    PRESALE_RESERVE = "presale_reserve"
    RELEASE = "release"            # cancelled order / repair: reserved down
    EXPIRE = "expire"              # an unpaid order's reservation ran out: reserved down
    SHIP = "ship"                  # handed to the carrier: on_hand and reserved down
    REPAIR = "repair"              # `inventory check --repair` fixing drift or a phantom
    RETURN = "return"              # an after-sale return came back sellable: on_hand up
    RETURN_DAMAGED = "return_damaged"  # came back damaged: into the damaged bucket, on_hand unchanged


# Kinds an operator may post as an adjustment (the rest come from orders and the system).
ADJUSTMENT_KINDS: frozenset[MovementKind] = frozenset(
    {MovementKind.RECEIPT, MovementKind.COUNT, MovementKind.DAMAGE, MovementKind.CORRECTION})


class Bucket(StrEnum):
    """Which reserved figure a reservation counts in."""

    STOCK = "stock"
    PRESALE = "presale"


@dataclass(frozen=True, slots=True)
class StockLevel:
    """One stock row: a SKU in a warehouse."""

    warehouse: str
    sku: str
    on_hand: int
    reserved: int = 0
    presale_reserved: int = 0
    safety_stock: int = 0
    version: int = 1

    @property
    def available(self) -> int:
        """What may still be reserved."""
        return self.on_hand - self.reserved - self.presale_reserved

    @property
    def sellable(self) -> int:
        """What channels may sell: available less the safety stock, never below zero."""
        return max(0, self.available - self.safety_stock)

    def check(self) -> None:
        """Raise InvalidStock when a figure is negative or more is reserved than is on hand."""
        for name in ("on_hand", "reserved", "presale_reserved", "safety_stock"):
            value = getattr(self, name)
            if value < 0:
                raise InvalidStock(f"{name}: must not be negative, got {value}", field=name)
            if value > MAX_STOCK:
                raise InvalidStock(f"{name}: {value} is above the limit of {MAX_STOCK}", field=name)
        if self.available < 0:
            raise InvalidStock(f"on_hand: {self.on_hand} is less than the {self.reserved + self.presale_reserved} "
                               f"units reserved for orders of {self.sku} in {self.warehouse}; release or ship "
                               "them first", field="on_hand")


@dataclass(frozen=True, slots=True)
class Movement:
    """One change of one stock row, with its reason; deltas may be negative."""

    warehouse: str
    sku: str
    kind: MovementKind
    on_hand_delta: int = 0
    reserved_delta: int = 0
    presale_delta: int = 0
    reason: str | None = None
    order_id: str | None = None
    reservation_id: str | None = None

    def applied_to(self, level: StockLevel) -> StockLevel:
        """The stock row after this movement; raises InvalidStock if it would break a rule."""
        after = StockLevel(level.warehouse, level.sku, level.on_hand + self.on_hand_delta,
                           level.reserved + self.reserved_delta, level.presale_reserved + self.presale_delta,
                           level.safety_stock, level.version + 1)
        after.check()
        return after

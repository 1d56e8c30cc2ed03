"""Command handlers for warehouses and stock (DESIGN.md §3, issue 4 scope 1 and 3).

Every change of a stock row locks it first (through ``uow.inventory.lock_stock``, the one
place rows are locked, so it queues behind orders reserving the same SKU instead of
deadlocking with them), is checked against what the row holds under that lock, leaves a
movement (the ledger each row sums to) and a ``StockChanged`` event (the audit chain), and
commits all of it together or nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy.exc import IntegrityError

from orderhub.adapters.db.errors import DuplicateKeyError, StaleVersionError
from orderhub.adapters.db.inventory import WarehouseRow
from orderhub.domain import ids
from orderhub.domain.commands import AdjustStock, CreateWarehouse, SetStock
from orderhub.domain.errors import DomainError, InvalidStock
from orderhub.domain.events import StockChanged, WarehouseCreated
from orderhub.domain.inventory.stock import ADJUSTMENT_KINDS, MAX_STOCK, Movement, MovementKind, StockLevel
from orderhub.domain.money import Money
from orderhub.service_layer.errors import (
    InvalidInput,
    StockNotFound,
    StockVersionMismatch,
    WarehouseAlreadyExists,
    WarehouseNotFound,
)
from orderhub.service_layer.inventory import publish_touched
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

# Warehouse codes go into URLs (/inventory/{warehouse}/{sku}) and audit subjects: keep them
# short and URL-safe.
WAREHOUSE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
MAX_SKU = 100
MAX_NAME = 200
MAX_PLACE = 100
MAX_REASON = 500
# audit_events.subject_id holds 100 characters and a stock row's subject is "<warehouse>/<sku>".
MAX_SUBJECT = 100
# Handling costs are compared across a tenant's warehouses by the allocation score, so they
# share one unit: CNY minor units (fen).
HANDLING_COST_CURRENCY = "CNY"
SET_KIND = "set"


# --------------------------------------------------------------------------- input checks
def _text(value: str | None, field: str, *, limit: int, required: bool = False) -> str | None:
    if value is None or not value.strip():
        if required:
            raise InvalidInput(f"{field}: must not be empty", field=field)
        return None
    text = value.strip()
    if len(text) > limit:
        raise InvalidInput(f"{field}: at most {limit} characters, got {len(text)}", field=field)
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise InvalidInput(f"{field}: must not contain control characters", field=field)
    return text


def _sku(value: str, warehouse: str) -> str:
    sku = _text(value, "sku", limit=MAX_SKU, required=True)
    assert sku is not None
    if len(warehouse) + 1 + len(sku) > MAX_SUBJECT:
        # The audit subject "<warehouse>/<sku>" must fit its column; refusing here beats a
        # database error at commit on PostgreSQL.
        raise InvalidInput(f"sku: {len(sku)} characters is too long for warehouse {warehouse!r} "
                           f"(code and SKU together: at most {MAX_SUBJECT - 1})", field="sku")
    return sku


def _count(value: int, field: str, *, allow_negative: bool = False) -> int:
    # bool is an int subclass: True must not set on_hand to 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field}: must be a whole number, got {value!r}", field=field)
    if value < 0 and not allow_negative:
        raise InvalidStock(f"{field}: must not be negative, got {value}", field=field)
    if abs(value) > MAX_STOCK:
        raise InvalidStock(f"{field}: {value} is beyond the limit of {MAX_STOCK}", field=field)
    return value


def _version(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"expected_version: must be a whole number ≥ 0, got {value!r}", field="expected_version")
    return value


def _decimal(value: str | None, field: str) -> Decimal | None:
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    if len(text) > 40:
        raise InvalidInput(f"{field}: {text[:40]!r}… is not a decimal number", field=field)
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidInput(f"{field}: {text!r} is not a decimal number", field=field) from exc
    if not number.is_finite():
        raise InvalidInput(f"{field}: {text!r} is not a finite number", field=field)
    return number


def _scaled(value: str | None, field: str, *, scale: int, low: Decimal, high: Decimal, unit: str) -> int | None:
    """``value`` (decimal text) times ``scale``, exactly: refuses what would need rounding."""
    number = _decimal(value, field)
    if number is None:
        return None
    if not low <= number <= high:
        raise InvalidInput(f"{field}: {value} is outside {low}..{high}", field=field)
    scaled = number * scale
    if scaled != scaled.to_integral_value():
        raise InvalidInput(f"{field}: {value} has more decimal places than {unit} can hold", field=field)
    return int(scaled)


def _handling_cost(value: str | None) -> int:
    if value is None or not str(value).strip():
        return 0
    try:
        cost = Money.parse(str(value), HANDLING_COST_CURRENCY, field="handling_cost")
    except DomainError as exc:
        raise InvalidInput(exc.message, field="handling_cost") from exc
    if cost.is_negative:
        raise InvalidInput(f"handling_cost: must not be negative, got {value}", field="handling_cost")
    return cost.amount


# --------------------------------------------------------------------------- warehouses
def create_warehouse(cmd: CreateWarehouse, uow: SqlAlchemyUnitOfWork) -> WarehouseRow:
    """Add a warehouse to the caller's tenant (inventory is on for a tenant from its first).

    Raises InvalidInput with the field path for a bad code, name, coordinate, rate or cost,
    and WarehouseAlreadyExists when the code is taken.
    """
    code = cmd.code.strip() if isinstance(cmd.code, str) else ""
    if not WAREHOUSE_CODE.fullmatch(code):
        raise InvalidInput(f"code: {cmd.code!r} is not a warehouse code (1 to 32 letters, digits, '.', '_' or "
                           "'-', starting with a letter or digit)", field="code")
    name = _text(cmd.name, "name", limit=MAX_NAME, required=True)
    assert name is not None
    province = _text(cmd.province, "province", limit=MAX_PLACE)
    city = _text(cmd.city, "city", limit=MAX_PLACE)
    lat = _scaled(cmd.lat, "lat", scale=1_000_000, low=Decimal(-90), high=Decimal(90), unit="micro-degrees")
    lon = _scaled(cmd.lon, "lon", scale=1_000_000, low=Decimal(-180), high=Decimal(180), unit="micro-degrees")
    if (lat is None) != (lon is None):
        missing = "lon" if lon is None else "lat"
        raise InvalidInput(f"{missing}: give both lat and lon, or neither", field=missing)
    on_time = _scaled(cmd.on_time_rate, "on_time_rate", scale=1000, low=Decimal(0), high=Decimal(1),
                      unit="a per-mille rate")
    with uow:
        uow.act_as(cmd.actor)
        now = uow.clock.now()
        row = WarehouseRow(id=ids.new_id("wh"), tenant_id=cmd.actor.tenant_id, code=code, name=name,
                           province=province, city=city, lat_e6=lat, lon_e6=lon,
                           on_time_permille=1000 if on_time is None else on_time,
                           handling_cost_minor=_handling_cost(cmd.handling_cost), active=True, created_at=now)
        try:
            uow.inventory.add_warehouse(row)
        except DuplicateKeyError as exc:
            raise WarehouseAlreadyExists(f"warehouse code {code!r} is already used in this tenant",
                                         field="code") from exc
        uow.record(WarehouseCreated(tenant_id=row.tenant_id, warehouse_id=row.id, code=row.code, name=row.name,
                                    occurred_at=now))
        uow.commit()
    return row


def _warehouse(uow: SqlAlchemyUnitOfWork, tenant_id: str, code: str) -> WarehouseRow:
    house = uow.inventory.warehouse(tenant_id, code.strip()) if isinstance(code, str) else None
    if house is None:
        raise WarehouseNotFound(f"no warehouse with code {code!r}; add it with POST /api/v1/warehouses "
                                "(or `orderhub warehouses add`)", field="warehouse")
    return house


def _check_version(level: StockLevel | None, expected: int | None, house: WarehouseRow, sku: str) -> None:
    current = level.version if level is not None else 0
    if expected is not None and current != expected:
        raise StockVersionMismatch(f"stock {sku} in {house.code} is at version {current}, not {expected}; "
                                   "reload the row and retry", field="expected_version",
                                   extra={"current_version": current})


def _as_code(level: StockLevel, house: WarehouseRow) -> StockLevel:
    return StockLevel(house.code, level.sku, level.on_hand, level.reserved, level.presale_reserved,
                      level.safety_stock, level.version)


def _write(uow: SqlAlchemyUnitOfWork, house: WarehouseRow, sku: str, seen: StockLevel | None, *, on_hand: int,
           safety_stock: int | None, now: datetime) -> StockLevel:
    """Write the row the caller locked and checked as ``seen``, only if it still is that.

    A row that didn't exist when it was locked had nothing to lock: a concurrent request may
    create it first, and the checks were made on "no row". The write then either finds the
    row at another version or collides with its key; both are refused as stale.
    """
    try:
        _, after = uow.inventory.set_stock(house.tenant_id, house.id, sku, on_hand=on_hand,
                                           safety_stock=safety_stock,
                                           expected_version=seen.version if seen is not None else 0, now=now)
    except (StaleVersionError, DuplicateKeyError, IntegrityError) as exc:
        # IntegrityError: the repository's insert doesn't translate a key collision (yet).
        raise _RowCreatedMeanwhile(f"stock {sku} in {house.code} was created by another request at "
                                   "the same moment; reload the row and retry", field="expected_version",
                                   extra={"current_version": None}) from exc
    return after


class _RowCreatedMeanwhile(StockVersionMismatch):
    """A stock row that didn't exist when it was locked was created by another transaction
    before this one wrote it (retried when the caller named no version)."""


# A creation race is retried this many times before the caller is told (each retry locks the
# row the winner created, so the second attempt practically always succeeds).
CREATE_ATTEMPTS = 3


def _retry_creation(attempt: Callable[[], StockLevel], expected_version: int | None) -> StockLevel:
    """Run ``attempt`` (one transaction); when it lost a race to create the row and the
    caller named no version, run it again: it then locks the row the winner created."""
    for _ in range(CREATE_ATTEMPTS - 1):
        try:
            return attempt()
        except _RowCreatedMeanwhile:
            if expected_version is not None:
                raise
    return attempt()


# --------------------------------------------------------------------------- stock
@dataclass(frozen=True, slots=True)
class _Row:
    """A stock row being written: its tenant, warehouse and SKU, locked, as it was."""

    tenant: str
    now: datetime
    house: WarehouseRow
    sku: str
    before: StockLevel | None


def _open_row(uow: SqlAlchemyUnitOfWork, cmd: SetStock | AdjustStock) -> _Row:
    """Inside ``uow``: act as the command's actor, find the warehouse, lock the row."""
    tenant = cmd.actor.tenant_id
    uow.act_as(cmd.actor)
    house = _warehouse(uow, tenant, cmd.warehouse)
    sku = _sku(cmd.sku, house.code)
    key = (house.id, sku)
    return _Row(tenant, uow.clock.now(), house, sku, uow.inventory.lock_stock(tenant, keys=[key]).get(key))


def _commit_change(uow: SqlAlchemyUnitOfWork, row: _Row, after: StockLevel, *, delta: int, movement: MovementKind,
                   event_kind: str, reason: str | None) -> None:
    """The movement (when on_hand moved), the audit entry, the channel feed, commit."""
    if delta:
        uow.inventory.add_movements(row.tenant, [Movement(row.house.id, row.sku, movement, on_hand_delta=delta,
                                                          reason=reason)], actor=uow.actor.actor, now=row.now)
    uow.record(StockChanged(tenant_id=row.tenant, warehouse=row.house.code, sku=row.sku, kind=event_kind,
                            on_hand_before=row.before.on_hand if row.before else None, on_hand_after=after.on_hand,
                            safety_stock=after.safety_stock, reason=reason, occurred_at=row.now))
    publish_touched(uow)  # what each channel may sell changed with the row
    uow.commit()


def set_stock(cmd: SetStock, uow: SqlAlchemyUnitOfWork) -> StockLevel:
    """Set a stock row's on_hand (and safety stock), creating the row if it is new.

    The difference to what the row held is a ``count`` movement. Refuses (nothing changed)
    a stale ``expected_version`` (StockVersionMismatch) and less on hand than is reserved
    for orders (InvalidStock naming ``on_hand``). Returns the row, warehouse by code.
    """
    on_hand = _count(cmd.on_hand, "on_hand")
    safety = None if cmd.safety_stock is None else _count(cmd.safety_stock, "safety_stock")
    expected = _version(cmd.expected_version)
    reason = _text(cmd.reason, "reason", limit=MAX_REASON)
    return _retry_creation(
        lambda: _set_once(cmd, uow, on_hand=on_hand, safety=safety, expected=expected, reason=reason), expected)


def _set_once(cmd: SetStock, uow: SqlAlchemyUnitOfWork, *, on_hand: int, safety: int | None,
              expected: int | None, reason: str | None) -> StockLevel:
    with uow:
        row = _open_row(uow, cmd)
        now, house, sku, before = row.now, row.house, row.sku, row.before
        _check_version(before, expected, house, sku)
        current = before or StockLevel(house.id, sku, 0, version=0)
        target = StockLevel(house.code, sku, on_hand, current.reserved, current.presale_reserved,
                            current.safety_stock if safety is None else safety, current.version + 1)
        target.check()
        if before is not None and (target.on_hand, target.safety_stock) == (before.on_hand, before.safety_stock):
            return _as_code(before, house)  # nothing to change: no new version, no audit entry
        after = _write(uow, house, sku, before, on_hand=on_hand, safety_stock=safety, now=now)
        _commit_change(uow, row, after, delta=on_hand - current.on_hand, movement=MovementKind.COUNT,
                       event_kind=SET_KIND, reason=reason)
    return _as_code(after, house)


def _adjustment_delta(kind: MovementKind, quantity: int, before: StockLevel | None) -> int:
    """The change of on_hand an adjustment asks for (``quantity`` read the way ``kind`` says)."""
    if kind is MovementKind.COUNT:
        _count(quantity, "quantity")
        return quantity - (before.on_hand if before else 0)
    if kind is MovementKind.CORRECTION:
        _count(quantity, "quantity", allow_negative=True)
        if quantity == 0:
            raise InvalidInput("quantity: a correction changes on_hand by a non-zero number of units",
                               field="quantity")
        return quantity
    _count(quantity, "quantity")
    if quantity == 0:
        raise InvalidInput(f"quantity: a {kind.value} moves at least one unit", field="quantity")
    return quantity if kind is MovementKind.RECEIPT else -quantity


def adjust_stock(cmd: AdjustStock, uow: SqlAlchemyUnitOfWork) -> StockLevel:
    """Post an adjustment with its reason: ``receipt`` (``quantity`` units arrived; creates
    the row), ``count`` (``quantity`` is the counted figure; creates the row), ``damage``
    (``quantity`` units lost) or ``correction`` (``quantity`` is a signed delta).

    Refuses, with nothing changed: an unknown kind or a blank reason (InvalidInput), an
    unknown warehouse (WarehouseNotFound), damage or a correction on a row that doesn't
    exist (StockNotFound), a stale ``expected_version`` (StockVersionMismatch), and taking
    on_hand below what is reserved for orders (InvalidStock naming ``quantity``).
    """
    try:
        kind = MovementKind(cmd.kind)
    except ValueError:
        kind = None
    if kind not in ADJUSTMENT_KINDS:
        names = ", ".join(sorted(k.value for k in ADJUSTMENT_KINDS))
        raise InvalidInput(f"kind: {cmd.kind!r} is not an adjustment; expected one of: {names}", field="kind")
    assert kind is not None
    reason = _text(cmd.reason, "reason", limit=MAX_REASON, required=True)
    expected = _version(cmd.expected_version)
    _count(cmd.quantity, "quantity", allow_negative=True)
    return _retry_creation(lambda: _adjust_once(cmd, uow, kind=kind, reason=reason, expected=expected), expected)


def _adjust_once(cmd: AdjustStock, uow: SqlAlchemyUnitOfWork, *, kind: MovementKind, reason: str | None,
                 expected: int | None) -> StockLevel:
    with uow:
        row = _open_row(uow, cmd)
        tenant, now, house, sku, before = row.tenant, row.now, row.house, row.sku, row.before
        if before is None and kind in (MovementKind.DAMAGE, MovementKind.CORRECTION):
            raise StockNotFound(f"warehouse {house.code} has no stock of {sku!r} to {kind.value}; "
                                "post a receipt or a count first", field="sku")
        _check_version(before, expected, house, sku)
        delta = _adjustment_delta(kind, cmd.quantity, before)
        current = before or StockLevel(house.id, sku, 0, version=0)
        held = current.reserved + current.presale_reserved
        if current.on_hand + delta < held:
            raise InvalidStock(f"quantity: a {kind.value} of {cmd.quantity} would leave {current.on_hand + delta} "
                               f"of {sku} on hand in {house.code}, less than the {held} reserved for orders "
                               f"(available: {current.available}); release or ship them first", field="quantity")
        if current.on_hand + delta > MAX_STOCK:
            raise InvalidStock(f"quantity: on_hand would be {current.on_hand + delta}, beyond the limit of "
                               f"{MAX_STOCK}", field="quantity")
        if before is None:
            after = _write(uow, house, sku, None, on_hand=delta, safety_stock=None, now=now)
        else:
            if delta and not uow.inventory.change_on_hand(tenant, house.id, sku, delta, now=now):
                # Can't happen while we hold the row's lock and checked it above.
                raise RuntimeError(f"stock {sku} in {house.code} changed under its lock")
            after = StockLevel(house.id, sku, before.on_hand + delta, before.reserved, before.presale_reserved,
                               before.safety_stock, before.version + (1 if delta else 0))
        # A count that finds what the row says is still a fact worth keeping in the audit chain.
        _commit_change(uow, row, after, delta=delta, movement=kind, event_kind=kind.value, reason=reason)
    return _as_code(after, house)

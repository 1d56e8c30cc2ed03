"""The inventory self-check (`orderhub inventory check [--repair]`, issue 4 scope 7) and
the read side of the phantom reservation metric.

The check compares, per tenant:

* each stock row's ``reserved`` / ``presale_reserved`` with the sum of its ACTIVE
  reservations (what open demand holds);
* each stock row with the sum of its movements (the ledger it must equal);
* active reservations whose order is cancelled, shipped (delivered, completed) or gone:
  *phantoms*, stock held for nobody.

The repair runs in one transaction per tenant. It closes phantoms first (released for a
cancelled or missing order, consumed for a shipped one), then locks every concerned stock
row (through ``lock_stock``, in primary-key order) and fixes what still differs: the
reservations are the truth for the reserved figures, the row for ``on_hand``; a REPAIR
movement makes the ledger sum to the row again and a ``StockChanged`` event (kind
``repair``) puts each fix in the audit chain; the channel stock feed of the repaired SKUs
goes out in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from orderhub.adapters.db.inventory import SqlInventoryRepository, StockKey
from orderhub.domain.events import ReservationsClosed, StockChanged
from orderhub.domain.inventory.reservations import Reservation, ReservationStatus, reservation_transition
from orderhub.domain.inventory.stock import Bucket, Movement, MovementKind, StockLevel
from orderhub.domain.orders.states import OrderStatus
from orderhub.service_layer.channel_feed import publish_stock_feed
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

# What a phantom's order status asks for: its stock goes back, or left with the parcel.
PHANTOM_TARGET: dict[OrderStatus, ReservationStatus] = {
    OrderStatus.CANCELLED: ReservationStatus.RELEASED,
    OrderStatus.SHIPPED: ReservationStatus.CONSUMED,
    OrderStatus.DELIVERED: ReservationStatus.CONSUMED,
    OrderStatus.COMPLETED: ReservationStatus.CONSUMED,
}
GONE = "gone"
# Paid orders whose goods haven't left: what the phantom reservation rate counts.
PAID_UNSHIPPED: frozenset[OrderStatus] = frozenset(
    {OrderStatus.PAID, OrderStatus.ON_HOLD, OrderStatus.READY_TO_SHIP, OrderStatus.PARTIALLY_SHIPPED})
FIGURES = ("on_hand", "reserved", "presale_reserved")


@dataclass(frozen=True, slots=True)
class ReservedDrift:
    """A stock row whose reserved figure of ``bucket`` differs from its active reservations."""

    warehouse: str          # code
    warehouse_id: str
    sku: str
    bucket: str             # stock | presale
    row: int                # what the row holds
    reservations: int       # what its active reservations add up to

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"warehouse": self.warehouse, "sku": self.sku, "bucket": self.bucket, "row": self.row,
                "reservations": self.reservations, "difference": self.row - self.reservations}


@dataclass(frozen=True, slots=True)
class LedgerDrift:
    """A stock row figure that differs from the sum of the row's movements."""

    warehouse: str
    warehouse_id: str
    sku: str
    figure: str             # on_hand | reserved | presale_reserved
    row: int                # None-rows (movements without a row) count as 0
    movements: int

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"warehouse": self.warehouse, "sku": self.sku, "figure": self.figure, "row": self.row,
                "movements": self.movements, "difference": self.row - self.movements}


@dataclass(frozen=True, slots=True)
class Phantom:
    """An active reservation held for an order that no longer needs it."""

    reservation_id: str
    order_id: str
    order_status: str       # the order's status, or "gone"
    warehouse: str
    warehouse_id: str
    sku: str
    bucket: str
    quantity: int

    @property
    def target(self) -> ReservationStatus:
        """How the repair closes it: consumed when the goods shipped, released otherwise."""
        try:
            return PHANTOM_TARGET[OrderStatus(self.order_status)]
        except ValueError:  # "gone" (or a status this version doesn't know): give the stock back
            return ReservationStatus.RELEASED

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"reservation": self.reservation_id, "order_id": self.order_id, "order_status": self.order_status,
                "warehouse": self.warehouse, "sku": self.sku, "bucket": self.bucket, "quantity": self.quantity,
                "repair": self.target.value}


@dataclass(frozen=True, slots=True)
class TenantCheck:
    """What the check found for one tenant."""

    tenant_id: str
    rows: int
    reserved_drift: tuple[ReservedDrift, ...]
    ledger_drift: tuple[LedgerDrift, ...]
    phantoms: tuple[Phantom, ...]

    @property
    def problems(self) -> int:
        """How many findings (0: the tenant's stock is consistent)."""
        return len(self.reserved_drift) + len(self.ledger_drift) + len(self.phantoms)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return self.problems == 0

    def keys(self) -> set[StockKey]:
        """Every stock row a finding concerns."""
        found = {(d.warehouse_id, d.sku) for d in self.reserved_drift}
        found |= {(d.warehouse_id, d.sku) for d in self.ledger_drift}
        return found | {(p.warehouse_id, p.sku) for p in self.phantoms}

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"tenant_id": self.tenant_id, "ok": self.ok, "rows": self.rows, "problems": self.problems,
                "reserved_drift": [d.to_json() for d in self.reserved_drift],
                "ledger_drift": [d.to_json() for d in self.ledger_drift],
                "phantoms": [p.to_json() for p in self.phantoms]}


@dataclass(frozen=True, slots=True)
class RowRepair:
    """One stock row the repair changed: its reserved figures (before → after) and the
    REPAIR movement that brought its ledger back to the row."""

    warehouse: str
    sku: str
    reserved: tuple[int, int]
    presale_reserved: tuple[int, int]
    movement: tuple[int, int, int]      # (on_hand, reserved, presale) deltas; zeros: none written

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"warehouse": self.warehouse, "sku": self.sku, "reserved": list(self.reserved),
                "presale_reserved": list(self.presale_reserved),
                "movement": dict(zip(("on_hand", "reserved", "presale"), self.movement, strict=True))}


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What ``--repair`` found, did, and what the check says after it (same transaction)."""

    before: TenantCheck
    phantoms_closed: int
    repairs: tuple[RowRepair, ...]
    unrepaired: tuple[str, ...]
    after: TenantCheck

    @property
    def ok(self) -> bool:
        """True when the tenant's stock is consistent now."""
        return self.after.ok

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {"tenant_id": self.before.tenant_id, "ok": self.ok, "found": self.before.to_json(),
                "phantoms_closed": self.phantoms_closed, "repairs": [r.to_json() for r in self.repairs],
                "unrepaired": list(self.unrepaired), "remaining": self.after.to_json()}


# --------------------------------------------------------------------------- check
def inspect(inventory: SqlInventoryRepository, tenant_id: str) -> TenantCheck:
    """Compare the tenant's stock rows with their reservations and movements, and list
    phantom reservations (reads only; figures as this connection sees them)."""
    codes = {w.id: w.code for w in inventory.warehouses(tenant_id)}
    levels = inventory.levels(tenant_id)
    active = inventory.active_sums(tenant_id)
    ledger = inventory.movement_sums(tenant_id)
    reserved_drift: list[ReservedDrift] = []
    ledger_drift: list[LedgerDrift] = []
    keys = sorted(set(levels) | set(ledger) | {key for key, _ in active})
    for key in keys:
        wid, sku = key
        code = codes.get(wid, wid)
        level = levels.get(key) or StockLevel(wid, sku, 0)
        for bucket, held in ((Bucket.STOCK, level.reserved), (Bucket.PRESALE, level.presale_reserved)):
            want = active.get((key, bucket.value), 0)
            if held != want:
                reserved_drift.append(ReservedDrift(code, wid, sku, bucket.value, held, want))
        sums = ledger.get(key, (0, 0, 0))
        for figure, held, summed in zip(FIGURES, (level.on_hand, level.reserved, level.presale_reserved), sums,
                                        strict=True):
            if held != summed:
                ledger_drift.append(LedgerDrift(code, wid, sku, figure, held, summed))
    phantoms = tuple(
        Phantom(r.id, r.order_id, status or GONE, codes.get(r.warehouse, r.warehouse), r.warehouse, r.sku,
                r.bucket.value, r.quantity)
        for r, status in inventory.phantom_candidates(tenant_id, [s.value for s in PHANTOM_TARGET]))
    return TenantCheck(tenant_id, len(levels), tuple(reserved_drift), tuple(ledger_drift), phantoms)


@contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    # A read connection like the Queries' one: it ends with COMMIT (it wrote nothing), which
    # on psycopg 3 keeps the connection's prepared statements.
    with engine.connect() as conn:
        yield conn
        if conn.in_transaction():
            conn.commit()


def check_inventory(engine: Engine, tenant_id: str) -> TenantCheck:
    """The self-check of one tenant, on a read connection (changes nothing)."""
    with _reading(engine) as conn:
        return inspect(SqlInventoryRepository(conn), tenant_id)


# --------------------------------------------------------------------------- repair
def repair_inventory(uow: SqlAlchemyUnitOfWork, tenant_id: str) -> RepairReport:
    """Check the tenant and fix what was found, in one transaction (see the module
    docstring). Drift that can't be fixed safely — active reservations adding up to more
    than a row has on hand — is left as it is and listed in ``unrepaired``.

    Act as someone first (``uow.act_as``): every movement and audit entry names the actor.
    """
    with uow:
        repo = uow.inventory
        now = uow.clock.now()
        before = inspect(repo, tenant_id)
        if before.ok:
            return RepairReport(before, 0, (), (), before)
        codes = {w.id: w.code for w in repo.warehouses(tenant_id)}
        # Reservations are taken before their rows are locked: the order every closer uses.
        taken: list[tuple[Reservation, Phantom]] = []
        by_id = {p.reservation_id: p for p in before.phantoms}
        for target in (ReservationStatus.RELEASED, ReservationStatus.CONSUMED):
            reservation_transition(ReservationStatus.ACTIVE, target)
            wanted = [p.reservation_id for p in before.phantoms if p.target is target]
            taken += [(r, by_id[r.id]) for r in repo.take_reservations(tenant_id, wanted, target, now=now)]
        keys = before.keys()
        skus = {sku for _, sku in keys}
        # Every row of the concerned SKUs, in one call (primary-key order): the channel feed
        # below reads them all, and locking more later could wait behind a row held crosswise.
        repo.lock_stock(tenant_id, skus=skus, keys=keys)
        closed = _close_phantoms(uow, tenant_id, taken)
        repairs, unrepaired = _fix_rows(uow, tenant_id, keys, codes)
        # Repaired figures change what channels may sell: tell them in the same transaction.
        publish_stock_feed(uow, tenant_id, skus)
        after = inspect(repo, tenant_id)
        uow.commit()
    return RepairReport(before, closed, tuple(repairs), tuple(unrepaired), after)


def _close_phantoms(uow: SqlAlchemyUnitOfWork, tenant_id: str, taken: list[tuple[Reservation, Phantom]]) -> int:
    """Give back (or consume) the stock of the phantom reservations taken, with REPAIR
    movements and a ReservationsClosed event per order (its timeline shows the repair)."""
    now = uow.clock.now()
    moves: list[Movement] = []
    items: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r, phantom in taken:
        target = phantom.target
        consume = target is ReservationStatus.CONSUMED
        reason = f"inventory check: phantom reservation of a {phantom.order_status} order"
        if not uow.inventory.unreserve(tenant_id, r.warehouse, r.sku, r.quantity, r.bucket, consume=consume,
                                       now=now):
            # The row holds less than this reservation: closing it is enough, the row fix below
            # sets the reserved figure from the reservations still active.
            items[(r.order_id, target.value)].append({"reservation": r.id, "sku": r.sku, "quantity": r.quantity,
                                                      "drift": True})
            continue
        moves.append(Movement(r.warehouse, r.sku, MovementKind.REPAIR, on_hand_delta=-r.quantity if consume else 0,
                              reserved_delta=-r.quantity if r.bucket is Bucket.STOCK else 0,
                              presale_delta=-r.quantity if r.bucket is Bucket.PRESALE else 0, reason=reason,
                              order_id=r.order_id, reservation_id=r.id))
        items[(r.order_id, target.value)].append({"reservation": r.id, "warehouse": r.warehouse, "sku": r.sku,
                                                  "quantity": r.quantity, "repair": True})
    uow.inventory.add_movements(tenant_id, moves, actor=uow.actor.actor, now=now)
    for (order_id, status), closed in sorted(items.items()):
        uow.record(ReservationsClosed(tenant_id=tenant_id, order_id=order_id, status=status, items=tuple(closed),
                                      occurred_at=now))
    return len(taken)


def _fix_rows(uow: SqlAlchemyUnitOfWork, tenant_id: str, keys: set[StockKey], codes: dict[str, str]
              ) -> tuple[list[RowRepair], list[str]]:
    """Under the rows' locks: reserved figures from the active reservations, then one REPAIR
    movement per row so its ledger sums to it again."""
    repo = uow.inventory
    now = uow.clock.now()
    levels = repo.lock_stock(tenant_id, keys=keys)  # held already: this re-reads them after the closes
    active = repo.active_sums(tenant_id)
    ledger = repo.movement_sums(tenant_id)
    repairs: list[RowRepair] = []
    unrepaired: list[str] = []
    moves: list[Movement] = []
    for key in sorted(keys):
        wid, sku = key
        code = codes.get(wid, wid)
        level = levels.get(key)
        want = (active.get((key, Bucket.STOCK.value), 0), active.get((key, Bucket.PRESALE.value), 0))
        if level is None:
            if any(want):
                unrepaired.append(f"{code}/{sku}: {sum(want)} units are reserved but there is no stock row")
            target = (0, 0, 0)
            current = (0, 0)
        else:
            current = (level.reserved, level.presale_reserved)
            target = (level.on_hand, *current)
            if want != current:
                if repo.set_reserved(tenant_id, wid, sku, reserved=want[0], presale_reserved=want[1], now=now):
                    target = (level.on_hand, *want)
                else:
                    unrepaired.append(f"{code}/{sku}: active reservations hold {sum(want)} units but only "
                                      f"{level.on_hand} are on hand; release or cancel orders, or count the stock")
        sums = ledger.get(key, (0, 0, 0))
        delta = (target[0] - sums[0], target[1] - sums[1], target[2] - sums[2])
        if not any(delta) and target[1:] == current:
            continue
        reason = "inventory check: ledger and reserved figures repaired"
        if any(delta):
            moves.append(Movement(wid, sku, MovementKind.REPAIR, on_hand_delta=delta[0], reserved_delta=delta[1],
                                  presale_delta=delta[2], reason=reason))
        repairs.append(RowRepair(code, sku, (current[0], target[1]), (current[1], target[2]), delta))
        if level is not None:
            uow.record(StockChanged(tenant_id=tenant_id, warehouse=code, sku=sku, kind=MovementKind.REPAIR.value,
                                    on_hand_before=level.on_hand, on_hand_after=level.on_hand,
                                    safety_stock=level.safety_stock,
                                    reason=f"{reason}: reserved {current[0]}→{target[1]}, presale "
                                           f"{current[1]}→{target[2]}, movement {delta}",
                                    occurred_at=now))
    repo.add_movements(tenant_id, moves, actor=uow.actor.actor, now=now)
    return repairs, unrepaired


# --------------------------------------------------------------------------- metric
@dataclass(frozen=True, slots=True)
class TenantStockFigures:
    """A tenant's figures for the phantom reservation metric (the rate itself is computed
    by adapters/inventory_metrics.py at scrape time)."""

    tenant_id: str
    available: int
    reserved_paid_unshipped: int


def stock_figures(engine: Engine) -> list[TenantStockFigures]:
    """Per tenant with stock or held units: the metric's figures (reads only, by tenant id)."""
    with _reading(engine) as conn:
        figures = SqlInventoryRepository(conn).stock_figures([s.value for s in PAID_UNSHIPPED])
    return [TenantStockFigures(t, available, held) for t, (available, held) in sorted(figures.items())]

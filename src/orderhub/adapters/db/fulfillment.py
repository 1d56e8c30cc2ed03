"""Repositories of fulfillment: carrier accounts, shipments and their lines, warehouse
scans, tracking events, devices and operator locks.

Shipments are saved with an optimistic version check (``UPDATE … WHERE version = loaded``):
a scan and a tracking push racing on the same parcel can't both win, the loser retries on
the fresh row. Inbound duplicates are decided by UNIQUE keys: a scan by (tenant, scan id),
a tracking event by (tenant, dedup key).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from orderhub.adapters.db.engine import insert_unless_duplicate
from orderhub.adapters.db.errors import DuplicateKeyError, StaleVersionError
from orderhub.adapters.db.tables import (
    carrier_accounts,
    device_sightings,
    devices,
    operator_locks,
    orders,
    scan_rejections,
    shipment_lines,
    shipment_scans,
    shipments,
    tracking_events,
    warehouses,
)
from orderhub.domain.fulfillment.scanning import ShipmentLine
from orderhub.domain.fulfillment.shipment import Shipment
from orderhub.domain.fulfillment.states import LineKind, ShipmentStatus
from orderhub.domain.tracking.milestones import Milestone

# PostgreSQL's deadlock and serialization failures: the transaction lost a race, retrying wins.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})

# Shipments that a carrier still moves: stall checks and tracking polls look at these.
MOVING = (ShipmentStatus.HANDED_OVER, ShipmentStatus.IN_TRANSIT, ShipmentStatus.OUT_FOR_DELIVERY,
          ShipmentStatus.EXCEPTION, ShipmentStatus.RETURNING)


@dataclass(frozen=True, slots=True)
class CarrierAccountRow:
    """A tenant's account with a carrier (secrets included: never returned by the API)."""

    tenant_id: str
    carrier: str
    protocol: str
    api_base_url: str
    api_key: str
    push_secret: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TrackingEventRow:
    """One carrier event as stored (``milestone`` None: an unknown code)."""

    tenant_id: str
    dedup_key: str
    shipment_id: str
    carrier: str
    waybill_no: str
    code: str
    description: str
    location: str | None
    occurred_at: datetime
    milestone: str | None
    sub_status: str | None
    outcome: str
    source: str
    raw: dict[str, Any]
    received_at: datetime


def _line(row: Any) -> ShipmentLine:
    return ShipmentLine(line_no=row.line_no, sku=row.sku, quantity=int(row.quantity), kind=LineKind(row.kind),
                        barcode=row.barcode, unit_weight_g=int(row.unit_weight_g), picked=int(row.picked),
                        verified=int(row.verified))


def _shipment(row: Any, lines: list[ShipmentLine]) -> Shipment:
    return Shipment(
        id=row.id, tenant_id=row.tenant_id, order_id=row.order_id, warehouse=row.warehouse, lines=lines,
        status=ShipmentStatus(row.status), version=row.version, created_at=row.created_at, updated_at=row.updated_at,
        carrier=row.carrier, service=row.service, routing_rule=row.routing_rule, wave=row.wave,
        priority=row.priority, waybill_no=row.waybill_no, expected_weight_g=int(row.expected_weight_g),
        weight_g=None if row.weight_g is None else int(row.weight_g), weight_flagged=row.weight_flagged,
        milestone=Milestone(row.milestone) if row.milestone else None, sub_status=row.sub_status,
        last_event_at=row.last_event_at, last_progress_at=row.last_progress_at, stall_level=row.stall_level,
        compensation_flag=row.compensation_flag, handed_over_at=row.handed_over_at, delivered_at=row.delivered_at,
        cancel_reason=row.cancel_reason)


def _columns(s: Shipment) -> dict[str, Any]:
    return {
        "order_id": s.order_id, "warehouse": s.warehouse, "status": s.status.value, "version": s.version,
        "carrier": s.carrier, "service": s.service, "routing_rule": s.routing_rule, "wave": s.wave,
        "priority": s.priority, "waybill_no": s.waybill_no, "expected_weight_g": s.expected_weight_g,
        "weight_g": s.weight_g, "weight_flagged": s.weight_flagged,
        "milestone": s.milestone.value if s.milestone else None, "sub_status": s.sub_status,
        "last_event_at": s.last_event_at, "last_progress_at": s.last_progress_at, "stall_level": s.stall_level,
        "compensation_flag": s.compensation_flag, "created_at": s.created_at, "updated_at": s.updated_at,
        "handed_over_at": s.handed_over_at, "delivered_at": s.delivered_at, "cancel_reason": s.cancel_reason,
    }


def _line_values(tenant_id: str, shipment_id: str, line: ShipmentLine) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "shipment_id": shipment_id, "line_no": line.line_no, "sku": line.sku,
            "quantity": line.quantity, "kind": line.kind.value, "barcode": line.barcode,
            "unit_weight_g": line.unit_weight_g, "picked": line.picked, "verified": line.verified}


class SqlShipmentRepository:
    """Shipments of any tenant, on one connection (inside the unit of work's transaction).

    Loaded shipments are remembered (``seen``) so the unit of work collects their events at
    commit, as it does for orders.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.seen: dict[tuple[str, str], Shipment] = {}
        # (tenant, id) -> {line_no: (picked, verified)} as loaded: only changed lines are written.
        self._loaded_lines: dict[tuple[str, str], dict[int, tuple[int, int]]] = {}

    # ------------------------------------------------------------------ reads
    def load_rows(self, rows: Sequence[Any]) -> list[Shipment]:
        """Shipments (with their lines) for rows of the shipments table."""
        return self._load(rows)

    def _load(self, rows: Sequence[Any]) -> list[Shipment]:
        if not rows:
            return []
        keys = [(r.tenant_id, r.id) for r in rows]
        by_shipment: dict[tuple[str, str], list[ShipmentLine]] = {k: [] for k in keys}
        c = shipment_lines.c
        tenants = {t for t, _ in keys}
        line_rows = self._conn.execute(select(shipment_lines).where(
            c.tenant_id.in_(tenants), c.shipment_id.in_([i for _, i in keys]))
            .order_by(c.tenant_id, c.shipment_id, c.line_no)).all()
        for lr in line_rows:
            bucket = by_shipment.get((lr.tenant_id, lr.shipment_id))
            if bucket is not None:
                bucket.append(_line(lr))
        loaded = []
        for row in rows:
            key = (row.tenant_id, row.id)
            known = self.seen.get(key)
            if known is not None:
                loaded.append(known)
                continue
            shipment = _shipment(row, by_shipment[key])
            self.seen[key] = shipment
            self._loaded_lines[key] = {ln.line_no: (ln.picked, ln.verified) for ln in shipment.lines}
            loaded.append(shipment)
        return loaded

    def get(self, tenant_id: str, shipment_id: str) -> Shipment | None:
        """The shipment, or None."""
        known = self.seen.get((tenant_id, shipment_id))
        if known is not None:
            return known
        rows = self._conn.execute(select(shipments).where(shipments.c.tenant_id == tenant_id,
                                                          shipments.c.id == shipment_id)).all()
        found = self._load(rows)
        return found[0] if found else None

    def for_order(self, tenant_id: str, order_id: str) -> list[Shipment]:
        """The order's shipments, oldest first."""
        rows = self._conn.execute(select(shipments).where(shipments.c.tenant_id == tenant_id,
                                                          shipments.c.order_id == order_id)
                                  .order_by(shipments.c.created_at, shipments.c.id)).all()
        return self._load(rows)

    def for_orders(self, tenant_id: str, order_ids: Sequence[str]) -> dict[str, list[Shipment]]:
        """The shipments of several orders (one query for all, oldest first per order)."""
        wanted = sorted(set(order_ids))
        found: dict[str, list[Shipment]] = {oid: [] for oid in wanted}
        for start in range(0, len(wanted), 500):
            rows = self._conn.execute(select(shipments).where(
                shipments.c.tenant_id == tenant_id, shipments.c.order_id.in_(wanted[start:start + 500]))
                .order_by(shipments.c.created_at, shipments.c.id)).all()
            for shipment in self._load(rows):
                found[shipment.order_id].append(shipment)
        return found

    def by_waybills(self, carrier: str, waybill_nos: Iterable[str]) -> dict[str, Shipment]:
        """Shipments of ``carrier`` by waybill number (any tenant: pushes carry none)."""
        wanted = sorted(set(waybill_nos))
        if not wanted:
            return {}
        found: dict[str, Shipment] = {}
        for start in range(0, len(wanted), 500):
            rows = self._conn.execute(select(shipments).where(
                shipments.c.carrier == carrier, shipments.c.waybill_no.in_(wanted[start:start + 500]))).all()
            for shipment in self._load(rows):
                if shipment.waybill_no:
                    found[shipment.waybill_no] = shipment
        return found

    def moving(self, *, progress_before: datetime, limit: int) -> list[Shipment]:
        """Shipments a carrier still moves whose last progress is older than ``progress_before``
        and that can still be raised a stall level, oldest first."""
        c = shipments.c
        rows = self._conn.execute(select(shipments).where(
            c.status.in_([s.value for s in MOVING]), c.last_progress_at <= progress_before, c.stall_level < 3)
            .order_by(c.last_progress_at, c.tenant_id, c.id).limit(limit)).all()
        return self._load(rows)

    def due_for_poll(self, *, now: datetime, limit: int) -> list[Shipment]:
        """Shipments whose tracking should be fetched from the carrier now."""
        c = shipments.c
        rows = self._conn.execute(select(shipments).where(
            c.next_poll_at.is_not(None), c.next_poll_at <= now, c.waybill_no.is_not(None))
            .order_by(c.next_poll_at).limit(limit)).all()
        return self._load(rows)

    # ------------------------------------------------------------------ orders to plan and complete
    def paid_without_shipments(self, *, limit: int, exclude: Collection[tuple[str, str]] = ()) -> list[tuple[str, str]]:
        """(tenant, order id) of paid orders without shipments, in tenants that track stock,
        oldest first, leaving out ``exclude``."""
        o, s = orders.c, shipments.c
        rows = self._conn.execute(select(o.tenant_id, o.id).where(
            o.status == "paid", o.tenant_id.in_(select(warehouses.c.tenant_id).distinct()),
            ~exists().where(s.tenant_id == o.tenant_id, s.order_id == o.id))
            .order_by(o.created_at, o.id).limit(limit + len(exclude))).all()
        return [(r.tenant_id, r.id) for r in rows if (r.tenant_id, r.id) not in exclude][:limit]

    def tenants_with_delivered_orders(self) -> list[str]:
        """Tenants that have delivered orders waiting to be completed."""
        return list(self._conn.execute(select(orders.c.tenant_id).where(orders.c.status == "delivered")
                                       .distinct().order_by(orders.c.tenant_id)).scalars())

    def delivered_before(self, tenant_id: str, cutoff: datetime, *, limit: int) -> list[str]:
        """Ids of the tenant's orders delivered at or before ``cutoff``, oldest first."""
        o = orders.c
        return list(self._conn.execute(select(o.id).where(
            o.status == "delivered", o.tenant_id == tenant_id, o.delivered_at <= cutoff)
            .order_by(o.delivered_at, o.id).limit(max(limit, 0))).scalars())

    # ------------------------------------------------------------------ writes
    def add(self, shipment: Shipment) -> None:
        """Insert a new shipment and its lines."""
        self._conn.execute(insert(shipments).values(tenant_id=shipment.tenant_id, id=shipment.id,
                                                    **_columns(shipment)))
        self._conn.execute(insert(shipment_lines),
                           [_line_values(shipment.tenant_id, shipment.id, ln) for ln in shipment.lines])
        key = (shipment.tenant_id, shipment.id)
        self.seen[key] = shipment
        self._loaded_lines[key] = {ln.line_no: (ln.picked, ln.verified) for ln in shipment.lines}

    def save(self, shipment: Shipment, *, loaded_version: int, next_poll_at: datetime | bool | None = False) -> None:
        """Write a changed shipment if nobody else changed it since ``loaded_version``
        (StaleVersionError otherwise). ``next_poll_at`` (when given) schedules tracking polls."""
        if shipment.version == loaded_version and next_poll_at is False:
            return
        values = _columns(shipment)
        if next_poll_at is not False:
            values["next_poll_at"] = next_poll_at
        c = shipments.c
        result = self._conn.execute(update(shipments).where(
            c.tenant_id == shipment.tenant_id, c.id == shipment.id, c.version == loaded_version).values(**values))
        if result.rowcount != 1:
            raise StaleVersionError(f"shipment {shipment.id} changed while this change was made; try again",
                                    entity="shipment", key=shipment.id)
        key = (shipment.tenant_id, shipment.id)
        before = self._loaded_lines.get(key, {})
        lc = shipment_lines.c
        for line in shipment.lines:
            if before.get(line.line_no) != (line.picked, line.verified):
                self._conn.execute(update(shipment_lines).where(
                    lc.tenant_id == shipment.tenant_id, lc.shipment_id == shipment.id, lc.line_no == line.line_no)
                    .values(picked=line.picked, verified=line.verified))
        self._loaded_lines[key] = {ln.line_no: (ln.picked, ln.verified) for ln in shipment.lines}

    def save_many(self, items: Sequence[tuple[Shipment, int]]) -> None:
        """Save shipments changed by tracking (no line changes) in one round trip per batch;
        StaleVersionError when any of them moved on meanwhile."""
        if not items:
            return
        if len(items) == 1:
            self.save(items[0][0], loaded_version=items[0][1])
            return
        c = shipments.c
        statement = update(shipments).where(
            c.tenant_id == bindparam("k_tenant"), c.id == bindparam("k_id"), c.version == bindparam("k_version")
        ).values({name: bindparam(f"v_{name}") for name in _columns(items[0][0])})
        params = []
        for shipment, loaded in items:
            row = {f"v_{name}": value for name, value in _columns(shipment).items()}
            row.update(k_tenant=shipment.tenant_id, k_id=shipment.id, k_version=loaded)
            params.append(row)
        try:
            result = self._conn.execute(statement.execution_options(preserve_rowcount=True), params)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
                raise StaleVersionError("a concurrent change to the same shipments won; try again",
                                        entity="shipment", key=items[0][0].id) from exc
            raise
        if result.rowcount not in (-1, len(items)):
            raise StaleVersionError("a shipment changed while tracking was applied; try again",
                                    entity="shipment", key=items[0][0].id)

    def schedule_poll(self, tenant_id: str, shipment_id: str, at: datetime | None) -> None:
        """When the carrier is next asked for this shipment's tracking (None: never again)."""
        self._conn.execute(update(shipments).where(shipments.c.tenant_id == tenant_id, shipments.c.id == shipment_id)
                           .values(next_poll_at=at))

    # ------------------------------------------------------------------ scans
    def scan_answer(self, tenant_id: str, scan_id: str) -> dict[str, Any] | None:
        """The answer stored for an applied scan id (a resend gets it again), or None."""
        row = self._conn.execute(select(shipment_scans.c.result).where(
            shipment_scans.c.tenant_id == tenant_id, shipment_scans.c.scan_id == scan_id)).first()
        return dict(row.result) if row else None

    def add_scan(self, *, tenant_id: str, scan_id: str, shipment_id: str, step: str, operator: str,
                 device_id: str | None, barcode: str | None, quantity: int, weight_g: int | None,
                 flags: Sequence[str], result: dict[str, Any], occurred_at: datetime, now: datetime) -> None:
        """Record an applied scan; DuplicateKeyError when its id was applied before."""
        outcome = self._conn.execute(insert_unless_duplicate(shipment_scans, self._conn.dialect.name), {
            "tenant_id": tenant_id, "scan_id": scan_id, "shipment_id": shipment_id, "step": step,
            "operator": operator, "device_id": device_id, "barcode": barcode, "quantity": quantity,
            "weight_g": weight_g, "flags": list(flags), "result": result, "occurred_at": occurred_at,
            "received_at": now})
        if outcome.rowcount != 1:
            raise DuplicateKeyError(f"scan {scan_id!r} was applied before", entity="scan", key=scan_id)

    def add_rejection(self, *, tenant_id: str, scan_id: str | None, shipment_id: str | None, device_id: str | None,
                      operator: str | None, status: str, code: str, detail: str, item: dict[str, Any],
                      now: datetime) -> None:
        """Keep a scan that was refused or in conflict, exactly as sent (never lost)."""
        self._conn.execute(insert(scan_rejections).values(
            tenant_id=tenant_id, scan_id=scan_id, shipment_id=shipment_id, device_id=device_id, operator=operator,
            status=status, code=code, detail=detail[:2000], item=item, received_at=now))

    # ------------------------------------------------------------------ tracking events
    def add_tracking_events(self, rows: Sequence[TrackingEventRow]) -> set[str]:
        """Insert carrier events; ones already stored (the caller checked with
        :meth:`known_dedup_keys`, a concurrent push may have added them since) are skipped by
        the UNIQUE key. Returns the dedup keys sent."""
        if not rows:
            return set()
        fresh: list[dict[str, Any]] = []
        inserted: set[str] = set()
        for r in rows:
            if r.dedup_key in inserted:
                continue
            inserted.add(r.dedup_key)
            fresh.append({"tenant_id": r.tenant_id, "dedup_key": r.dedup_key, "shipment_id": r.shipment_id,
                          "carrier": r.carrier, "waybill_no": r.waybill_no, "code": r.code,
                          "description": r.description, "location": r.location, "occurred_at": r.occurred_at,
                          "milestone": r.milestone, "sub_status": r.sub_status, "outcome": r.outcome,
                          "source": r.source, "raw": r.raw, "received_at": r.received_at})
        if fresh:
            # ON CONFLICT DO NOTHING: a concurrent push of the same event must not fail the batch.
            self._conn.execute(insert_unless_duplicate(tracking_events, self._conn.dialect.name), fresh)
        return inserted

    def known_dedup_keys(self, tenant_id: str, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` are stored for the tenant."""
        c = tracking_events.c
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            found.update(self._conn.execute(select(c.dedup_key).where(
                c.tenant_id == tenant_id, c.dedup_key.in_(list(keys[start:start + 500])))).scalars())
        return found

    def unknown_events(self, tenant_id: str, carrier: str | None = None, *, limit: int = 1000) -> list[Any]:
        """Stored events whose code was unknown when they arrived, oldest first."""
        c = tracking_events.c
        query = select(tracking_events).where(c.tenant_id == tenant_id, c.outcome == "unknown")
        if carrier is not None:
            query = query.where(c.carrier == carrier)
        return list(self._conn.execute(query.order_by(c.occurred_at, c.id).limit(limit)).all())

    def mark_event(self, event_id: int, *, milestone: str, sub_status: str, outcome: str) -> None:
        """Record how a once-unknown event was understood on replay."""
        self._conn.execute(update(tracking_events).where(tracking_events.c.id == event_id).values(
            milestone=milestone, sub_status=sub_status, outcome=outcome))

    def count_unknown(self, tenant_id: str, carrier: str, code: str) -> int:
        """How many stored events of ``carrier`` still carry the unknown ``code``."""
        c = tracking_events.c
        return int(self._conn.execute(select(func.count()).where(
            c.tenant_id == tenant_id, c.carrier == carrier, c.code == code, c.outcome == "unknown")).scalar_one())

    # ------------------------------------------------------------------ carrier accounts
    def add_account(self, row: CarrierAccountRow) -> None:
        """Insert or replace the tenant's account with a carrier."""
        c = carrier_accounts.c
        self._conn.execute(delete(carrier_accounts).where(c.tenant_id == row.tenant_id, c.carrier == row.carrier))
        self._conn.execute(insert(carrier_accounts).values(
            tenant_id=row.tenant_id, carrier=row.carrier, protocol=row.protocol, api_base_url=row.api_base_url,
            api_key=row.api_key, push_secret=row.push_secret, created_at=row.created_at))

    def account(self, tenant_id: str, carrier: str) -> CarrierAccountRow | None:
        """The tenant's account with ``carrier``, or None."""
        row = self._conn.execute(select(carrier_accounts).where(
            carrier_accounts.c.tenant_id == tenant_id, carrier_accounts.c.carrier == carrier)).first()
        return CarrierAccountRow(**row._mapping) if row else None

    def accounts(self, tenant_id: str) -> list[CarrierAccountRow]:
        """The tenant's carrier accounts by carrier."""
        rows = self._conn.execute(select(carrier_accounts).where(carrier_accounts.c.tenant_id == tenant_id)
                                  .order_by(carrier_accounts.c.carrier)).all()
        return [CarrierAccountRow(**r._mapping) for r in rows]


class SqlDeviceRepository:
    """Handheld devices, which operator used which device when, and operator locks."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def touch(self, tenant_id: str, device_id: str, *, now: datetime, operator: str | None = None,
              heartbeat: bool = False, synced: bool = False, app_version: str | None = None) -> None:
        """Record that ``device_id`` was heard from (a heartbeat, a sync or a scan)."""
        c = devices.c
        values: dict[str, Any] = {}
        if operator:
            values["last_operator"] = operator
        if heartbeat:
            values["last_heartbeat_at"] = now
        if synced:
            values["last_sync_at"] = now
        if app_version:
            values["app_version"] = app_version
        created = self._conn.execute(insert_unless_duplicate(devices, self._conn.dialect.name), {
            "tenant_id": tenant_id, "device_id": device_id, "created_at": now, "last_operator": operator,
            "app_version": app_version, "last_heartbeat_at": now if heartbeat else None,
            "last_sync_at": now if synced else None})
        if created.rowcount != 1 and values:
            self._conn.execute(update(devices).where(c.tenant_id == tenant_id, c.device_id == device_id)
                               .values(**values))

    def sight(self, tenant_id: str, operator: str, device_id: str, *, now: datetime) -> None:
        """Remember that ``operator`` used ``device_id`` at ``now``."""
        c = device_sightings.c
        created = self._conn.execute(insert_unless_duplicate(device_sightings, self._conn.dialect.name), {
            "tenant_id": tenant_id, "operator": operator, "device_id": device_id, "seen_at": now})
        if created.rowcount != 1:
            self._conn.execute(update(device_sightings).where(
                c.tenant_id == tenant_id, c.operator == operator, c.device_id == device_id,
                c.seen_at < now).values(seen_at=now))

    def sightings(self, tenant_id: str, operator: str, *, since: datetime) -> list[tuple[str, datetime]]:
        """(device, last seen) of the operator's devices seen at or after ``since``."""
        c = device_sightings.c
        rows = self._conn.execute(select(c.device_id, c.seen_at).where(
            c.tenant_id == tenant_id, c.operator == operator, c.seen_at >= since)).all()
        return [(r.device_id, r.seen_at) for r in rows]

    def lock(self, tenant_id: str, operator: str, *, reason: str, devices_seen: Sequence[str],
             now: datetime) -> bool:
        """Lock the operator's write access; False when already locked."""
        result = self._conn.execute(insert_unless_duplicate(operator_locks, self._conn.dialect.name), {
            "tenant_id": tenant_id, "operator": operator, "locked_at": now, "reason": reason,
            "devices": list(devices_seen)})
        return result.rowcount == 1

    def unlock(self, tenant_id: str, operator: str) -> bool:
        """Lift the lock; False when the operator wasn't locked."""
        c = operator_locks.c
        result = self._conn.execute(delete(operator_locks).where(c.tenant_id == tenant_id, c.operator == operator))
        # Forget the sightings too, or the next scan would lock the operator again at once.
        self._conn.execute(delete(device_sightings).where(device_sightings.c.tenant_id == tenant_id,
                                                          device_sightings.c.operator == operator))
        return result.rowcount == 1

    def locked(self, tenant_id: str, operator: str) -> Any | None:
        """The operator's lock row, or None."""
        c = operator_locks.c
        return self._conn.execute(select(operator_locks).where(c.tenant_id == tenant_id,
                                                               c.operator == operator)).first()


__all__ = [
    "MOVING",
    "CarrierAccountRow",
    "SqlDeviceRepository",
    "SqlShipmentRepository",
    "TrackingEventRow",
]

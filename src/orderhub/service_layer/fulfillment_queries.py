"""Read-side queries of fulfillment: shipments with their lines, scans and carrier events,
devices and operator locks, carrier accounts (never their secrets) and unknown carrier
codes. Mixed into :class:`orderhub.service_layer.queries.Queries`; scoped to one tenant per
call and never changing state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from orderhub.adapters.db.fulfillment import SqlShipmentRepository
from orderhub.adapters.db.tables import (
    carrier_accounts,
    device_sightings,
    devices,
    operator_locks,
    scan_rejections,
    shipment_scans,
    shipments,
    tracking_events,
)
from orderhub.domain.time import isoformat
from orderhub.service_layer.errors import ShipmentNotFound
from orderhub.service_layer.fulfillment import shipment_view
from orderhub.service_layer.inventory_queries import InventoryQueries

MAX_ROWS = 500


def _time(value: Any) -> str | None:
    return isoformat(value) if value is not None else None


def _event(row: Any) -> dict[str, Any]:
    return {"code": row.code, "description": row.description, "location": row.location,
            "occurred_at": _time(row.occurred_at), "milestone": row.milestone, "sub_status": row.sub_status,
            "outcome": row.outcome, "source": row.source, "received_at": _time(row.received_at)}


def _scan(row: Any) -> dict[str, Any]:
    return {"scan_id": row.scan_id, "step": row.step, "operator": row.operator, "device_id": row.device_id,
            "barcode": row.barcode, "quantity": int(row.quantity),
            "weight_g": int(row.weight_g) if row.weight_g is not None else None, "flags": list(row.flags or []),
            "occurred_at": _time(row.occurred_at), "received_at": _time(row.received_at)}


def _rejection(row: Any) -> dict[str, Any]:
    return {"scan_id": row.scan_id, "shipment_id": row.shipment_id, "device_id": row.device_id,
            "operator": row.operator, "status": row.status, "code": row.code, "detail": row.detail,
            "item": dict(row.item or {}), "received_at": _time(row.received_at)}


class FulfillmentQueries(InventoryQueries):
    """Shipments, devices, carriers."""

    def shipment(self, tenant_id: str, shipment_id: str) -> dict[str, Any]:
        """One shipment with its lines, scans, refused scans and carrier events (oldest first);
        ShipmentNotFound for unknown ids and other tenants' shipments."""
        with self._connect() as conn:
            found = SqlShipmentRepository(conn).get(tenant_id, shipment_id)
            if found is None:
                raise ShipmentNotFound(f"shipment {shipment_id!r} not found")
            scans = conn.execute(select(shipment_scans).where(
                shipment_scans.c.tenant_id == tenant_id, shipment_scans.c.shipment_id == shipment_id)
                .order_by(shipment_scans.c.received_at, shipment_scans.c.scan_id).limit(MAX_ROWS)).all()
            refused = conn.execute(select(scan_rejections).where(
                scan_rejections.c.tenant_id == tenant_id, scan_rejections.c.shipment_id == shipment_id)
                .order_by(scan_rejections.c.id).limit(MAX_ROWS)).all()
            events = conn.execute(select(tracking_events).where(
                tracking_events.c.tenant_id == tenant_id, tracking_events.c.shipment_id == shipment_id)
                .order_by(tracking_events.c.occurred_at, tracking_events.c.id).limit(MAX_ROWS)).all()
        view = shipment_view(found)
        view.update({"scans": [_scan(r) for r in scans], "refused_scans": [_rejection(r) for r in refused],
                     "tracking": [_event(r) for r in events]})
        return view

    def shipments(self, tenant_id: str, *, order_id: str | None = None, status: str | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
        """The tenant's shipments, newest first, filtered by order and status."""
        c = shipments.c
        query = select(shipments).where(c.tenant_id == tenant_id)
        if order_id:
            query = query.where(c.order_id == order_id)
        if status:
            query = query.where(c.status == status)
        with self._connect() as conn:
            repo = SqlShipmentRepository(conn)
            rows = conn.execute(query.order_by(c.created_at.desc(), c.id).limit(min(limit, MAX_ROWS))).all()
            loaded = repo.load_rows(rows)
        return [shipment_view(s) for s in loaded]

    def order_shipments(self, tenant_id: str, order_id: str) -> list[dict[str, Any]]:
        """The order's shipments, oldest first (for ``GET /orders/{id}``)."""
        with self._connect() as conn:
            return [shipment_view(s) for s in SqlShipmentRepository(conn).for_order(tenant_id, order_id)]

    def order_shipment_ids(self, tenant_id: str, order_id: str) -> list[str]:
        """Ids of the order's shipments (their audit entries belong in the order's timeline)."""
        with self._connect() as conn:
            return list(conn.execute(select(shipments.c.id).where(
                shipments.c.tenant_id == tenant_id, shipments.c.order_id == order_id)
                .order_by(shipments.c.created_at)).scalars())

    def devices(self, tenant_id: str) -> dict[str, Any]:
        """Devices with their last heartbeat and sync, recent refused items, and locked operators."""
        with self._connect() as conn:
            rows = conn.execute(select(devices).where(devices.c.tenant_id == tenant_id)
                                .order_by(devices.c.device_id).limit(MAX_ROWS)).all()
            refused: dict[str, int] = dict(conn.execute(select(scan_rejections.c.device_id, func.count()).where(
                scan_rejections.c.tenant_id == tenant_id).group_by(scan_rejections.c.device_id)).all())
            locks = conn.execute(select(operator_locks).where(operator_locks.c.tenant_id == tenant_id)
                                 .order_by(operator_locks.c.operator)).all()
            sightings = conn.execute(select(device_sightings).where(device_sightings.c.tenant_id == tenant_id)
                                     .order_by(device_sightings.c.operator, device_sightings.c.device_id)
                                     .limit(MAX_ROWS)).all()
        return {
            "items": [{"device_id": r.device_id, "last_operator": r.last_operator, "app_version": r.app_version,
                       "last_heartbeat_at": _time(r.last_heartbeat_at), "last_sync_at": _time(r.last_sync_at),
                       "created_at": _time(r.created_at), "refused_items": int(refused.get(r.device_id, 0))}
                      for r in rows],
            "locked_operators": [{"operator": r.operator, "locked_at": _time(r.locked_at), "reason": r.reason,
                                  "devices": list(r.devices or [])} for r in locks],
            "sightings": [{"operator": r.operator, "device_id": r.device_id, "seen_at": _time(r.seen_at)}
                          for r in sightings],
        }

    def device_rejections(self, tenant_id: str, device_id: str) -> list[dict[str, Any]]:
        """Items a device sent that were refused or in conflict, newest first (kept as sent)."""
        with self._connect() as conn:
            rows = conn.execute(select(scan_rejections).where(
                scan_rejections.c.tenant_id == tenant_id, scan_rejections.c.device_id == device_id)
                .order_by(scan_rejections.c.id.desc()).limit(MAX_ROWS)).all()
        return [_rejection(r) for r in rows]

    def carrier_accounts(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's carrier accounts, without their key and secret."""
        with self._connect() as conn:
            rows = conn.execute(select(carrier_accounts).where(carrier_accounts.c.tenant_id == tenant_id)
                                .order_by(carrier_accounts.c.carrier)).all()
        return [{"carrier": r.carrier, "protocol": r.protocol, "api_base_url": r.api_base_url,
                 "created_at": _time(r.created_at)} for r in rows]

    def unknown_codes(self, tenant_id: str) -> list[dict[str, Any]]:
        """Carrier codes still unknown, per carrier and code: how many events, first and last seen."""
        c = tracking_events.c
        with self._connect() as conn:
            rows = conn.execute(select(c.carrier, c.code, func.count().label("events"),
                                       func.min(c.received_at).label("first"), func.max(c.received_at).label("last"))
                                .where(c.tenant_id == tenant_id, c.outcome == "unknown")
                                .group_by(c.carrier, c.code).order_by(c.carrier, c.code)).all()
        return [{"carrier": r.carrier, "code": r.code, "events": int(r.events), "first_seen_at": _time(r.first),
                 "last_seen_at": _time(r.last)} for r in rows]

"""Command handlers for fulfillment (issue 5): carrier accounts, planning shipments,
waybills, warehouse scans online and from offline handhelds, device heartbeats and the
operator lock, stall escalation and completing delivered orders.

Scans are checked by the Shipment aggregate before anything changes; a refused scan is
kept (``scan_rejections``) and answered with what was expected, never half-applied.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from orderhub.adapters.carriers.code_tables import CARRIER_IDS
from orderhub.adapters.carriers.registry import PROTOCOLS
from orderhub.adapters.db.errors import DuplicateKeyError, StaleVersionError
from orderhub.adapters.db.fulfillment import CarrierAccountRow
from orderhub.adapters.db.outbox import OutboxMessage
from orderhub.domain import ids
from orderhub.domain.aftersale.states import REPLACEMENT_TAG
from orderhub.domain.commands import (
    AddCarrierAccount,
    CheckStalls,
    CompleteDelivered,
    DeviceHeartbeat,
    PlanFulfilment,
    RecordScan,
    RecordWaybill,
    ScanInput,
    SyncDevice,
    UnlockOperator,
)
from orderhub.domain.errors import DomainError, ScanRejected
from orderhub.domain.events import OperatorLocked as OperatorLockedEvent
from orderhub.domain.fulfillment.devices import SyncItemStatus, devices_in_window, should_lock, version_conflict
from orderhub.domain.fulfillment.policy import FulfillmentPolicy
from orderhub.domain.fulfillment.scanning import Scan
from orderhub.domain.fulfillment.shipment import Shipment
from orderhub.domain.fulfillment.stalls import escalate
from orderhub.domain.fulfillment.states import ScanStep, ShipmentStatus
from orderhub.domain.orders.model import ApplyOutcome, OrderEvent
from orderhub.domain.orders.states import OrderEventType, OrderStatus
from orderhub.domain.time import ensure_utc, isoformat
from orderhub.service_layer.errors import (
    ConcurrencyConflict,
    InvalidInput,
    OperatorLocked,
    ShipmentNotFound,
    ShipmentVersionMismatch,
)
from orderhub.service_layer.fulfillment import follow_shipments, plan_shipments, writeback_message
from orderhub.service_layer.fulfillment_rules import RoutingRules, load_fulfillment_policy
from orderhub.service_layer.inventory import OrderState, after_order_change, publish_touched
from orderhub.service_layer.shipments import CARRIER_CANCEL
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

log = structlog.get_logger(__name__)

IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}")
MAX_BATCH = 500
STALL_KINDS = {1: "shipment_stalled_buyer_notice", 2: "shipment_stalled_cs_task", 3: "shipment_stalled_compensation"}
STALL_SEVERITY = {1: "info", 2: "warning", 3: "critical"}
# Marks, in the planner's ``skipped`` set, a tenant whose orders were skipped because its
# policy said ``auto_fulfil: false``: (AUTO_FULFIL_OFF, tenant_id). Never a tenant id.
AUTO_FULFIL_OFF = "*auto_fulfil_off*"


def _ident(value: object, field: str) -> str:
    if not isinstance(value, str) or not IDENT.fullmatch(value):
        raise InvalidInput(f"{field}: 1–100 letters, digits or . _ : @ - (starting with a letter or digit), "
                           f"got {value!r}", field=field)
    return value


def _text(value: object, field: str, *, limit: int = 100) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit \
            or any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidInput(f"{field}: 1–{limit} printable characters, got {value!r}", field=field)
    return value.strip()


# --------------------------------------------------------------------------- carrier accounts
def add_carrier_account(cmd: AddCarrierAccount, uow: SqlAlchemyUnitOfWork) -> CarrierAccountRow:
    """Store (or replace) the tenant's account with a carrier."""
    if cmd.carrier not in CARRIER_IDS:
        raise InvalidInput(f"carrier: unknown carrier {cmd.carrier!r}; known: {', '.join(CARRIER_IDS)}",
                           field="carrier")
    if cmd.protocol not in PROTOCOLS:
        raise InvalidInput(f"protocol: unknown protocol {cmd.protocol!r}; known: {', '.join(sorted(PROTOCOLS))}",
                           field="protocol")
    if not re.fullmatch(r"https?://[^\s]{1,490}", cmd.api_base_url or ""):
        raise InvalidInput("api_base_url: an http(s) URL, e.g. https://api.carrier.example", field="api_base_url")
    for name in ("api_key", "push_secret"):
        value = getattr(cmd, name)
        if not isinstance(value, str) or not 8 <= len(value) <= 200:
            raise InvalidInput(f"{name}: 8–200 characters", field=name)
    with uow:
        uow.act_as(cmd.actor)
        row = CarrierAccountRow(tenant_id=cmd.actor.tenant_id, carrier=cmd.carrier, protocol=cmd.protocol,
                                api_base_url=cmd.api_base_url.rstrip("/"), api_key=cmd.api_key,
                                push_secret=cmd.push_secret, created_at=uow.clock.now())
        uow.shipments.add_account(row)
        uow.commit()
        return row


# --------------------------------------------------------------------------- planning
def plan_fulfilment(cmd: PlanFulfilment, uow: SqlAlchemyUnitOfWork, *, routing: RoutingRules,
                    skipped: set[tuple[str, str]]) -> int:
    """Plan shipments for paid, released orders that have none yet; returns how many orders
    got shipments. Each order is its own transaction, so one bad order can't stop the rest.
    Orders that can't be planned now (nothing reserved, fulfilment off) are remembered in
    ``skipped`` by this process so they don't crowd out the others on every pass."""
    with uow:
        # Tenants skipped for auto_fulfil: false that turned it back on get their orders retried.
        for marker, tenant_id in [k for k in skipped if k[0] == AUTO_FULFIL_OFF]:
            if load_fulfillment_policy(uow, tenant_id).auto_fulfil:
                skipped.difference_update({k for k in skipped if k[0] == tenant_id or k == (marker, tenant_id)})
        candidates = uow.shipments.paid_without_shipments(limit=cmd.limit, exclude=skipped)
    planned = 0
    for tenant_id, order_id in candidates:
        try:
            with uow:
                policy = load_fulfillment_policy(uow, tenant_id)
                order = uow.orders.get(tenant_id, order_id)
                if order is None or not policy.auto_fulfil:
                    skipped.add((tenant_id, order_id))
                    if order is not None:
                        skipped.add((AUTO_FULFIL_OFF, tenant_id))
                    continue
                loaded = order.version
                now = uow.clock.now()
                if not plan_shipments(uow, order, policy=policy, routing=routing.for_tenant(uow, tenant_id), now=now):
                    skipped.add((tenant_id, order_id))
                    continue
                uow.orders.save(order, loaded_version=loaded)
                uow.commit()
                planned += 1
        except (StaleVersionError, DuplicateKeyError):
            log.info("fulfilment_plan_raced", tenant_id=tenant_id, order_id=order_id)
        except DomainError as exc:
            log.warning("fulfilment_plan_failed", tenant_id=tenant_id, order_id=order_id, error=exc.message)
            skipped.add((tenant_id, order_id))
    return planned


def record_waybill(cmd: RecordWaybill, uow: SqlAlchemyUnitOfWork, *, policy_ttl: timedelta | None = None) -> bool:
    """Store the waybill the carrier issued; schedule tracking polls. False for a repeat."""
    with uow:
        shipment = uow.shipments.get(cmd.tenant_id, cmd.shipment_id)
        if shipment is None:
            raise ShipmentNotFound(f"shipment {cmd.shipment_id!r} not found")
        loaded = shipment.version
        now = uow.clock.now()
        if shipment.status is ShipmentStatus.CANCELLED:
            # Cancelled while the carrier was issuing it: void the new label rather than lose it.
            uow.outbox.add([OutboxMessage(
                tenant_id=cmd.tenant_id, kind=CARRIER_CANCEL, target=shipment.carrier or "", topic="carrier.cancel",
                message_id=ids.new_id("msg"), payload={"shipment_id": shipment.id, "order_id": shipment.order_id,
                                                       "waybill_no": cmd.waybill_no, "carrier": shipment.carrier})],
                now=now)
            uow.commit()
            return False
        if not shipment.issue_waybill(cmd.waybill_no, now=now):
            return False
        policy = load_fulfillment_policy(uow, cmd.tenant_id)
        uow.shipments.save(shipment, loaded_version=loaded, next_poll_at=now + (policy_ttl or policy.tracking_poll))
        uow.commit()
        return True


# --------------------------------------------------------------------------- scans
def _scan_of(raw: ScanInput, device_id: str | None, now: datetime) -> Scan:
    scan_id = _ident(raw.scan_id, "scan_id")
    try:
        step = ScanStep(raw.step)
    except ValueError as exc:
        raise InvalidInput(f"step: unknown step {raw.step!r}; expected one of "
                           f"{', '.join(s.value for s in ScanStep)}", field="step") from exc
    operator = _ident(raw.operator, "operator")
    barcode = _text(raw.barcode, "barcode")
    for name in ("quantity", "weight_g"):
        value = getattr(raw, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidInput(f"{name}: a whole number ≥ 0, got {value!r}", field=name)
    occurred = raw.occurred_at or now
    try:
        occurred = ensure_utc(occurred, field="occurred_at")
    except DomainError as exc:
        raise InvalidInput(exc.message, field="occurred_at") from exc
    return Scan(scan_id=scan_id, step=step, operator=operator, device_id=device_id, occurred_at=occurred,
                barcode=barcode, quantity=raw.quantity, weight_g=raw.weight_g)


def _answer(shipment: Shipment, scan: Scan, flags: tuple[str, ...], *, status: str = "applied") -> dict[str, Any]:
    return {"scan_id": scan.scan_id, "status": status, "step": scan.step.value, "flags": list(flags),
            "shipment": shipment.snapshot()}


def _guard_operator(uow: SqlAlchemyUnitOfWork, tenant_id: str, operator: str, *, device_id: str | None,
                    policy: FulfillmentPolicy, now: datetime) -> str | None:
    """Record the operator's use of the device and lock the account when it is on too many
    devices at once. Returns why the operator may not write now (None: may write)."""
    if device_id is not None:
        uow.devices.touch(tenant_id, device_id, now=now, operator=operator)
        uow.devices.sight(tenant_id, operator, device_id, now=now)
        lock = policy.account_lock
        if lock.enabled and uow.devices.locked(tenant_id, operator) is None:
            sightings = uow.devices.sightings(tenant_id, operator, since=now - lock.window)
            if should_lock(lock, sightings, now):
                seen = devices_in_window(lock, sightings, now)
                reason = (f"account {operator} was used on {len(seen)} devices within {lock.window_minutes} minutes "
                          f"({', '.join(seen)})")
                if uow.devices.lock(tenant_id, operator, reason=reason, devices_seen=seen, now=now):
                    uow.record(OperatorLockedEvent(tenant_id=tenant_id, operator=operator, devices=tuple(seen),
                                                   window_minutes=lock.window_minutes, occurred_at=now))
                    uow.channel_state.add_alert(
                        tenant_id=tenant_id, alert_id=ids.new_id("alr"), kind="operator_locked", severity="critical",
                        subject=f"operator:{operator}", message=reason + "; write access locked until an admin "
                        f"unlocks it (POST /api/v1/operators/{operator}/unlock)",
                        details={"operator": operator, "devices": list(seen)}, now=now)
    row = uow.devices.locked(tenant_id, operator)
    if row is None:
        return None
    return (f"operator {operator} is locked: {row.reason}; an admin unlocks it with "
            f"POST /api/v1/operators/{operator}/unlock")


def _order_hold(uow: SqlAlchemyUnitOfWork, shipment: Shipment) -> ScanRejected | None:
    """A held order (risk review, address check) must not be packed or handed over: its
    shipments take no scans until it is released."""
    order = uow.orders.get(shipment.tenant_id, shipment.order_id)
    if order is None or order.status is not OrderStatus.ON_HOLD:
        return None
    return ScanRejected(f"order {order.id} is on hold ({order.hold_reason or 'no reason given'}): release it before "
                        "scanning its shipment", field="shipment_id", expected={"order_status": "on_hold"})


def _weight_alert(uow: SqlAlchemyUnitOfWork, shipment: Shipment, now: datetime) -> None:
    """A parcel weighed outside the tolerance: someone should open it before it leaves."""
    uow.channel_state.add_alert(
        tenant_id=shipment.tenant_id, alert_id=ids.new_id("alr"), kind="weight_out_of_tolerance",
        severity="warning", subject=f"shipment:{shipment.id}",
        message=f"shipment {shipment.id} weighed {shipment.weight_g} g, expected about "
                f"{shipment.expected_weight_g} g: check the parcel's contents before handover",
        details={"weight_g": shipment.weight_g, "expected_weight_g": shipment.expected_weight_g}, now=now)


def _after_scan(uow: SqlAlchemyUnitOfWork, shipment: Shipment, scan: Scan, flags: tuple[str, ...],
                now: datetime) -> None:
    """What a scan means beyond the shipment: a weight alert, the order and the channel told
    of a handover."""
    if "weight_out_of_tolerance" in flags:
        _weight_alert(uow, shipment, now)
    if scan.step is ScanStep.HANDOVER:
        order = uow.orders.get(shipment.tenant_id, shipment.order_id)
        if order is None:
            return
        loaded = order.version
        follow_shipments(uow, order, uow.shipments.for_order(shipment.tenant_id, order.id), now=now,
                         occurred_at=scan.occurred_at)
        if REPLACEMENT_TAG not in order.tags:  # a replacement parcel is ours: the channel has no such order
            uow.outbox.add([writeback_message(order, shipment, now)], now=now)
        uow.orders.save(order, loaded_version=loaded)


def record_scan(cmd: RecordScan, uow: SqlAlchemyUnitOfWork) -> dict[str, Any]:
    """Apply one online scan (``POST /shipments/{id}/scans``); a repeated scan id gets the
    first answer again. Refused scans are kept and raised (ScanRejected, ShipmentClosed)."""
    tenant_id = cmd.actor.tenant_id
    device_id = _ident(cmd.device_id, "device_id") if cmd.device_id is not None else None
    with uow:
        uow.act_as(cmd.actor)
        now = uow.clock.now()
        scan = _scan_of(cmd.scan, device_id, now)
        previous = uow.shipments.scan_answer(tenant_id, scan.scan_id)
        if previous is not None:
            return {**previous, "status": "duplicate"}
        policy = load_fulfillment_policy(uow, tenant_id)
        locked = _guard_operator(uow, tenant_id, scan.operator, device_id=device_id, policy=policy, now=now)
        shipment = uow.shipments.get(tenant_id, cmd.shipment_id)
        problem: ServiceOrDomainError | None = None
        if locked is not None:
            problem = OperatorLocked(locked, extra={"operator": scan.operator})
        elif shipment is None:
            problem = ShipmentNotFound(f"shipment {cmd.shipment_id!r} not found")
        elif cmd.expected_version is not None and cmd.expected_version != shipment.version:
            problem = ShipmentVersionMismatch(
                f"shipment {shipment.id} is at version {shipment.version}, not {cmd.expected_version}: it changed "
                "since this device loaded it; reload and scan again", extra={"current": shipment.snapshot()})
        if problem is None:
            assert shipment is not None
            problem = _order_hold(uow, shipment)
        if problem is None:
            assert shipment is not None
            loaded = shipment.version
            try:
                result = shipment.scan(scan, now=now, tolerance=policy.weight_tolerance)
            except DomainError as exc:
                problem = exc
            else:
                answer = _answer(shipment, scan, result.flags)
                uow.shipments.add_scan(tenant_id=tenant_id, scan_id=scan.scan_id, shipment_id=shipment.id,
                                       step=scan.step.value, operator=scan.operator, device_id=device_id,
                                       barcode=scan.barcode, quantity=scan.quantity, weight_g=scan.weight_g,
                                       flags=result.flags, result=answer, occurred_at=scan.occurred_at, now=now)
                uow.shipments.save(shipment, loaded_version=loaded)
                _after_scan(uow, shipment, scan, result.flags, now)
                publish_touched(uow)
                uow.commit()
                return answer
        # Refused: keep the scan as sent (and any lock just taken), then tell the device why.
        uow.shipments.add_rejection(
            tenant_id=tenant_id, scan_id=scan.scan_id, shipment_id=cmd.shipment_id, device_id=device_id,
            operator=scan.operator, status="rejected", code=problem.code, detail=problem.message,
            item=_scan_json(cmd.scan), now=now)
        uow.commit()
        raise problem


ServiceOrDomainError = DomainError | InvalidInput | OperatorLocked | ShipmentNotFound | ShipmentVersionMismatch


def _scan_json(raw: ScanInput) -> dict[str, Any]:
    return {"scan_id": raw.scan_id, "step": raw.step, "operator": raw.operator, "barcode": raw.barcode,
            "quantity": raw.quantity, "weight_g": raw.weight_g,
            "occurred_at": isoformat(raw.occurred_at) if raw.occurred_at else None}


# --------------------------------------------------------------------------- offline sync
@dataclass(slots=True)
class _Batch:
    """What one sync has done so far: shipments it loaded (with the version each had before
    the batch first changed it) and orders it must bring up to date at the end."""

    loaded: dict[str, int]
    handed_over: list[tuple[Shipment, Scan]]


def _parse_item(raw: Mapping[str, Any]) -> tuple[str, int, ScanInput]:
    if not isinstance(raw, Mapping):
        raise InvalidInput("each item must be an object with scan_id, shipment_id, shipment_version, step, operator",
                           field="")
    known = {"scan_id", "shipment_id", "shipment_version", "step", "operator", "occurred_at", "barcode",
             "quantity", "weight_g"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidInput(f"{unknown[0]}: unknown field; items carry {', '.join(sorted(known))}", field=unknown[0])
    for name in ("scan_id", "shipment_id", "step", "operator"):
        if not isinstance(raw.get(name), str):
            raise InvalidInput(f"{name}: required text", field=name)
    version = raw.get("shipment_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput(f"shipment_version: the shipment version the device saw (a whole number ≥ 1), "
                           f"got {version!r}", field="shipment_version")
    occurred: datetime | None = None
    if raw.get("occurred_at") is not None:
        text = raw["occurred_at"]
        try:
            occurred = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(f"occurred_at: {text!r} is not an ISO 8601 time with offset", field="occurred_at") \
                from exc
        if occurred.tzinfo is None:
            raise InvalidInput(f"occurred_at: {text!r} has no UTC offset", field="occurred_at")
    quantity = raw.get("quantity", 1)
    return raw["shipment_id"], version, ScanInput(
        scan_id=raw["scan_id"], step=raw["step"], operator=raw["operator"], occurred_at=occurred,
        barcode=raw.get("barcode"), quantity=quantity, weight_g=raw.get("weight_g"))


def sync_device(cmd: SyncDevice, uow: SqlAlchemyUnitOfWork) -> dict[str, Any]:
    """Apply a handheld's offline batch in order, answering each item on its own: applied,
    duplicate (a resend: the first answer again), conflict (the shipment changed since the
    device saw it: the current state comes back, nothing applied) or rejected (malformed, or
    the scan doesn't fit). Everything that isn't applied is kept. One transaction."""
    tenant_id = cmd.actor.tenant_id
    device_id = _ident(cmd.device_id, "device_id")
    if len(cmd.items) > MAX_BATCH:
        raise InvalidInput(f"items: at most {MAX_BATCH} scans per sync, got {len(cmd.items)}; send the rest in "
                           "another sync", field="items")
    answers: list[dict[str, Any]] = []
    with uow:
        uow.act_as(cmd.actor)
        now = uow.clock.now()
        policy = load_fulfillment_policy(uow, tenant_id)
        uow.devices.touch(tenant_id, device_id, now=now, synced=True)
        batch = _Batch(loaded={}, handed_over=[])
        for item in cmd.items:
            answers.append(_sync_item(uow, item.index, item.raw, device_id=device_id, batch=batch, policy=policy,
                                      now=now))
        for shipment_id, loaded in batch.loaded.items():
            shipment = uow.shipments.get(tenant_id, shipment_id)
            if shipment is not None:
                try:
                    uow.shipments.save(shipment, loaded_version=loaded)
                except StaleVersionError as exc:
                    raise ConcurrencyConflict(exc.message, extra={"shipment_id": shipment_id}) from exc
        for shipment, scan in batch.handed_over:
            _after_scan(uow, shipment, scan, (), now)
        publish_touched(uow)
        uow.commit()
    counts: dict[str, int] = {s.value: 0 for s in SyncItemStatus}
    for answer in answers:
        counts[answer["status"]] += 1
    return {"device_id": device_id, "synced_at": isoformat(now), "counts": counts, "items": answers}


def _sync_item(uow: SqlAlchemyUnitOfWork, index: int, raw: Mapping[str, Any], *, device_id: str, batch: _Batch,
               policy: FulfillmentPolicy, now: datetime) -> dict[str, Any]:
    tenant_id = uow.actor.tenant_id
    scan_id = raw.get("scan_id") if isinstance(raw, Mapping) and isinstance(raw.get("scan_id"), str) else None
    base: dict[str, Any] = {"index": index, "scan_id": scan_id}

    def refuse(status: SyncItemStatus, code: str, detail: str, *, shipment_id: str | None = None,
               operator: str | None = None, **extra: Any) -> dict[str, Any]:
        uow.shipments.add_rejection(tenant_id=tenant_id, scan_id=scan_id, shipment_id=shipment_id,
                                    device_id=device_id, operator=operator, status=status.value, code=code,
                                    detail=detail, item=dict(raw) if isinstance(raw, Mapping) else {"item": raw},
                                    now=now)
        return {**base, "status": status.value, "error": {"code": code, "detail": detail, **extra}}

    try:
        shipment_id, seen_version, scan_input = _parse_item(raw)
        scan = _scan_of(scan_input, device_id, now)
    except InvalidInput as exc:
        where = f"items[{index}].{exc.field}" if exc.field else f"items[{index}]"
        return refuse(SyncItemStatus.REJECTED, exc.code, f"{where}: {exc.message}", field=where)
    previous = uow.shipments.scan_answer(tenant_id, scan.scan_id)
    if previous is not None:
        return {**base, **previous, "status": SyncItemStatus.DUPLICATE.value, "index": index}
    locked = _guard_operator(uow, tenant_id, scan.operator, device_id=device_id, policy=policy, now=now)
    if locked is not None:
        return refuse(SyncItemStatus.REJECTED, OperatorLocked.code, locked, shipment_id=shipment_id,
                      operator=scan.operator)
    shipment = uow.shipments.get(tenant_id, shipment_id)
    if shipment is None:
        return refuse(SyncItemStatus.REJECTED, ShipmentNotFound.code, f"shipment {shipment_id!r} not found",
                      shipment_id=shipment_id, operator=scan.operator)
    batch_base = batch.loaded.get(shipment.id)
    if version_conflict(seen_version, shipment.version, batch_base):
        return refuse(SyncItemStatus.CONFLICT, ShipmentVersionMismatch.code,
                      f"shipment {shipment.id} is at version {shipment.version}; the device saw version "
                      f"{seen_version} and it changed since (another scan or device): reload it and re-scan if "
                      "still needed", shipment_id=shipment.id, operator=scan.operator, current=shipment.snapshot())
    held = _order_hold(uow, shipment)
    if held is not None:
        return refuse(SyncItemStatus.REJECTED, held.code, held.message, shipment_id=shipment.id,
                      operator=scan.operator, expected=held.expected)
    before = shipment.version
    try:
        result = shipment.scan(scan, now=now, tolerance=policy.weight_tolerance)
    except DomainError as exc:
        extra: dict[str, Any] = {"current": shipment.snapshot()}
        expected = getattr(exc, "expected", None)
        if expected:
            extra["expected"] = expected
        return refuse(SyncItemStatus.REJECTED, exc.code, exc.message, shipment_id=shipment.id,
                      operator=scan.operator, **extra)
    batch.loaded.setdefault(shipment.id, before)
    answer = _answer(shipment, scan, result.flags)
    uow.shipments.add_scan(tenant_id=tenant_id, scan_id=scan.scan_id, shipment_id=shipment.id, step=scan.step.value,
                           operator=scan.operator, device_id=device_id, barcode=scan.barcode, quantity=scan.quantity,
                           weight_g=scan.weight_g, flags=result.flags, result=answer, occurred_at=scan.occurred_at,
                           now=now)
    if "weight_out_of_tolerance" in result.flags:
        _weight_alert(uow, shipment, now)
    if scan.step is ScanStep.HANDOVER:
        batch.handed_over.append((shipment, scan))
    return {**base, **answer, "index": index}


# --------------------------------------------------------------------------- devices
def device_heartbeat(cmd: DeviceHeartbeat, uow: SqlAlchemyUnitOfWork) -> dict[str, Any]:
    """Record a handheld's heartbeat (and who is signed in on it)."""
    tenant_id = cmd.actor.tenant_id
    device_id = _ident(cmd.device_id, "device_id")
    operator = _ident(cmd.operator, "operator") if cmd.operator is not None else None
    app_version = _text(cmd.app_version, "app_version", limit=40)
    with uow:
        uow.act_as(cmd.actor)
        now = uow.clock.now()
        uow.devices.touch(tenant_id, device_id, now=now, operator=operator, heartbeat=True, app_version=app_version)
        locked = None
        if operator is not None:
            locked = _guard_operator(uow, tenant_id, operator, device_id=device_id,
                                     policy=load_fulfillment_policy(uow, tenant_id), now=now)
        uow.commit()
        return {"device_id": device_id, "heartbeat_at": isoformat(now), "operator": operator,
                "operator_locked": locked is not None}


def unlock_operator(cmd: UnlockOperator, uow: SqlAlchemyUnitOfWork) -> bool:
    """Lift an operator's lock; False when it wasn't locked."""
    operator = _ident(cmd.operator, "operator")
    with uow:
        uow.act_as(cmd.actor)
        unlocked = uow.devices.unlock(cmd.actor.tenant_id, operator)
        if unlocked:
            uow.channel_state.resolve_alerts(cmd.actor.tenant_id, f"operator:{operator}", "operator_locked",
                                             uow.clock.now())
        uow.commit()
        return unlocked


# --------------------------------------------------------------------------- timers
def check_stalls(cmd: CheckStalls, uow: SqlAlchemyUnitOfWork) -> int:
    """Raise the stall level of parcels that stopped moving; each raise is an alert row and
    an event (``shipment.stalled``, delivered to subscribers through the outbox: level 1 the
    buyer notice, level 2 a customer-service task, level 3 the compensation flag)."""
    with uow:
        now = uow.clock.now()
        # The smallest threshold any tenant could use is one hour: nothing younger can be due.
        candidates = uow.shipments.moving(progress_before=now - timedelta(hours=1), limit=cmd.limit)
        raised = 0
        policies: dict[str, FulfillmentPolicy] = {}
        for shipment in candidates:
            policy = policies.get(shipment.tenant_id)
            if policy is None:
                policy = policies[shipment.tenant_id] = load_fulfillment_policy(uow, shipment.tenant_id)
            loaded = shipment.version
            if not escalate(shipment, policy.stalls, now=now):
                continue
            level = shipment.stall_level
            hours = int((now - shipment.last_progress_at).total_seconds() // 3600)
            uow.channel_state.add_alert(
                tenant_id=shipment.tenant_id, alert_id=ids.new_id("alr"), kind=STALL_KINDS[level],
                severity=STALL_SEVERITY[level], subject=f"shipment:{shipment.id}",
                message=f"shipment {shipment.id} ({shipment.carrier} {shipment.waybill_no}) has made no tracking "
                        f"progress for {hours} h at {shipment.milestone or shipment.status.value}: stall level {level}",
                details={"level": level, "order_id": shipment.order_id, "waybill_no": shipment.waybill_no,
                         "milestone": shipment.milestone.value if shipment.milestone else None,
                         "since": isoformat(shipment.last_progress_at)}, now=now)
            uow.shipments.save(shipment, loaded_version=loaded)
            raised += 1
        uow.commit()
        return raised


def complete_delivered(cmd: CompleteDelivered, uow: SqlAlchemyUnitOfWork) -> int:
    """Complete delivered orders whose tenant's after-sale window has passed since delivery."""
    with uow:
        now = uow.clock.now()
        done = 0
        for tenant_id in uow.shipments.tenants_with_delivered_orders():
            window = load_fulfillment_policy(uow, tenant_id).aftersale_window
            for order_id in uow.shipments.delivered_before(tenant_id, now - window, limit=cmd.limit - done):
                order = uow.orders.get(tenant_id, order_id)
                if order is None or order.status is not OrderStatus.DELIVERED:
                    continue
                loaded = order.version
                before = OrderState.of(order)
                outcome = order.apply(OrderEvent(OrderEventType.COMPLETE, occurred_at=now,
                                                 reason=f"after-sale window of {window.days} day(s) passed",
                                                 key=f"complete:{order.id}"), now=now)
                if outcome is ApplyOutcome.APPLIED:
                    after_order_change(uow, order, before, now=now)
                    uow.orders.save(order, loaded_version=loaded)
                    done += 1
            if done >= cmd.limit:
                break
        uow.commit()
        return done

"""Command handlers for carrier tracking (issue 5 scope 3): carrier events from pushes and
polls are deduplicated, normalized to milestones through the carrier's code table and the
tenant's overrides, applied to shipments in time order, and the orders follow.

An unknown code never changes anything: the event is stored (outcome ``unknown``), counted
per carrier and code, and alerted once per code until the tenant maps it; storing an
override replays the stored unknown events.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from orderhub.adapters.carriers.code_tables import CARRIER_IDS
from orderhub.adapters.db.errors import StaleVersionError
from orderhub.adapters.db.fulfillment import TrackingEventRow
from orderhub.adapters.metrics import Metrics
from orderhub.domain import ids
from orderhub.domain.commands import CarrierEventInput, ReceiveTrackingEvents, ReplayUnknownTracking
from orderhub.domain.errors import DomainError, SignatureInvalid
from orderhub.domain.fulfillment.shipment import Shipment
from orderhub.domain.fulfillment.states import IN_WAREHOUSE, ShipmentStatus
from orderhub.domain.fulfillment.tracking import TrackingUpdate
from orderhub.domain.orders.model import Order
from orderhub.domain.time import isoformat
from orderhub.domain.tracking.codes import CodeBook
from orderhub.service_layer.errors import ConcurrencyConflict, InvalidInput, WaybillNotFound
from orderhub.service_layer.fulfillment import follow_shipments
from orderhub.service_layer.fulfillment_rules import CodeBooks
from orderhub.service_layer.inventory import publish_touched
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

log = structlog.get_logger(__name__)

UNKNOWN = "unknown"
DUPLICATE = "duplicate"
UNKNOWN_WAYBILL = "unknown_waybill"
MAX_EVENTS = 2000
RETRIES = 5  # concurrent pushes about the same parcels retry on the fresh rows


def dedup_key(carrier: str, event: CarrierEventInput) -> str:
    """The key a carrier event is stored under: the same checkpoint pushed twice, or pushed
    and polled, is one row."""
    text = f"{carrier}|{event.waybill_no}|{event.code}|{isoformat(event.occurred_at)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


@dataclass(slots=True)
class _Run:
    """One batch's bookkeeping: shipments it changed (with the version each was loaded at),
    unknown codes per tenant, per-item answers."""

    loaded: dict[tuple[str, str], tuple[int, ShipmentStatus]]
    unknown: Counter[tuple[str, str]]
    answers: list[dict[str, Any]]


def _check_carrier(carrier: str) -> None:
    if carrier not in CARRIER_IDS:
        raise InvalidInput(f"carrier: unknown carrier {carrier!r}; known: {', '.join(CARRIER_IDS)}", field="carrier")


def receive_tracking_events(cmd: ReceiveTrackingEvents, uow: SqlAlchemyUnitOfWork, *, books: CodeBooks,
                            metrics: Metrics) -> dict[str, Any]:
    """Store and apply a batch of one carrier's events; answers per event. A push (``verify``
    set) is checked against the secret of every tenant whose waybills it names before
    anything is stored: SignatureInvalid when any doesn't match, WaybillNotFound when it
    names no known waybill at all."""
    _check_carrier(cmd.carrier)
    if not cmd.events:
        raise InvalidInput("events: the push carries no events", field="events")
    if len(cmd.events) > MAX_EVENTS:
        raise InvalidInput(f"events: at most {MAX_EVENTS} events per push, got {len(cmd.events)}", field="events")
    for attempt in range(RETRIES):
        try:
            return _receive(cmd, uow, books=books, metrics=metrics)
        except ConcurrencyConflict:
            if attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _receive(cmd: ReceiveTrackingEvents, uow: SqlAlchemyUnitOfWork, *, books: CodeBooks,
             metrics: Metrics) -> dict[str, Any]:
    carrier = cmd.carrier
    with uow:
        now = uow.clock.now()
        shipments = uow.shipments.by_waybills(carrier, (e.waybill_no for e in cmd.events))
        if cmd.tenant_id is not None:
            shipments = {w: s for w, s in shipments.items() if s.tenant_id == cmd.tenant_id}
        tenants = sorted({s.tenant_id for s in shipments.values()})
        if cmd.verify is not None:
            _verify(uow, carrier, tenants, cmd.verify, [e.waybill_no for e in cmd.events])
        known: set[str] = set()
        keys = [dedup_key(carrier, e) for e in cmd.events]
        for tenant_id in tenants:
            known |= uow.shipments.known_dedup_keys(tenant_id, keys)
        run = _Run(loaded={}, unknown=Counter(), answers=[{} for _ in cmd.events])
        books_by_tenant: dict[str, CodeBook] = {}
        rows: list[TrackingEventRow] = []
        seen: set[str] = set()
        # Oldest first: out-of-order events within one push are applied in the carrier's order.
        order = sorted(range(len(cmd.events)), key=lambda i: cmd.events[i].occurred_at)
        for i in order:
            event, key = cmd.events[i], keys[i]
            answer: dict[str, Any] = {"waybill_no": event.waybill_no, "code": event.code,
                                      "occurred_at": isoformat(event.occurred_at)}
            run.answers[i] = answer
            shipment = shipments.get(event.waybill_no)
            if shipment is None:
                answer.update(outcome=UNKNOWN_WAYBILL, error=f"no shipment of {carrier} has waybill "
                                                             f"{event.waybill_no!r}")
                continue
            if key in known or key in seen:
                answer["outcome"] = DUPLICATE
                continue
            seen.add(key)
            book = books_by_tenant.get(shipment.tenant_id)
            if book is None:
                book = books_by_tenant[shipment.tenant_id] = books.for_tenant(uow, shipment.tenant_id)
            row = _apply(run, shipment, event, carrier=carrier, key=key, book=book, source=cmd.source, now=now)
            answer.update(outcome=row.outcome, milestone=row.milestone, sub_status=row.sub_status,
                          shipment_id=shipment.id)
            rows.append(row)
        uow.shipments.add_tracking_events(rows)
        _finish(uow, run, shipments.values(), carrier, now=now)
        publish_touched(uow)
        uow.commit()
    for row in rows:
        metrics.tracking_events.labels(carrier, row.outcome).inc()
    for (_tenant, code), count in run.unknown.items():
        metrics.tracking_unknown_codes.labels(carrier, code[:40]).inc(count)
    counts = Counter(a["outcome"] for a in run.answers)
    return {"carrier": carrier, "received": len(cmd.events), "counts": dict(counts), "items": run.answers}


def _verify(uow: SqlAlchemyUnitOfWork, carrier: str, tenants: Sequence[str], verify: object,
            waybills: Sequence[str]) -> None:
    if not tenants:
        listed = ", ".join(sorted(set(waybills))[:5])
        raise WaybillNotFound(f"no shipment of {carrier} has any of the waybills in this push ({listed}); nothing "
                              "was stored", extra={"waybills": sorted(set(waybills))[:50]})
    check: Callable[[str], bool] = verify  # type: ignore[assignment]
    for tenant_id in tenants:
        account = uow.shipments.account(tenant_id, carrier)
        if account is None or not check(account.push_secret):
            raise SignatureInvalid(f"the push's signature doesn't match the {carrier} account's push secret of the "
                                   "merchant whose waybills it names; nothing was stored")


def _apply(run: _Run, shipment: Shipment, event: CarrierEventInput, *, carrier: str, key: str, book: CodeBook,
           source: str, now: datetime) -> TrackingEventRow:
    mapping = book.normalize(carrier, event.code, event.description)
    milestone = sub_status = None
    if mapping is None:
        outcome = UNKNOWN
        run.unknown[(shipment.tenant_id, event.code)] += 1
    else:
        milestone, sub_status = mapping.milestone.value, mapping.sub_status
        run.loaded.setdefault((shipment.tenant_id, shipment.id), (shipment.version, shipment.status))
        try:
            outcome = shipment.apply_tracking(TrackingUpdate(code=event.code, milestone=mapping.milestone,
                                                             sub_status=mapping.sub_status,
                                                             occurred_at=event.occurred_at,
                                                             description=event.description), now=now).value
        except DomainError as exc:
            # A carrier clock far ahead, a blank code: kept as received, never applied.
            log.warning("tracking_event_refused", shipment_id=shipment.id, code=event.code, error=exc.message)
            outcome = "refused"
    return TrackingEventRow(
        tenant_id=shipment.tenant_id, dedup_key=key, shipment_id=shipment.id, carrier=carrier,
        waybill_no=event.waybill_no, code=event.code[:100], description=event.description,
        location=(event.location or None) and event.location[:200], occurred_at=event.occurred_at,
        milestone=milestone, sub_status=sub_status, outcome=outcome, source=source, raw=dict(event.raw),
        received_at=now)


def _finish(uow: SqlAlchemyUnitOfWork, run: _Run, shipments: Any, carrier: str, *, now: datetime) -> None:
    """Save changed shipments, move their orders, alert unknown codes."""
    by_key = {(s.tenant_id, s.id): s for s in shipments}
    # Primary-key order: two pushes naming the same parcels lock their rows in the same order
    # and queue instead of deadlocking.
    changed = sorted(((by_key[k], v) for k, (v, _) in run.loaded.items() if by_key[k].version != v),
                     key=lambda item: (item[0].tenant_id, item[0].id))
    try:
        uow.shipments.save_many(changed)
    except StaleVersionError as exc:
        raise ConcurrencyConflict(exc.message) from exc
    # Only a parcel leaving the warehouse (an implicit handover) or arriving can move its order;
    # hub-to-hub progress never does, and it is most of the traffic.
    orders_to_follow = sorted({(by_key[k].tenant_id, by_key[k].order_id)
                               for k, (_, before) in run.loaded.items()
                               if by_key[k].status is not before
                               and (before in IN_WAREHOUSE or by_key[k].status is ShipmentStatus.DELIVERED)})
    by_tenant: dict[str, list[str]] = {}
    for tenant_id, order_id in orders_to_follow:
        by_tenant.setdefault(tenant_id, []).append(order_id)
    for tenant_id, order_ids in sorted(by_tenant.items()):
        # One query for the orders and one for their shipments, not two per order.
        loaded_orders = uow.orders.get_many(tenant_id, order_ids)
        parcels = uow.shipments.for_orders(tenant_id, order_ids)
        for order_id in order_ids:
            _follow(uow, loaded_orders.get(order_id), parcels.get(order_id, []), now=now)
    _alert_unknown(uow, run, carrier, now=now)


def _follow(uow: SqlAlchemyUnitOfWork, order: Order | None, mine: list[Shipment], *, now: datetime) -> None:
    """Move one order where its shipments are (saved only when it changed)."""
    if order is not None:
        loaded = order.version
        latest = max((s.delivered_at or s.handed_over_at or now for s in mine), default=now)
        follow_shipments(uow, order, mine, now=now, occurred_at=latest)
        if order.version != loaded:
            uow.orders.save(order, loaded_version=loaded)


def _alert_unknown(uow: SqlAlchemyUnitOfWork, run: _Run, carrier: str, *, now: datetime) -> None:
    """One open alert per tenant, carrier and unknown code."""
    for (tenant_id, code), count in sorted(run.unknown.items()):
        subject = f"carrier:{carrier}:{code}"[:200]
        if uow.channel_state.has_open_alert(tenant_id, subject, "carrier_code_unknown"):
            continue
        uow.channel_state.add_alert(
            tenant_id=tenant_id, alert_id=ids.new_id("alr"), kind="carrier_code_unknown", severity="warning",
            subject=subject,
            message=f"{carrier} sent tracking code {code!r}, which no code table or override maps; the events are "
                    f"stored and changed nothing. Map it with PUT /api/v1/rules/carrier_codes "
                    f'(e.g. {{"overrides": {{"{carrier}": {{"{code}": {{"milestone": "delivered"}}}}}}}}) and '
                    "the stored events are applied",
            details={"carrier": carrier, "code": code, "count": count}, now=now)


def replay_unknown_tracking(cmd: ReplayUnknownTracking, uow: SqlAlchemyUnitOfWork, *, books: CodeBooks) -> int:
    """Apply stored events whose code was unknown and that the tenant's code book now maps;
    returns how many were understood. Their alerts are resolved once no event of the code
    is left unknown."""
    with uow:
        now = uow.clock.now()
        book = books.for_tenant(uow, cmd.tenant_id)
        rows = uow.shipments.unknown_events(cmd.tenant_id, cmd.carrier)
        run = _Run(loaded={}, unknown=Counter(), answers=[])
        touched: dict[tuple[str, str], Shipment] = {}
        understood = 0
        resolved_codes: set[tuple[str, str]] = set()
        for row in rows:
            mapping = book.normalize(row.carrier, row.code, row.description)
            if mapping is None:
                continue
            shipment = uow.shipments.get(cmd.tenant_id, row.shipment_id)
            if shipment is None:
                continue
            touched[(shipment.tenant_id, shipment.id)] = shipment
            run.loaded.setdefault((shipment.tenant_id, shipment.id), (shipment.version, shipment.status))
            try:
                outcome = shipment.apply_tracking(TrackingUpdate(
                    code=row.code, milestone=mapping.milestone, sub_status=mapping.sub_status,
                    occurred_at=row.occurred_at, description=row.description), now=now).value
            except DomainError:
                outcome = "refused"
            uow.shipments.mark_event(row.id, milestone=mapping.milestone.value, sub_status=mapping.sub_status,
                                     outcome=outcome)
            resolved_codes.add((row.carrier, row.code))
            understood += 1
        _finish(uow, run, touched.values(), cmd.carrier or "", now=now)
        for carrier, code in sorted(resolved_codes):
            if uow.shipments.count_unknown(cmd.tenant_id, carrier, code) == 0:
                uow.channel_state.resolve_alerts(cmd.tenant_id, f"carrier:{carrier}:{code}"[:200],
                                                 "carrier_code_unknown", now)
        publish_touched(uow)
        uow.commit()
        if understood:
            log.info("tracking_unknown_replayed", tenant_id=cmd.tenant_id, understood=understood)
        return understood

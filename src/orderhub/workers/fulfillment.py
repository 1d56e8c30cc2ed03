"""Fulfillment workers: the planner (paid orders → shipments), the carrier relay (waybill
requests from the outbox → the carrier's API → the waybill stored), the tracking poller
(carriers asked for parcels they still move) and the timers (stall levels, completing
delivered orders after the after-sale window).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
import structlog

from orderhub.adapters.carriers.base import CarrierAccount, CarrierAdapter, CarrierEvent, Party, WaybillRequest
from orderhub.adapters.carriers.errors import CarrierError, CarrierRejected, CarrierUnavailable, WaybillNotFound
from orderhub.adapters.carriers.registry import build_adapter
from orderhub.adapters.db.fulfillment import CarrierAccountRow
from orderhub.adapters.db.outbox import ClaimedMessage
from orderhub.domain import ids
from orderhub.domain.commands import (
    CarrierEventInput,
    CheckStalls,
    CompleteDelivered,
    PlanFulfilment,
    ReceiveTrackingEvents,
    RecordWaybill,
)
from orderhub.service_layer.fulfillment import CARRIER_WAYBILL
from orderhub.service_layer.fulfillment_rules import load_fulfillment_policy
from orderhub.service_layer.shipments import CARRIER_CANCEL
from orderhub.workers.http_client import WorkerHttp
from orderhub.workers.outbox_relay import OutboxWorker, PermanentFailure, network_failure
from orderhub.workers.timers import CommandTimer

if TYPE_CHECKING:
    from orderhub.bootstrap import OrderHub

log = structlog.get_logger(__name__)


def _account(row: CarrierAccountRow) -> CarrierAccount:
    return CarrierAccount(carrier=row.carrier, protocol=row.protocol, api_base_url=row.api_base_url,
                          api_key=row.api_key, push_secret=row.push_secret)


class FulfilmentPlanner:
    """Gives paid, released orders their shipments (a :class:`~orderhub.workers.runner.Worker`)."""

    name = "fulfilment_planner"

    def __init__(self, hub: OrderHub, *, batch_size: int = 50) -> None:
        self._bus = hub.bus
        self._batch_size = batch_size

    def run_once(self) -> int:
        """Plan up to ``batch_size`` orders; returns how many got shipments."""
        planned: int = self._bus.handle(PlanFulfilment(limit=self._batch_size))
        return planned


class CarrierWaybillRelay(OutboxWorker):
    """Delivers ``carrier_waybill`` outbox rows: asks the shipment's carrier for a waybill
    (idempotent per shipment id, so a retry after a lost answer gets the same number) and
    stores it through the bus. A carrier that is down or throttling is retried with backoff;
    one that refuses the request (bad address, no account) dead-letters the row and raises
    an alert, since retrying can't fix it."""

    kinds = (CARRIER_WAYBILL, CARRIER_CANCEL)

    def __init__(self, hub: OrderHub, *, http_client: httpx.Client | None = None, timeout: float = 10.0,
                 **options: object) -> None:
        super().__init__(hub.engine, hub.clock, hub.metrics, timeout=timeout, name="carrier_waybill",
                         **options)  # type: ignore[arg-type]
        self._hub = hub
        self._client = WorkerHttp(http_client, timeout=timeout)
        self._http = self._client.client

    def close(self) -> None:
        """Close the HTTP client if this relay made it."""
        self._client.close()

    def deliver(self, message: ClaimedMessage) -> str | None:
        """Request the waybill for the shipment named in ``message`` (or void one)."""
        if message.kind == CARRIER_CANCEL:
            return self._void(message)
        shipment_id = str(message.payload.get("shipment_id", ""))
        request, account = self._request(message.tenant_id, shipment_id)
        if request is None or account is None:
            return None  # nothing left to do (cancelled, or it has its waybill already)
        adapter: CarrierAdapter = build_adapter(_account(account), http=self._http)
        try:
            waybill = adapter.create_waybill(request)
        except CarrierUnavailable as exc:
            return exc.message
        except CarrierRejected as exc:
            self._alert(message.tenant_id, shipment_id, f"{account.carrier} refused the waybill request for shipment "
                                                        f"{shipment_id}: {exc.message}")
            raise PermanentFailure(f"{account.carrier} refused: {exc.message}") from exc
        except CarrierError as exc:
            return exc.message
        except httpx.HTTPError as exc:
            return network_failure(exc)
        self._hub.bus.handle(RecordWaybill(tenant_id=message.tenant_id, shipment_id=shipment_id,
                                           waybill_no=waybill.waybill_no))
        return None

    def _void(self, message: ClaimedMessage) -> str | None:
        """Void the waybill of a cancelled shipment; a parcel the carrier already picked up
        can't be voided: that is dead-lettered with an alert (intercept it instead)."""
        tenant_id = message.tenant_id
        waybill_no = str(message.payload.get("waybill_no", ""))
        shipment_id = str(message.payload.get("shipment_id", ""))
        with self._hub.uow_factory() as uow:
            account = uow.shipments.account(tenant_id, message.target)
        if account is None:
            raise PermanentFailure(f"no {message.target} carrier account to void waybill {waybill_no}",
                                   attempted=False)
        try:
            build_adapter(_account(account), http=self._http).cancel_waybill(waybill_no)
        except WaybillNotFound:
            return None  # nothing to void
        except CarrierUnavailable as exc:
            return exc.message
        except CarrierRejected as exc:
            self._alert(tenant_id, shipment_id, f"{account.carrier} refused to void waybill {waybill_no} of cancelled "
                                                f"shipment {shipment_id}: {exc.message}; intercept the parcel")
            raise PermanentFailure(f"{account.carrier} refused to void: {exc.message}") from exc
        except (CarrierError, httpx.HTTPError) as exc:
            return str(exc)
        return None

    def _request(self, tenant_id: str, shipment_id: str) -> tuple[WaybillRequest | None, CarrierAccountRow | None]:
        with self._hub.uow_factory() as uow:
            shipment = uow.shipments.get(tenant_id, shipment_id)
            if shipment is None:
                raise PermanentFailure(f"shipment {shipment_id} no longer exists", attempted=False)
            if shipment.waybill_no is not None or not shipment.is_open or shipment.carrier is None:
                return None, None
            account = uow.shipments.account(tenant_id, shipment.carrier)
            if account is None:
                problem = (f"no {shipment.carrier} carrier account: add one (orderhub carriers add "
                           f"{shipment.carrier} …) and retry the dead message (orderhub outbox retry-dead)")
                self._alert(tenant_id, shipment_id, f"shipment {shipment_id}: {problem}")
                raise PermanentFailure(problem, attempted=False)
            order = uow.orders.get(tenant_id, shipment.order_id)
            house = uow.inventory.warehouse(tenant_id, shipment.warehouse)
        if order is None:
            raise PermanentFailure(f"order {shipment.order_id} of shipment {shipment_id} no longer exists",
                                   attempted=False)
        address = order.shipping_address
        recipient = Party(name=(address.name if address else None) or order.buyer.name,
                          phone=(address.phone if address else None) or order.buyer.phone,
                          country=address.country if address else "", province=address.province if address else None,
                          city=address.city if address else None, district=address.district if address else None,
                          detail=address.detail if address else None, postcode=address.postcode if address else None)
        sender = Party(name=house.name if house else shipment.warehouse, phone=None, country="CN",
                       province=house.province if house else None, city=house.city if house else None,
                       district=None, detail=None, postcode=None)
        by_line = {line.line_no: line for line in order.lines}
        value = sum(by_line[ln.line_no].unit_price.amount * ln.quantity for ln in shipment.lines
                    if ln.line_no in by_line)
        return WaybillRequest(shipment_id=shipment.id, carrier=shipment.carrier, service=shipment.service,
                              sender=sender, recipient=recipient, weight_g=max(shipment.expected_weight_g, 1),
                              declared_value_minor=value, currency=order.currency, reference=order.external_id), account

    def _alert(self, tenant_id: str, shipment_id: str, message: str) -> None:
        with self._hub.uow_factory() as uow:
            uow.channel_state.add_alert(tenant_id=tenant_id, alert_id=ids.new_id("alr"), kind="waybill_failed",
                                        severity="critical", subject=f"shipment:{shipment_id}", message=message,
                                        details={"shipment_id": shipment_id}, now=self._clock.now())
            uow.commit()


class TrackingPoller:
    """Fetches tracking from carriers for parcels they still move, on the schedule the
    tenant's policy sets (``tracking_poll_minutes``), through the same path as pushes (so a
    checkpoint seen by push and by poll is one event)."""

    name = "tracking_poller"

    def __init__(self, hub: OrderHub, *, http_client: httpx.Client | None = None, batch_size: int = 20,
                 timeout: float = 10.0) -> None:
        self._hub = hub
        self._batch_size = batch_size
        self._client = WorkerHttp(http_client, timeout=timeout)
        self._http = self._client.client

    def close(self) -> None:
        """Close the HTTP client if this poller made it."""
        self._client.close()

    def run_once(self) -> int:
        """Poll up to ``batch_size`` due shipments; returns how many were asked for."""
        with self._hub.uow_factory() as uow:
            due = [(s.tenant_id, s.id, s.carrier or "", s.waybill_no or "", s.is_open)
                   for s in uow.shipments.due_for_poll(now=self._hub.clock.now(), limit=self._batch_size)]
            accounts = {(t, c): uow.shipments.account(t, c) for t, _, c, _, _ in due}
        for tenant_id, shipment_id, carrier, waybill_no, is_open in due:
            account = accounts.get((tenant_id, carrier))
            events: list[CarrierEvent] = []
            if is_open and account is not None:
                try:
                    events = build_adapter(_account(account), http=self._http).fetch_tracking(waybill_no)
                except (CarrierError, httpx.HTTPError) as exc:
                    log.warning("tracking_poll_failed", shipment_id=shipment_id, carrier=carrier, error=str(exc))
            if events:
                try:
                    self._hub.bus.handle(ReceiveTrackingEvents(
                        carrier=carrier, source="poll", tenant_id=tenant_id,
                        events=tuple(CarrierEventInput(waybill_no=e.waybill_no, code=e.code, description=e.description,
                                                       occurred_at=e.occurred_at, location=e.location,
                                                       raw=dict(e.raw)) for e in events)))
                except Exception:  # one parcel's bad data must not stop the others' polls
                    log.exception("tracking_poll_apply_failed", shipment_id=shipment_id)
            self._reschedule(tenant_id, shipment_id)
        return len(due)

    def _reschedule(self, tenant_id: str, shipment_id: str) -> None:
        with self._hub.uow_factory() as uow:
            shipment = uow.shipments.get(tenant_id, shipment_id)
            if shipment is None:
                return
            every = load_fulfillment_policy(uow, tenant_id).tracking_poll
            uow.shipments.schedule_poll(tenant_id, shipment_id,
                                        self._hub.clock.now() + every if shipment.is_open else None)
            uow.commit()


class FulfilmentTimers(CommandTimer):
    """Stall escalation and completing delivered orders, at most every ``every``."""

    def __init__(self, hub: OrderHub, *, every: timedelta = timedelta(seconds=5)) -> None:
        super().__init__(hub, name="fulfilment_timers", commands=(CheckStalls, CompleteDelivered), every=every)

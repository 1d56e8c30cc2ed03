"""Shipments, warehouse scans, handheld devices, carrier accounts and carrier pushes
(DESIGN.md §6, issue 5): thin — parse, build a command, hand it to the bus.

Carrier pushes (``POST /webhooks/carriers/{carrier}``) carry no API key: the carrier
account's push secret, checked against the push's signature on the raw bytes, is the
authentication.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from orderhub.adapters.carriers.errors import PushUnreadable
from orderhub.adapters.carriers.push import push_format_for
from orderhub.domain import commands
from orderhub.domain.access import Permission
from orderhub.entrypoints.api.deps import CanReadOrders, Hub, Principal, get_hub, require
from orderhub.entrypoints.api.errors import problem
from orderhub.entrypoints.api.routes.webhooks import MAX_BODY, read_limited
from orderhub.entrypoints.api.schemas import Clean

router = APIRouter(prefix="/api/v1", tags=["fulfillment"])
carrier_push_router = APIRouter(prefix="/webhooks/carriers", tags=["carrier webhooks"])

CanScan = Annotated[Principal, Depends(require(Permission.WAREHOUSE_SCAN))]
CanManageCarriers = Annotated[Principal, Depends(require(Permission.CARRIERS_MANAGE))]
CanManageOperators = Annotated[Principal, Depends(require(Permission.OPERATORS_MANAGE))]

Ident = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100,
                                         pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"), Clean]
IdentPath = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$")]
Whole = Annotated[int, Field(strict=True, ge=0, le=1_000_000_000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScanIn(_In):
    """``POST /api/v1/shipments/{id}/scans``: one scan from a handheld or a fixed scanner."""

    scan_id: Ident = Field(description="the device's own id for this scan: a resend is answered as a duplicate")
    step: Literal["pick", "verify", "pack", "weigh", "handover"]
    operator: Ident = Field(description="the warehouse account that scanned")
    device_id: Ident | None = None
    barcode: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Clean] | None = None
    quantity: Whole = 1
    weight_g: Whole | None = Field(default=None, description="grams, for the weigh step")
    occurred_at: AwareDatetime | None = None
    expected_version: Annotated[int, Field(strict=True, ge=1)] | None = Field(
        default=None, description="the shipment version the device saw; a changed shipment is a 409")


class SyncIn(_In):
    """``POST /api/v1/devices/{device_id}/sync``: scans recorded offline, in the order made.
    Items are checked one by one (a malformed item is answered on its own)."""

    # Any JSON value per item: one that isn't an object is answered ``rejected`` on its own
    # (``items[3]``), never a 422 for the whole batch.
    items: list[Any] = Field(max_length=500)


class HeartbeatIn(_In):
    """``POST /api/v1/devices/{device_id}/heartbeat``."""

    operator: Ident | None = None
    app_version: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)] | None = None


class CarrierAccountIn(_In):
    """``POST /api/v1/carrier-accounts``: connect the tenant to a carrier (replaces an earlier one)."""

    carrier: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=20)]
    api_base_url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=500)]
    api_key: Annotated[str, StringConstraints(min_length=8, max_length=200)]
    push_secret: Annotated[str, StringConstraints(min_length=8, max_length=200)]
    protocol: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)] = "simulated"


# --------------------------------------------------------------------------- shipments
@router.get("/shipments")
def list_shipments(principal: CanReadOrders, hub: Hub, order_id: Annotated[str | None, Query(max_length=40)] = None,
                   status_: Annotated[str | None, Query(alias="status", max_length=20)] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    """The tenant's shipments, newest first."""
    return {"items": hub.queries.shipments(principal.tenant_id, order_id=order_id, status=status_, limit=limit)}


@router.get("/shipments/{shipment_id}")
def get_shipment(shipment_id: Annotated[str, Path(max_length=40)], principal: CanReadOrders,
                 hub: Hub) -> dict[str, Any]:
    """A shipment with its lines, scans (and refused ones), carrier events and next step."""
    return hub.queries.shipment(principal.tenant_id, shipment_id)


@router.post("/shipments/{shipment_id}/scans")
def scan_shipment(shipment_id: Annotated[str, Path(max_length=40)], body: ScanIn, principal: CanScan,
                  hub: Hub) -> dict[str, Any]:
    """Apply one scan: 200 with the shipment after it (``status`` applied or duplicate); 422
    ``scan_rejected`` with what was expected; 409 when the shipment left the warehouse or
    changed since ``expected_version``; 403 ``operator_locked``."""
    answer: dict[str, Any] = hub.bus.handle(commands.RecordScan(
        actor=principal.actor(), shipment_id=shipment_id, device_id=body.device_id,
        expected_version=body.expected_version,
        scan=commands.ScanInput(scan_id=body.scan_id, step=body.step, operator=body.operator,
                                occurred_at=body.occurred_at, barcode=body.barcode, quantity=body.quantity,
                                weight_g=body.weight_g)))
    return answer


# --------------------------------------------------------------------------- devices
@router.post("/devices/{device_id}/sync")
def sync_device(device_id: IdentPath, body: SyncIn, principal: CanScan, hub: Hub) -> dict[str, Any]:
    """Apply an offline batch; every item is answered (applied, duplicate, conflict with the
    current shipment, rejected with why). Items that weren't applied are kept."""
    result: dict[str, Any] = hub.bus.handle(commands.SyncDevice(
        actor=principal.actor(), device_id=device_id,
        items=tuple(commands.SyncItemInput(index=i, raw=item) for i, item in enumerate(body.items))))
    return result


@router.post("/devices/{device_id}/heartbeat")
def heartbeat(device_id: IdentPath, body: HeartbeatIn, principal: CanScan, hub: Hub) -> dict[str, Any]:
    """Record that a handheld is alive (and who is signed in)."""
    result: dict[str, Any] = hub.bus.handle(commands.DeviceHeartbeat(
        actor=principal.actor(), device_id=device_id, operator=body.operator, app_version=body.app_version))
    return result


@router.get("/devices")
def list_devices(principal: CanReadOrders, hub: Hub) -> dict[str, Any]:
    """Devices (last heartbeat, last sync, refused items), locked operators and who used what."""
    return hub.queries.devices(principal.tenant_id)


@router.get("/devices/{device_id}/rejections")
def device_rejections(device_id: IdentPath, principal: CanReadOrders, hub: Hub) -> dict[str, Any]:
    """Items this device sent that were refused or in conflict, as sent, newest first."""
    return {"items": hub.queries.device_rejections(principal.tenant_id, device_id)}


@router.post("/operators/{operator}/unlock")
def unlock_operator(operator: IdentPath, principal: CanManageOperators, hub: Hub) -> dict[str, Any]:
    """Give a locked warehouse account its write access back."""
    unlocked = hub.bus.handle(commands.UnlockOperator(actor=principal.actor(), operator=operator))
    return {"operator": operator, "unlocked": unlocked}


# --------------------------------------------------------------------------- carriers
@router.post("/carrier-accounts", status_code=status.HTTP_201_CREATED)
def add_carrier_account(body: CarrierAccountIn, principal: CanManageCarriers, hub: Hub) -> dict[str, Any]:
    """Connect a carrier (key and push secret are never returned)."""
    row = hub.bus.handle(commands.AddCarrierAccount(
        actor=principal.actor(), carrier=body.carrier, api_base_url=body.api_base_url, api_key=body.api_key,
        push_secret=body.push_secret, protocol=body.protocol))
    return {"carrier": row.carrier, "protocol": row.protocol, "api_base_url": row.api_base_url}


@router.get("/carrier-accounts")
def list_carrier_accounts(principal: CanReadOrders, hub: Hub) -> dict[str, Any]:
    """The tenant's carrier accounts (no secrets)."""
    return {"items": hub.queries.carrier_accounts(principal.tenant_id)}


@router.get("/tracking/unknown-codes")
def unknown_codes(principal: CanReadOrders, hub: Hub) -> dict[str, Any]:
    """Carrier codes no table or override maps yet, with how many stored events carry each."""
    return {"items": hub.queries.unknown_codes(principal.tenant_id)}


@carrier_push_router.post("/{carrier}", responses={
    400: {"description": "unreadable push"}, 401: {"description": "bad signature"},
    404: {"description": "no known waybill"}, 413: {"description": "body over 1 MiB"}})
async def carrier_push(carrier: Annotated[str, Path(max_length=20)], request: Request) -> Any:
    """A carrier's tracking push: every event answered (applied, stale, duplicate, unknown code,
    unknown waybill)."""
    body = await read_limited(request)
    if body is None:
        return problem(413, "payload_too_large", f"the push is larger than {MAX_BODY} bytes; send fewer events per "
                       "push", request=request)
    headers = dict(request.headers)
    fmt = push_format_for(carrier, headers.get("content-type"))
    try:
        events = fmt.parse(body, headers)
    except PushUnreadable as exc:
        return problem(400, exc.code, exc.message, request=request, field=exc.path or None)
    hub = get_hub(request)

    def verify(secret: str) -> bool:
        return fmt.verify(body, headers, secret)

    result = await run_in_threadpool(hub.bus.handle, commands.ReceiveTrackingEvents(
        carrier=carrier, source="push", verify=verify,
        events=tuple(commands.CarrierEventInput(waybill_no=e.waybill_no, code=e.code, description=e.description,
                                                occurred_at=e.occurred_at, location=e.location, raw=dict(e.raw))
                     for e in events)))
    return JSONResponse(result, status_code=status.HTTP_200_OK)

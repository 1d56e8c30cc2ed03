"""After-sale cases and the finance ledger (DESIGN.md §6, issue 6): thin — parse, build a
command, hand it to the bus; reads go to the queries."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from orderhub.domain import commands
from orderhub.domain.access import Permission, allows
from orderhub.domain.audit import canonical_json
from orderhub.entrypoints.api.deps import CanReadOrders, CanWriteOrders, Hub, Principal, authenticate, require
from orderhub.entrypoints.api.routes.orders import IdempotencyKey
from orderhub.entrypoints.api.schemas import Clean, MoneyText
from orderhub.service_layer.aftersale_queries import case_view
from orderhub.service_layer.errors import PermissionDenied

router = APIRouter(prefix="/api/v1", tags=["after-sale"])

CanReadFinance = Annotated[Principal, Depends(require(Permission.FINANCE_READ))]
CaseId = Annotated[str, Path(min_length=1, max_length=40)]
# Actions the warehouse takes on a return parcel; every other action is a decision.
WAREHOUSE_ACTIONS = frozenset({"return_shipped", "receive_return"})


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseLineIn(_In):
    """One line of a request: an order line by number or SKU, how many, optionally how much."""

    line_no: Annotated[int, Field(strict=True, ge=1)] | None = None
    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), Clean] | None = None
    quantity: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = 1
    amount: MoneyText | None = None


class CaseIn(_In):
    """``POST /api/v1/aftersales``: a buyer's request on an order."""

    order_id: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    type: Annotated[str, StringConstraints(min_length=1, max_length=24)] = Field(
        examples=["refund_only"], description="refund_only, return_refund, exchange, reship or price_protection")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Clean] = Field(
        examples=["changed_mind"])
    amount: MoneyText | None = Field(default=None, description="partial refund; default: the lines or what is left")
    lines: list[CaseLineIn] = Field(default_factory=list, max_length=200)
    note: Annotated[str, StringConstraints(max_length=1000), Clean] | None = None


class ActionIn(BaseModel):
    """``POST /api/v1/aftersales/{id}/actions``: ``action`` plus its fields (e.g. ``reason``,
    ``amount``, ``option``, ``options``, ``queue``, ``carrier``/``waybill_no``,
    ``warehouse``/``received``)."""

    model_config = ConfigDict(extra="allow")

    action: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    expected_version: Annotated[int, Field(strict=True, ge=1)] | None = None


@router.post("/aftersales", status_code=status.HTTP_201_CREATED)
def create_case(body: CaseIn, principal: CanWriteOrders, hub: Hub, response: Response,
                idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """Open a case; the tenant's refund policy decides it at once (``decision`` names the
    rule). 422 ``refund_exceeds_remaining`` with ``remaining`` when it asks too much. A
    repeated ``Idempotency-Key`` with the same body answers 200 with the same case."""
    request_hash = hashlib.sha256(canonical_json(body.model_dump(mode="json")).encode()).hexdigest()
    result = hub.bus.handle(commands.RequestAfterSale(
        actor=principal.actor(), order_id=body.order_id, type=body.type, reason=body.reason, amount=body.amount,
        note=body.note, lines=tuple(commands.AfterSaleLineInput(quantity=ln.quantity, line_no=ln.line_no, sku=ln.sku,
                                                                 amount=ln.amount) for ln in body.lines),
        idempotency_key=idempotency_key, request_hash=request_hash if idempotency_key else None))
    if not result.created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/aftersales/{result.case.id}"
    return case_view(result.case)


@router.get("/aftersales")
def list_cases(*, principal: CanReadOrders, hub: Hub,
               status_: Annotated[str | None, Query(alias="status", max_length=24)] = None,
               queue: Annotated[str | None, Query(max_length=60)] = None,
               sla: Annotated[str | None, Query(pattern="^(none|yellow|orange|red)$")] = None,
               order_id: Annotated[str | None, Query(max_length=40)] = None,
               include_closed: bool = False,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    """The case queue, most urgent first (red, orange, yellow, then the nearest deadline)."""
    return {"items": hub.queries.aftersale_queue(principal.tenant_id, status=status_, queue=queue, sla=sla,
                                                 order_id=order_id, include_closed=include_closed, limit=limit),
            "counts": hub.queries.aftersale_counts(principal.tenant_id)}


@router.get("/aftersales/{case_id}")
def get_case(case_id: CaseId, principal: CanReadOrders, hub: Hub) -> dict[str, Any]:
    """One case with its order, decision, return parcel, refund, vouchers and timeline."""
    return hub.queries.aftersale(principal.tenant_id, case_id)


@router.post("/aftersales/{case_id}/actions")
def act_on_case(case_id: CaseId, body: ActionIn, principal: Annotated[Principal, Depends(authenticate)],
                hub: Hub) -> dict[str, Any]:
    """Take an action; 409 ``action_not_allowed`` (with ``allowed``) when the case's status
    doesn't allow it, 409 ``aftersale_version_mismatch`` on a stale ``expected_version``."""
    needed = (Permission.WAREHOUSE_SCAN if body.action in WAREHOUSE_ACTIONS and not allows(
        principal.role, Permission.AFTERSALE_DECIDE) else Permission.AFTERSALE_DECIDE)
    if not allows(principal.role, needed):
        raise PermissionDenied(f"role {principal.role.value!r} lacks permission {needed.value!r} for action "
                               f"{body.action!r}; use an operator, finance or admin key")
    params = dict(body.model_extra or {})
    result = hub.bus.handle(commands.ActOnAfterSale(actor=principal.actor(), case_id=case_id, action=body.action,
                                                    params=params, expected_version=body.expected_version))
    return case_view(result.case)


@router.get("/inventory/damaged")
def damaged_stock(principal: CanReadOrders, hub: Hub) -> dict[str, Any]:
    """Returned units that came back damaged, per warehouse and SKU (never sellable)."""
    return {"items": hub.queries.damaged_stock(principal.tenant_id)}


# --------------------------------------------------------------------------- finance
@router.get("/finance/vouchers", response_model=None)
def vouchers(*, principal: CanReadFinance, hub: Hub, since: AwareDatetime | None = None,
             until: AwareDatetime | None = None, tag: Annotated[str | None, Query(max_length=100)] = None,
             format_: Annotated[str, Query(alias="format", pattern="^(json|csv)$")] = "json",
             limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> dict[str, Any] | StreamingResponse:
    """The voucher ledger in posting order (``format=csv`` streams every row as CSV)."""
    if format_ == "csv":
        return StreamingResponse(hub.queries.vouchers_csv(principal.tenant_id, since=since, until=until, tag=tag),
                                 media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": "attachment; filename=vouchers.csv"})
    return {"items": hub.queries.vouchers(principal.tenant_id, since=since, until=until, tag=tag, limit=limit)}


@router.get("/finance/tie-out")
def tie_out(principal: CanReadFinance, hub: Hub) -> dict[str, Any]:
    """Voucher totals against refunded cases per currency; ``ties_out`` is false when they differ."""
    return hub.queries.ledger_tie_out(principal.tenant_id)


"""Command handlers for after-sale (issue 6): opening a case through the API, the actions
operators and buyers take on it, the refund confirmation from the refund relay, and the
SLA escalation timer.

Each handler is one transaction: the case, the order it may cancel, the stock a return
puts back, the refund queued in the outbox and the voucher are written together or not at
all. A refused request changes nothing and says what was wrong and what would be allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from orderhub.adapters.db.errors import DuplicateKeyError, StaleVersionError
from orderhub.domain import ids
from orderhub.domain.aftersale.amounts import LineRequest
from orderhub.domain.aftersale.case import AfterSaleCase, Option
from orderhub.domain.aftersale.states import SlaLevel
from orderhub.domain.commands import (
    ActOnAfterSale,
    AfterSaleLineInput,
    CheckAfterSaleSla,
    ConfirmRefund,
    RequestAfterSale,
)
from orderhub.domain.errors import ActionNotAllowed, DomainError
from orderhub.domain.money import Money
from orderhub.service_layer.aftersale import (
    CaseRequest,
    RefundPolicies,
    after_case_change,
    open_case,
    parse_type,
    queue_refund,
    receive_return,
    send_replacement,
)
from orderhub.service_layer.errors import (
    AfterSaleNotFound,
    AfterSaleVersionMismatch,
    ConcurrencyConflict,
    IdempotencyKeyReused,
    InvalidInput,
    OrderNotFound,
)
from orderhub.service_layer.inventory import publish_touched
from orderhub.service_layer.retrying import retrying
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

log = structlog.get_logger(__name__)
T = TypeVar("T")
RETRIES = 5
MAX_LINES = 200
SLA_SEVERITY = {SlaLevel.YELLOW: "info", SlaLevel.ORANGE: "warning", SlaLevel.RED: "critical"}


CREATE_SCOPE = "aftersales.create"


@dataclass(frozen=True, slots=True)
class CaseResult:
    """What a command did to a case: the case as it is now (``created`` False when a
    repeated Idempotency-Key answered with the case it made before)."""

    case: AfterSaleCase
    created: bool = True


def _text(value: object, field: str, *, limit: int, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(f"{field}: required", field=field)
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{field}: text of at most {limit} characters", field=field)
    return value.strip()


def _money(value: object, currency: str, field: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InvalidInput(f"{field}: a decimal amount as text, e.g. \"59.90\"", field=field)
    return Money.parse(value, currency, field=field).amount


def _line_requests(lines: tuple[AfterSaleLineInput, ...], currency: str) -> tuple[LineRequest, ...]:
    if len(lines) > MAX_LINES:
        raise InvalidInput(f"lines: at most {MAX_LINES}", field="lines")
    return tuple(LineRequest(line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity,
                             amount=_money(ln.amount, currency, f"lines[{i}].amount"))
                 for i, ln in enumerate(lines))


def _save(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, loaded: int) -> None:
    try:
        uow.aftersales.save(case, loaded_version=loaded)
    except StaleVersionError as exc:
        raise ConcurrencyConflict(exc.message, extra={"case_id": case.id}) from exc


# --------------------------------------------------------------------------- open
def request_aftersale(cmd: RequestAfterSale, uow: SqlAlchemyUnitOfWork, *, policies: RefundPolicies) -> CaseResult:
    """Open a case on an order (API): amounts checked against what is left to refund, the
    refund policy's decision applied at once (auto-approved refunds are queued, unshipped
    orders refunded in full are cancelled)."""
    case_type = parse_type(cmd.type)
    reason = _text(cmd.reason, "reason", limit=200)
    note = _text(cmd.note, "note", limit=1000, required=False)
    assert reason is not None

    def attempt() -> CaseResult:
        with uow:
            uow.act_as(cmd.actor)
            tenant = cmd.actor.tenant_id
            if cmd.idempotency_key is not None:
                previous = uow.idempotency.get(tenant, CREATE_SCOPE, cmd.idempotency_key)
                if previous is not None:
                    return _replay(uow, cmd, previous.request_hash, previous.resource_id)
            order = uow.orders.get(tenant, cmd.order_id)
            if order is None:
                raise OrderNotFound(f"order {cmd.order_id!r} not found", field="order_id")
            request = CaseRequest(type=case_type, reason=reason, amount=_money(cmd.amount, order.currency, "amount"),
                                  lines=_line_requests(cmd.lines, order.currency), source="api", note=note)
            case = open_case(uow, order, request, policies=policies, now=uow.clock.now())
            if cmd.idempotency_key is not None:
                # Claimed in the case's transaction: a concurrent retry with the same key fails
                # here, and its retry finds this case.
                uow.idempotency.add(tenant, CREATE_SCOPE, cmd.idempotency_key, cmd.request_hash or "", case.id,
                                    now=uow.clock.now())
            _commit(uow)
            return CaseResult(case)

    return retrying(attempt, attempts=RETRIES)


def _replay(uow: SqlAlchemyUnitOfWork, cmd: RequestAfterSale, request_hash: str, case_id: str) -> CaseResult:
    """The answer to a repeated Idempotency-Key: the case it made, if the body is the same."""
    if request_hash != (cmd.request_hash or ""):
        raise IdempotencyKeyReused(f"Idempotency-Key {cmd.idempotency_key!r} was already used with a different "
                                   "request body; use a new key for a new case", extra={"case_id": case_id})
    case = uow.aftersales.get(cmd.actor.tenant_id, case_id)
    if case is None:  # pragma: no cover - cases are never deleted
        raise AfterSaleNotFound(f"after-sale case {case_id!r} not found")
    return CaseResult(case, created=False)


def _commit(uow: SqlAlchemyUnitOfWork) -> None:
    try:
        publish_touched(uow)
        uow.commit()
    except (StaleVersionError, DuplicateKeyError) as exc:
        raise ConcurrencyConflict(exc.message) from exc


# --------------------------------------------------------------------------- actions
ACTION_HANDLERS: dict[str, Callable[[SqlAlchemyUnitOfWork, AfterSaleCase, dict[str, Any], str], None]] = {}


def _action(name: str) -> Callable[[Callable[[SqlAlchemyUnitOfWork, AfterSaleCase, dict[str, Any], str], None]],
                                   Callable[[SqlAlchemyUnitOfWork, AfterSaleCase, dict[str, Any], str], None]]:
    def register(fn: Callable[[SqlAlchemyUnitOfWork, AfterSaleCase, dict[str, Any], str], None]
                 ) -> Callable[[SqlAlchemyUnitOfWork, AfterSaleCase, dict[str, Any], str], None]:
        ACTION_HANDLERS[name] = fn
        return fn
    return register


@_action("approve")
def _approve(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, params: dict[str, Any], by: str) -> None:
    case.approve(now=uow.clock.now(), by=by, amount=_money(params.get("amount"), case.currency, "amount"))


@_action("reject")
def _reject(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, params: dict[str, Any], by: str) -> None:
    case.reject(reason=_text(params.get("reason"), "reason", limit=500) or "", now=uow.clock.now())


@_action("cancel")
def _cancel(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, params: dict[str, Any], by: str) -> None:
    case.cancel(reason=_text(params.get("reason"), "reason", limit=500, required=False) or f"cancelled by {by}",
                now=uow.clock.now())


@_action("assign")
def _assign(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, params: dict[str, Any], by: str) -> None:
    case.assign(_text(params.get("queue"), "queue", limit=60) or "", now=uow.clock.now(), by=by)


@_action("negotiate")
def _negotiate(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, params: dict[str, Any], by: str) -> None:
    raw = params.get("options")
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("options: a list such as [{\"id\": \"half\", \"kind\": \"partial_refund\", "
                           "\"percent\": 50}, {\"id\": \"reship\", \"kind\": \"reship\"}]", field="options")
    options = tuple(Option.from_dict(o, f"options[{i}]") for i, o in enumerate(raw))
    case.negotiate(options, now=uow.clock.now(), by=by,
                   reason=_text(params.get("reason"), "reason", limit=500, required=False))


@_action("choose")
def _choose(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, params: dict[str, Any], by: str) -> None:
    case.choose(_text(params.get("option"), "option", limit=40) or "", now=uow.clock.now(), by=by)


@_action("return_shipped")
def _return_shipped(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, params: dict[str, Any], by: str) -> None:
    waybill = _text(params.get("waybill_no"), "waybill_no", limit=60)
    carrier = _text(params.get("carrier"), "carrier", limit=40, required=False)
    case.return_shipped(carrier=carrier, waybill_no=waybill or "", now=uow.clock.now())


@_action("receive_return")
def _receive_return(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, params: dict[str, Any], by: str) -> None:
    case.check_action("receive_return")
    warehouse = _text(params.get("warehouse"), "warehouse", limit=40) or ""
    now = uow.clock.now()
    received = receive_return(uow, case, params.get("received"), warehouse_code=warehouse, actor=by, now=now)
    case.receive_return(received, warehouse=warehouse, now=now, by=by)


@_action("send_replacement")
def _send_replacement(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, params: dict[str, Any], by: str) -> None:
    send_replacement(uow, case, now=uow.clock.now())


@_action("retry_refund")
def _retry_refund(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, params: dict[str, Any], by: str) -> None:
    # The refund relay dead-lettered the refund (the channel refused it); send it again as a
    # new message: the channel side is idempotent per case, so this can't refund twice.
    order = uow.orders.get(case.tenant_id, case.order_id)
    queue_refund(uow, case, order, now=uow.clock.now(), attempt=case.version)


def act_on_aftersale(cmd: ActOnAfterSale, uow: SqlAlchemyUnitOfWork) -> CaseResult:
    """Take ``cmd.action`` on a case. Refused with nothing changed: an unknown action or one
    the case's status doesn't allow (ActionNotAllowed listing the allowed ones), a stale
    ``expected_version``, bad parameters (InvalidInput naming the field)."""
    handler = ACTION_HANDLERS.get(cmd.action)
    if handler is None:
        raise ActionNotAllowed(f"action: {cmd.action!r} is not an after-sale action; known: "
                               f"{', '.join(sorted(ACTION_HANDLERS))}", field="action",
                               allowed=tuple(sorted(ACTION_HANDLERS)))

    def attempt() -> CaseResult:
        with uow:
            uow.act_as(cmd.actor)
            case = uow.aftersales.get(cmd.actor.tenant_id, cmd.case_id, for_update=True)
            if case is None:
                raise AfterSaleNotFound(f"after-sale case {cmd.case_id!r} not found")
            if cmd.expected_version is not None and cmd.expected_version != case.version:
                raise AfterSaleVersionMismatch(
                    f"expected_version {cmd.expected_version} but the case is at version {case.version}; "
                    "reload it and decide again", extra={"current_version": case.version})
            case.check_action(cmd.action)
            loaded, before = case.version, case.status
            handler(uow, case, dict(cmd.params), cmd.actor.actor)
            order = uow.orders.get(case.tenant_id, case.order_id)
            after_case_change(uow, case, order, before=before, now=uow.clock.now())
            _save(uow, case, loaded)
            _commit(uow)
            return CaseResult(case)

    return retrying(attempt, retry=cmd.expected_version is None, attempts=RETRIES)


# --------------------------------------------------------------------------- refund confirmation
def confirm_refund(cmd: ConfirmRefund, uow: SqlAlchemyUnitOfWork) -> CaseResult | None:
    """The refund of a case was executed: mark it refunded and post its voucher (once).
    None when the case no longer exists."""

    def attempt() -> CaseResult | None:
        with uow:
            case = uow.aftersales.get(cmd.tenant_id, cmd.case_id, for_update=True)
            if case is None:
                log.warning("refund_confirmed_for_unknown_case", tenant_id=cmd.tenant_id, case_id=cmd.case_id)
                return None
            loaded, before = case.version, case.status
            if not case.refunded(ref=cmd.ref, amount=cmd.amount, via=cmd.via, now=uow.clock.now()):
                return CaseResult(case)
            order = uow.orders.get(case.tenant_id, case.order_id)
            after_case_change(uow, case, order, before=before, now=uow.clock.now())
            _save(uow, case, loaded)
            _commit(uow)
            return CaseResult(case)

    return retrying(attempt, attempts=RETRIES)


# --------------------------------------------------------------------------- SLA
def check_aftersale_sla(cmd: CheckAfterSaleSla, uow: SqlAlchemyUnitOfWork) -> int:
    """Raise the SLA level of open cases whose next level is due: an alert row per level
    (``aftersale_sla_yellow|orange|red``) and an ``aftersale.escalated`` event to subscribed
    webhook endpoints, both through this transaction. Returns how many cases rose."""
    raised = 0
    with uow:
        due = uow.aftersales.due_for_sla(now=uow.clock.now(), limit=cmd.limit)
    for tenant_id, case_id in due:
        try:
            with uow:
                now = uow.clock.now()
                case = uow.aftersales.get(tenant_id, case_id, for_update=True)
                if case is None:
                    continue
                loaded = case.version
                level = SlaLevel.NONE
                for name, at in case.sla_due.items():
                    if now >= at and SlaLevel(name).rank > level.rank:
                        level = SlaLevel(name)
                if not case.escalate(level, now=now):
                    # Nothing to raise (the buyer's turn, or already at this level): the saved
                    # row recomputes when the next level is due.
                    _save(uow, case, loaded)
                    uow.commit()
                    continue
                raised += 1
                uow.channel_state.add_alert(
                    tenant_id=tenant_id, alert_id=ids.new_id("alr"), kind=f"aftersale_sla_{level.value}",
                    severity=SLA_SEVERITY.get(level, "warning"), subject=f"aftersale:{case.id}", now=now,
                    message=f"after-sale case {case.id} ({case.type.value}, {case.status.value}) is {level.value}: "
                            f"open since {case.created_at.isoformat()}; decide it in the after-sale queue",
                    details={"case_id": case.id, "order_id": case.order_id, "level": level.value,
                             "queue": case.queue})
                _save(uow, case, loaded)
                uow.commit()
        except (ConcurrencyConflict, DomainError):
            log.warning("aftersale_sla_skipped", tenant_id=tenant_id, case_id=case_id, exc_info=True)
    return raised


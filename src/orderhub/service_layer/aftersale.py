"""After-sale in the service layer: opening a case on an order (amounts checked against what
is left to refund, decided by the tenant's ``refund_policy``), and what a case's change
does outside the case, in the same transaction:

* ``refunding`` → one ``aftersale_refund`` outbox row (the refund relay executes it through
  the channel or payment adapter; its message id is derived from the case, so it is queued
  once per case);
* ``refunded`` → one finance voucher (append-only; unique per case and kind);
* auto-approved on an order that hasn't shipped and covering what is left of it → the order
  is cancelled (reservations released, warehouse shipments cancelled);
* return received → sellable units back on hand, damaged ones into the damaged bucket.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from orderhub.adapters.db.outbox import OutboxMessage
from orderhub.adapters.refund_policy import (
    REFUND_POLICY,
    CustomerHistory,
    RefundPolicy,
    compile_refund_policy,
    default_refund_policy,
    refund_facts,
)
from orderhub.domain import ids
from orderhub.domain.aftersale.amounts import Committed, LineRequest, PaidLine, plan_case, remaining
from orderhub.domain.aftersale.case import AfterSaleCase, Decision
from orderhub.domain.aftersale.states import (
    COMMITTED,
    REPLACEMENT_TAG,
    AfterSaleStatus,
    AfterSaleType,
    PolicyAction,
    SlaLevel,
)
from orderhub.domain.errors import InvalidAfterSale
from orderhub.domain.finance.vouchers import refund_voucher
from orderhub.domain.inventory.stock import Movement, MovementKind
from orderhub.domain.money import Money
from orderhub.domain.orders.model import ApplyOutcome, Order, OrderEvent, OrderLine
from orderhub.domain.orders.states import OrderEventType, OrderStatus, PaymentStatus
from orderhub.domain.rules import RuleInvalid
from orderhub.service_layer.errors import InvalidInput
from orderhub.service_layer.inventory import OrderState, after_order_change, reserve_for_order
from orderhub.service_layer.inventory_policy import load_policy
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

log = structlog.get_logger(__name__)

AFTERSALE_REFUND = "aftersale_refund"

REFUND_TOPIC = "aftersale.refund"
# Orders not handed to a carrier yet: an approved refund of everything left cancels them.
UNSHIPPED = frozenset({OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.ON_HOLD,
                       OrderStatus.READY_TO_SHIP})
CONDITIONS = ("sellable", "damaged")


class RefundPolicies:
    """Each tenant's ``refund_policy`` compiled once per stored version (see
    ``fulfillment_rules`` for why a per-process cache checked on every use is enough)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_tenant: dict[str, RefundPolicy] = {}
        self._default: RefundPolicy | None = None

    def for_tenant(self, uow: SqlAlchemyUnitOfWork, tenant_id: str) -> RefundPolicy:
        """The policy the tenant's cases are decided by now."""
        latest = uow.rules.latest(tenant_id, REFUND_POLICY)
        if latest is None:
            return self.default()
        version, body = latest
        with self._lock:
            cached = self._by_tenant.get(tenant_id)
        if cached is not None and cached.version == version:
            return cached
        try:
            compiled = compile_refund_policy(body, version=version)
        except RuleInvalid as exc:
            log.warning("refund_policy_unusable", tenant_id=tenant_id, version=version, error=exc.message)
            compiled = self.default()
        with self._lock:
            self._by_tenant[tenant_id] = compiled
        return compiled

    def default(self) -> RefundPolicy:
        """The shipped default policy (version 0)."""
        if self._default is None:
            self._default = default_refund_policy()
        return self._default


@dataclass(frozen=True, slots=True)
class CaseRequest:
    """A new case as asked, in canonical units (amounts in minor units)."""

    type: AfterSaleType
    reason: str
    amount: int | None
    lines: tuple[LineRequest, ...]
    source: str
    external_ref: str | None = None
    channel_status: str | None = None
    note: str | None = None


def parse_type(value: str) -> AfterSaleType:
    """The case type named ``value``; InvalidInput listing the types otherwise."""
    try:
        return AfterSaleType(value)
    except ValueError:
        names = ", ".join(t.value for t in AfterSaleType)
        raise InvalidInput(f"type: {value!r} is not an after-sale type; expected one of: {names}",
                           field="type") from None


def paid_lines(order: Order) -> list[PaidLine]:
    """The order's lines with what was paid for each (minor units)."""
    return [PaidLine(line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity, total=ln.total.amount)
            for ln in order.lines]


def committed(cases: list[AfterSaleCase]) -> list[Committed]:
    """The claims the order's existing cases hold on its money."""
    return [Committed(amount=c.refunded_amount if c.status is AfterSaleStatus.REFUNDED else c.amount,
                      lines=c.lines) for c in cases if c.status in COMMITTED]


def _check_order(order: Order, existing: list[AfterSaleCase]) -> None:
    if order.payment_status is not PaymentStatus.PAID and order.paid_at is None:
        raise InvalidAfterSale(f"order {order.external_id} was never paid: nothing to refund or replace; "
                               "cancel it instead", field="order_id")
    if order.status is OrderStatus.CANCELLED and any(c.status is AfterSaleStatus.REFUNDED for c in existing) \
            and not remaining(order.total.amount, paid_lines(order), committed(existing)).order:
        raise InvalidAfterSale(f"order {order.external_id} is cancelled and already refunded in full",
                               field="order_id")


def customer_history(uow: SqlAlchemyUnitOfWork, order: Order) -> CustomerHistory:
    """The buyer's history the policy looks at (tier from a ``tier:<name>`` or ``vip`` tag)."""
    key = order.buyer_key
    counts = uow.aftersales.customer_counts(order.tenant_id, key)
    tier = "regular"
    for tag in order.tags:
        if tag.startswith("tier:"):
            tier = tag.split(":", 1)[1] or tier
        elif tag == "vip":
            tier = "vip"
    return CustomerHistory(key=key, tier=tier, first_order_at=counts.first_order_at, orders=counts.orders,
                           refunds=counts.refunds, disputes=counts.disputes)


def open_case(uow: SqlAlchemyUnitOfWork, order: Order, request: CaseRequest, *, policies: RefundPolicies,
              now: datetime, decision: Decision | None = None) -> AfterSaleCase:
    """Open a case on ``order``, decide it by the tenant's refund policy (or by
    ``decision`` when given, e.g. a refund the channel already executed) and apply the
    decision's consequences. Raises InvalidAfterSale / RefundExceedsRemaining with nothing
    written when the request doesn't fit the order."""
    uow.aftersales.lock_order(order.tenant_id, order.id)
    existing = uow.aftersales.for_order(order.tenant_id, order.id)
    _check_order(order, existing)
    left = remaining(order.total.amount, paid_lines(order), committed(existing))
    amount, lines = plan_case(request.type, paid_lines=paid_lines(order), left=left, amount=request.amount,
                              requested=request.lines, currency=order.currency)
    policy = policies.for_tenant(uow, order.tenant_id)
    case = AfterSaleCase.open(
        case_id=ids.new_id("as"), tenant_id=order.tenant_id, order_id=order.id, channel=order.channel,
        shop=order.shop, type=request.type, reason=request.reason, currency=order.currency, amount=amount,
        lines=lines, source=request.source, now=now, sla=policy.sla, external_ref=request.external_ref,
        channel_status=request.channel_status, buyer_key=order.buyer_key, note=request.note)
    if decision is None:
        facts = refund_facts(order=order, case_type=request.type, reason=case.reason, amount=amount,
                             line_count=len(lines), item_count=sum(cl.quantity for cl in lines),
                             source=request.source, customer=customer_history(uow, order), now=now,
                             params=policy.params)
        decision = policy.decide(facts)
        case.policy_facts = facts
    before = case.status
    by_channel = decision.rule == "channel"
    case.decide(decision, now=now, by="channel" if by_channel else "policy")
    uow.aftersales.add(case)
    if not by_channel:  # a refund the channel already executed: the caller settles it, nothing is sent
        after_case_change(uow, case, order, before=before, now=now, cancel_unshipped=amount >= left.order)
    return case


def after_case_change(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, order: Order | None, *,
                      before: AfterSaleStatus, now: datetime, cancel_unshipped: bool = False) -> None:
    """What a case's change does outside the case (see the module docstring). ``before``
    is the status the command found the case in."""
    if case.status is before and not case.events:
        return
    actions = {e.action for e in case.events}
    if "refunding" in actions and case.status is AfterSaleStatus.REFUNDING:
        queue_refund(uow, case, order, now=now)
    if ("approved" in actions and cancel_unshipped and order is not None and order.status in UNSHIPPED
            and case.decision is not None and case.decision.action is PolicyAction.AUTO_APPROVE):
        _cancel_order(uow, case, order, now=now)
    if case.status is AfterSaleStatus.REFUNDED and "refunded" in actions:
        post_voucher(uow, case, order, now=now)
    if not case.is_open and case.sla_level is not SlaLevel.NONE:
        # Decided at last: its SLA alerts stop asking for attention.
        for level in (SlaLevel.YELLOW, SlaLevel.ORANGE, SlaLevel.RED):
            uow.channel_state.resolve_alerts(case.tenant_id, f"aftersale:{case.id}", f"aftersale_sla_{level.value}",
                                             now)


def queue_refund(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, order: Order | None, *, now: datetime,
                 attempt: int = 0) -> None:
    """Queue the refund of ``case`` for the refund relay (message id from the case id, so
    the relay and the channel see one refund per case; ``attempt`` > 0 re-sends it after
    an operator's retry)."""
    external_id = order.external_id if order is not None else ""
    payload: dict[str, Any] = {
        "case_id": case.id, "order_id": case.order_id, "order_external_id": external_id, "channel": case.channel,
        "shop": case.shop, "external_ref": case.external_ref, "amount": case.amount, "currency": case.currency,
        "reason": case.reason, "type": case.type.value, "return_goods": case.type.needs_return,
        "lines": [cl.to_dict() for cl in case.lines]}
    suffix = f":{attempt}" if attempt else ""
    uow.outbox.add([OutboxMessage(tenant_id=case.tenant_id, kind=AFTERSALE_REFUND,
                                  target=f"{case.channel}:{case.shop}", topic=REFUND_TOPIC, payload=payload,
                                  message_id=f"refund-{case.id}{suffix}")], now=now)


def post_voucher(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, order: Order | None, *, now: datetime) -> bool:
    """Post the refund voucher of a refunded case (once: a second call writes nothing)."""
    external_id = order.external_id if order is not None else case.order_id
    voucher = refund_voucher(case, voucher_id=ids.new_id("vch"), order_external_id=external_id, now=now)
    return uow.aftersales.post_voucher(voucher)


def _cancel_order(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, order: Order, *, now: datetime) -> None:
    """An approved refund of everything left on an unshipped order: stop the order, give its
    stock back and cancel its warehouse shipments (nothing should ship for a refunded order)."""
    loaded = order.version
    before = OrderState.of(order)
    rule = case.decision.rule if case.decision else "?"
    outcome = order.apply(OrderEvent(type=OrderEventType.CANCEL, occurred_at=now, key=f"aftersale:{case.id}",
                                     reason=f"refunded by after-sale case {case.id} (rule {rule})"[:500]), now=now)
    if outcome is ApplyOutcome.APPLIED:
        after_order_change(uow, order, before, now=now)
        uow.orders.save(order, loaded_version=loaded)


def receive_return(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, raw: object, *, warehouse_code: str,
                   actor: str, now: datetime) -> list[dict[str, Any]]:
    """Check the scanned return against what the case expects, and put the units back:
    sellable ones on hand (movement ``return``), damaged ones into the damaged bucket
    (movement ``return_damaged``). Returns the received lines as stored on the case."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("received: a list of {sku, quantity, condition} scanned from the return parcel",
                           field="received")
    expected = {cl.sku: cl.quantity for cl in case.lines}
    got: dict[str, int] = {}
    received: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        where = f"received[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where}: an object such as {{\"sku\": \"TEA-001\", \"quantity\": 1, "
                               "\"condition\": \"sellable\"}", field=where)
        sku, quantity, condition = item.get("sku"), item.get("quantity"), item.get("condition", "sellable")
        if sku not in expected:
            raise InvalidInput(f"{where}.sku: {sku!r} is not in this return; expected {sorted(expected)}",
                               field=f"{where}.sku")
        if type(quantity) is not int or quantity < 1:
            raise InvalidInput(f"{where}.quantity: a whole number of at least 1", field=f"{where}.quantity")
        if condition not in CONDITIONS:
            raise InvalidInput(f"{where}.condition: sellable or damaged, got {condition!r}",
                               field=f"{where}.condition")
        got[sku] = got.get(sku, 0) + quantity
        if got[sku] > expected[sku]:
            raise InvalidInput(f"{where}.quantity: {got[sku]} × {sku} scanned, the return holds {expected[sku]}",
                               field=f"{where}.quantity")
        received.append({"sku": sku, "quantity": quantity, "condition": condition})
    house = uow.inventory.warehouse(case.tenant_id, warehouse_code)
    if house is None:
        raise InvalidInput(f"warehouse: no warehouse {warehouse_code!r}", field="warehouse")
    skus = sorted({r["sku"] for r in received})
    uow.inventory.lock_stock(case.tenant_id, skus=skus)
    movements: list[Movement] = []
    for item in received:
        reason = f"return of after-sale case {case.id}"
        if item["condition"] == "sellable":
            if not uow.inventory.change_on_hand(case.tenant_id, house.id, item["sku"], item["quantity"], now=now):
                uow.inventory.set_stock(case.tenant_id, house.id, item["sku"], on_hand=item["quantity"],
                                        safety_stock=None, expected_version=None, now=now)
            movements.append(Movement(warehouse=house.id, sku=item["sku"], kind=MovementKind.RETURN,
                                      on_hand_delta=item["quantity"], reason=reason, order_id=case.order_id))
        else:
            uow.aftersales.add_damaged(case.tenant_id, house.id, item["sku"], item["quantity"], now=now)
            movements.append(Movement(warehouse=house.id, sku=item["sku"], kind=MovementKind.RETURN_DAMAGED,
                                      reason=f"{reason}: damaged, {item['quantity']} to the damaged bucket",
                                      order_id=case.order_id))
    uow.inventory.add_movements(case.tenant_id, movements, actor=actor, now=now)
    return received


def send_replacement(uow: SqlAlchemyUnitOfWork, case: AfterSaleCase, *, now: datetime) -> Order:
    """Create the replacement of an exchange or reship case: a zero-priced paid order
    (``RPL-<case id>``, tagged ``replacement`` and ``case:<id>``) with the case's lines, to
    the original buyer and address, on the original channel and shop. It reserves stock and
    ships through fulfillment like any order; its tracking number isn't written back to the
    channel, which has no such order. The case is then resolved."""
    original = uow.orders.get(case.tenant_id, case.order_id)
    if original is None:
        raise InvalidAfterSale(f"order {case.order_id} no longer exists: nothing to replace", field="order_id")
    zero = Money(0, original.currency)
    titles = {ln.line_no: ln.title for ln in original.lines}
    lines = [OrderLine.build(i + 1, sku=cl.sku, title=titles.get(cl.line_no), quantity=cl.quantity, unit_price=zero,
                             discount=zero, tax=zero, currency=original.currency)
             for i, cl in enumerate(case.lines)]
    replacement = Order.create(
        tenant_id=case.tenant_id, channel=original.channel, shop=original.shop, external_id=f"RPL-{case.id}",
        currency=original.currency, status=OrderStatus.PAID, lines=lines, shipping_fee=zero, discount=zero,
        buyer=original.buyer, shipping_address=original.shipping_address,
        tags=(REPLACEMENT_TAG, f"case:{case.id}"), placed_at=now, paid_at=now, now=now,
        channel_status="replacement")
    reserve_for_order(uow, replacement, policy=load_policy(uow, case.tenant_id), now=now)
    uow.orders.add(replacement)
    case.resolve(f"replacement order {replacement.external_id} created", now=now,
                 replacement_order_id=replacement.id)
    return replacement

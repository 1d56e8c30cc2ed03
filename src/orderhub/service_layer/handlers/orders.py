"""Command handlers for orders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from orderhub.adapters.db.errors import DuplicateKeyError, StaleVersionError
from orderhub.adapters.db.idempotency import IdempotencyClaim, IdempotencyRecord
from orderhub.domain.commands import ApplyOrderEvent, CreateOrder
from orderhub.domain.errors import InvalidOrder
from orderhub.domain.money import Money, currency_exponent
from orderhub.domain.orders.model import Address, ApplyOutcome, Buyer, Order, OrderEvent, OrderLine
from orderhub.domain.orders.states import OrderStatus, parse_event_type
from orderhub.service_layer.errors import (
    ConcurrencyConflict,
    IdempotencyKeyReused,
    OrderAlreadyExists,
    OrderNotFound,
)
from orderhub.service_layer.inventory import (
    OrderState,
    after_order_change,
    publish_touched,
    reserve_for_order,
)
from orderhub.service_layer.inventory_policy import load_policy
from orderhub.service_layer.retrying import retrying
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

CREATE_SCOPE = "orders.create"
RETRIES = 3
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OrderCreateResult:
    """The order a create command stored (or found, for a repeated Idempotency-Key)."""

    order_id: str
    created: bool


@dataclass(frozen=True, slots=True)
class OrderEventResult:
    """What an order event did, and the order's state after it."""

    order_id: str
    outcome: ApplyOutcome
    status: OrderStatus
    version: int


def _parse_status(value: str) -> OrderStatus:
    try:
        return OrderStatus(value)
    except ValueError as exc:
        names = ", ".join(s.value for s in OrderStatus)
        raise InvalidOrder(f"status: unknown status {value!r}; expected one of: {names}", field="status") from exc


def build_order(cmd: CreateOrder, *, now_uow: SqlAlchemyUnitOfWork) -> Order:
    """Validate a CreateOrder command into a new Order aggregate (no I/O)."""
    currency_exponent(cmd.currency, field="currency")
    cur = cmd.currency
    lines = [
        OrderLine.build(
            i + 1, sku=ln.sku, title=ln.title, quantity=ln.quantity,
            unit_price=Money.parse(ln.unit_price, cur, field=f"lines[{i}].unit_price"),
            discount=Money.parse(ln.discount, cur, field=f"lines[{i}].discount"),
            tax=Money.parse(ln.tax, cur, field=f"lines[{i}].tax"), currency=cur)
        for i, ln in enumerate(cmd.lines)
    ]
    address = Address(**cmd.shipping_address) if cmd.shipping_address else None  # type: ignore[arg-type]
    return Order.create(
        tenant_id=cmd.actor.tenant_id, channel=cmd.channel, shop=cmd.shop, external_id=cmd.external_id,
        currency=cur, status=_parse_status(cmd.status), lines=lines,
        shipping_fee=Money.parse(cmd.shipping_fee, cur, field="shipping_fee"),
        discount=Money.parse(cmd.discount, cur, field="discount"),
        buyer=Buyer(**cmd.buyer), shipping_address=address, tags=cmd.tags, placed_at=cmd.placed_at,
        paid_at=cmd.paid_at, now=now_uow.clock.now())


def create_order(cmd: CreateOrder, uow: SqlAlchemyUnitOfWork) -> OrderCreateResult:
    """Store a new canonical order, honouring the command's Idempotency-Key.

    Same key and same request hash returns the order the key created; same key with a
    different body raises IdempotencyKeyReused; an existing order without the key raises
    OrderAlreadyExists.
    """
    def replay(previous: IdempotencyRecord) -> OrderCreateResult:
        if previous.request_hash != cmd.request_hash:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {cmd.idempotency_key!r} was already used with a different request "
                "body; use a new key for a new order", extra={"order_id": previous.resource_id})
        return OrderCreateResult(previous.resource_id, created=False)

    def attempt() -> OrderCreateResult:
        with uow:
            uow.act_as(cmd.actor)
            tenant = cmd.actor.tenant_id
            try:
                order = build_order(cmd, now_uow=uow)
            except Exception:
                # A used Idempotency-Key answers before validation does (validating first only
                # saves a round trip on the way in): replay it if it was used, else the error.
                if cmd.idempotency_key is not None:
                    previous = uow.idempotency.get(tenant, CREATE_SCOPE, cmd.idempotency_key)
                    if previous is not None:
                        return replay(previous)
                raise
            # Stock is reserved in the transaction that stores the order (rows locked first, in
            # primary-key order, before the order's insert locks the audit chain head).
            reserve_for_order(uow, order, policy=load_policy(uow, tenant), now=uow.clock.now())
            claim = None
            if cmd.idempotency_key is not None:
                # The key is claimed before the order is inserted: a concurrent request with the
                # same key then waits on the key's unique index and retries (finding this order),
                # instead of colliding on the order row as OrderAlreadyExists.
                claim = IdempotencyClaim(CREATE_SCOPE, cmd.idempotency_key, cmd.request_hash or "")
            try:
                previous = uow.orders.add(order, idempotency=claim)
            except DuplicateKeyError as exc:
                if exc.entity == "order":
                    raise OrderAlreadyExists(exc.message, extra={"order_id": order.id}) from exc
                # The key was claimed by a concurrent request: retrying finds its record.
                raise ConcurrencyConflict(exc.message) from exc
            if previous is not None:
                return replay(previous)
            publish_touched(uow)
            uow.commit()
            return OrderCreateResult(order.id, created=True)

    return retrying(attempt, attempts=RETRIES)


def apply_order_event(cmd: ApplyOrderEvent, uow: SqlAlchemyUnitOfWork) -> OrderEventResult:
    """Apply a status event to an order through the state machine.

    Retries on a concurrent update unless the caller pinned ``expected_version``, in which
    case the conflict is the caller's to resolve.
    """
    event_type = parse_event_type(cmd.type)

    def attempt() -> OrderEventResult:
        with uow:
            uow.act_as(cmd.actor)
            order = uow.orders.get(cmd.actor.tenant_id, cmd.order_id)
            if order is None:
                raise OrderNotFound(f"order {cmd.order_id!r} not found")
            loaded = order.version
            now = uow.clock.now()
            before = OrderState.of(order)
            outcome = order.apply(OrderEvent(type=event_type, occurred_at=cmd.occurred_at or now, key=cmd.key,
                                             reason=cmd.reason, expected_version=cmd.expected_version), now=now)
            if outcome is ApplyOutcome.APPLIED:
                after_order_change(uow, order, before, now=now)
            if outcome is not ApplyOutcome.DUPLICATE:
                try:
                    uow.orders.save(order, loaded_version=loaded)
                except (StaleVersionError, DuplicateKeyError) as exc:
                    raise ConcurrencyConflict(exc.message, extra={"order_id": order.id}) from exc
                publish_touched(uow)
                uow.commit()
            return OrderEventResult(order.id, outcome, order.status, order.version)

    return retrying(attempt, retry=cmd.expected_version is None, attempts=RETRIES)

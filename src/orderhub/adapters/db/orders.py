"""Order repository: maps the Order aggregate to rows and back (the domain never sees rows)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, Insert, Row, Select, Update, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from orderhub.adapters.db import combined
from orderhub.adapters.db.audit import LockedHead
from orderhub.adapters.db.engine import insert_unless_duplicate
from orderhub.adapters.db.errors import DuplicateKeyError, StaleVersionError
from orderhub.adapters.db.idempotency import IdempotencyClaim, IdempotencyRecord, SqlIdempotencyRepository
from orderhub.adapters.db.tables import idempotency_keys, order_event_keys, order_lines, orders
from orderhub.domain.money import Money
from orderhub.domain.orders.model import Address, Buyer, Order, OrderLine
from orderhub.domain.orders.states import OrderStatus, PaymentStatus


def _address_to_json(address: Address | None) -> dict[str, Any] | None:
    if address is None:
        return None
    return {k: getattr(address, k) for k in Address.__slots__}


def search_text(order: Order) -> str:
    """Lower-cased text that the ``q`` filter matches against."""
    parts = [order.id, order.external_id, order.buyer.name, order.buyer.phone, order.buyer.email]
    if order.shipping_address is not None:
        parts += [order.shipping_address.name, order.shipping_address.phone, order.shipping_address.city]
    parts += [line.sku for line in order.lines]
    return " ".join(p for p in parts if p).lower()


# Columns an update never writes: the identity and the creation time.
_IMMUTABLE = ("tenant_id", "id", "channel", "shop", "external_id", "created_at")
_LINE_COLUMNS = ("line_no", "sku", "title", "quantity", "unit_price_minor", "discount_minor", "tax_minor")
_KEYS_AGGREGATE = {"postgresql": func.json_agg, "sqlite": func.json_group_array}


@dataclass(frozen=True, slots=True)
class _Statements:
    """The repository's statements, built once per dialect instead of once per call
    (building a statement costs more CPU than SQLAlchemy's cached compile of it)."""

    insert_order: Insert
    insert_lines: Insert
    insert_key: Insert
    load: Select[Any]
    load_many: Select[Any]
    update: Update


@cache
def _statements(dialect_name: str) -> _Statements:
    keys = (select(_KEYS_AGGREGATE[dialect_name](order_event_keys.c.event_key))
            .where(order_event_keys.c.tenant_id == orders.c.tenant_id, order_event_keys.c.order_id == orders.c.id)
            .scalar_subquery().label("applied_event_keys"))
    # The order, one row per line (in line order), and its applied event keys: one query.
    joined = (select(orders, *(order_lines.c[name].label(f"line_{name}") for name in _LINE_COLUMNS), keys)
              .select_from(orders.outerjoin(order_lines, and_(order_lines.c.tenant_id == orders.c.tenant_id,
                                                              order_lines.c.order_id == orders.c.id))))
    load = (joined.where(orders.c.tenant_id == bindparam("tenant_id"), orders.c.id == bindparam("order_id"))
            .order_by(order_lines.c.line_no))
    load_many = (joined.where(orders.c.tenant_id == bindparam("tenant_id"),
                              orders.c.id.in_(bindparam("order_ids", expanding=True)))
                 .order_by(orders.c.id, order_lines.c.line_no))
    # SET columns come from the parameters; the WHERE parameters have names of their own.
    save = update(orders).where(orders.c.tenant_id == bindparam("where_tenant_id"),
                                orders.c.id == bindparam("where_id"),
                                orders.c.version == bindparam("where_version"))
    return _Statements(insert_order=insert_unless_duplicate(orders, dialect_name), insert_lines=insert(order_lines),
                       insert_key=insert_unless_duplicate(order_event_keys, dialect_name), load=load,
                       load_many=load_many, update=save)


def _applied_keys(value: Any) -> set[str]:
    """The aggregated event keys: a list (PostgreSQL's json), JSON text (SQLite) or NULL (none)."""
    if value is None:
        return set()
    return set(json.loads(value) if isinstance(value, str) else value)


def _line_rows(order: Order) -> list[dict[str, Any]]:
    return [{"tenant_id": order.tenant_id, "order_id": order.id, "line_no": ln.line_no, "sku": ln.sku,
             "title": ln.title, "quantity": ln.quantity, "unit_price_minor": ln.unit_price.amount,
             "discount_minor": ln.discount.amount, "tax_minor": ln.tax.amount} for ln in order.lines]


def _failed_table(exc: IntegrityError) -> str | None:
    """The table whose constraint failed (PostgreSQL reports it; a combined statement writes
    several, and each maps to its own error as the separate statements did)."""
    table: str | None = getattr(getattr(exc.orig, "diag", None), "table_name", None)
    return table


def _already_exists(order: Order) -> DuplicateKeyError:
    return DuplicateKeyError(f"an order for {order.channel}/{order.shop}/{order.external_id} already exists",
                             entity="order", key=order.id)


def _key_taken(key: str) -> DuplicateKeyError:
    return DuplicateKeyError(f"Idempotency-Key {key!r} is being used by a concurrent request",
                             entity="idempotency_key", key=key)


def _event_key_taken(order: Order) -> DuplicateKeyError:
    return DuplicateKeyError(f"event key already applied to order {order.id} by a concurrent request",
                             entity="order_event_key", key=order.id)


class SqlOrderRepository:
    """Orders of any tenant, on one connection (inside the unit of work's transaction).

    Given ``locked_heads`` (the unit of work's registry of audit chain heads this
    transaction holds), on PostgreSQL ``add`` and ``save`` write with one combined
    statement that also locks the tenant's chain head and records it there (see
    ``combined``); otherwise, and on SQLite, they run the separate statements.
    """

    def __init__(self, conn: Connection, *, locked_heads: dict[str, LockedHead] | None = None) -> None:
        self._conn = conn
        self._q = _statements(conn.dialect.name)
        self._locked_heads = locked_heads if conn.dialect.name == "postgresql" else None
        self.seen: dict[str, Order] = {}
        self._staged: dict[str, Order] = {}

    def stage(self, order: Order) -> None:
        """Queue a new order for insertion at :meth:`flush` (the unit of work flushes at
        commit): a batch of new orders then costs a few bulk statements instead of a round
        trip each. Until then it is found by :meth:`get` and its changes need no
        :meth:`save` (its final state is what gets inserted)."""
        self.seen[order.id] = order
        self._staged[order.id] = order

    def flush(self) -> None:
        """Insert the staged orders with their lines and event keys, in bulk; raise
        DuplicateKeyError when any of them exists already (a concurrent writer created it:
        the caller retries, finding it)."""
        staged = list(self._staged.values())
        self._staged.clear()
        if not staged:
            return
        try:
            inserted = self._conn.execute(self._q.insert_order, [self._row(o) for o in staged]).rowcount
        except IntegrityError as exc:
            raise _already_exists(staged[0]) from exc
        if inserted != len(staged):
            raise DuplicateKeyError(f"{len(staged) - inserted} of {len(staged)} new orders were created "
                                    "concurrently by another writer", entity="order", key=staged[0].id)
        self._conn.execute(self._q.insert_lines, [r for o in staged for r in _line_rows(o)])
        keys = [{"tenant_id": o.tenant_id, "order_id": o.id, "event_key": k, "created_at": o.updated_at}
                for o in staged for k in o.new_event_keys]
        if keys:
            self._conn.execute(insert(order_event_keys), keys)
        for order in staged:
            order.new_event_keys.clear()

    def add(self, order: Order, *, idempotency: IdempotencyClaim | None = None) -> IdempotencyRecord | None:
        """Insert a new order with its lines; raise DuplicateKeyError when it already exists.

        With ``idempotency``, first claim that key for the order: when the key was used
        before, nothing is written and its record is returned; when a concurrent request
        holds it, DuplicateKeyError (entity ``idempotency_key``) is raised. After a
        duplicate nothing of the call was written and the transaction is still usable.
        (Any other integrity error, such as an unknown tenant, is reported as
        DuplicateKeyError too, as it always was; on PostgreSQL it leaves the transaction
        unusable.)
        """
        heads = self._locked_heads
        if heads is not None and not order.new_event_keys:
            return self._add_combined(order, idempotency, heads)
        if idempotency is not None:
            keys = SqlIdempotencyRepository(self._conn)
            previous = keys.get(order.tenant_id, idempotency.scope, idempotency.key)
            if previous is not None:
                return previous
            keys.add(order.tenant_id, idempotency.scope, idempotency.key, idempotency.request_hash, order.id,
                     now=order.created_at)
        try:
            inserted = self._conn.execute(self._q.insert_order, self._row(order)).rowcount
            if inserted == 1:
                self._conn.execute(self._q.insert_lines, _line_rows(order))
        except IntegrityError as exc:  # not a duplicate (those are skipped): e.g. an unknown tenant
            raise _already_exists(order) from exc
        if inserted != 1:
            if idempotency is not None:  # all or nothing: give back the key this call claimed
                self._release(order.tenant_id, idempotency)
            raise _already_exists(order)
        self._flush_keys(order)
        self.seen[order.id] = order
        return None

    def _add_combined(self, order: Order, idempotency: IdempotencyClaim | None,
                      heads: dict[str, LockedHead]) -> IdempotencyRecord | None:
        params: dict[str, Any] = {"tenant_id": order.tenant_id, "order_id": order.id,
                                  "order": combined.order_json(self._row(order)), "lines": _line_rows(order)}
        if idempotency is not None:
            params.update(key_scope=idempotency.scope, key_key=idempotency.key,
                          key_request_hash=idempotency.request_hash, key_created_at=order.created_at)
        try:
            rows = self._conn.execute(combined.create(idempotency is not None), params).all()
        except IntegrityError as exc:  # not a duplicate (those are skipped): e.g. an unknown tenant
            if idempotency is not None and _failed_table(exc) == idempotency_keys.name:
                raise _key_taken(idempotency.key) from exc
            raise _already_exists(order) from exc
        first = rows[0]
        if idempotency is not None:
            if first.previous_resource_id is not None:
                return IdempotencyRecord(first.previous_request_hash, first.previous_resource_id)
            if not first.claimed:
                raise _key_taken(idempotency.key)
        if not first.inserted:
            if idempotency is not None:  # all or nothing: give back the key this call claimed
                self._release(order.tenant_id, idempotency)
            raise _already_exists(order)
        head = combined.locked_head(rows)
        if head is not None:
            heads[order.tenant_id] = head
        self.seen[order.id] = order
        return None

    def _release(self, tenant_id: str, idempotency: IdempotencyClaim) -> None:
        self._conn.execute(delete(idempotency_keys).where(
            idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.scope == idempotency.scope,
            idempotency_keys.c.key == idempotency.key))

    def existing_ids(self, tenant_id: str, order_ids: list[str]) -> set[str]:
        """Which of ``order_ids`` the tenant already has (one query for a whole batch)."""
        if not order_ids:
            return set()
        rows = self._conn.execute(select(orders.c.id).where(orders.c.tenant_id == tenant_id,
                                                            orders.c.id.in_(order_ids))).all()
        return {r.id for r in rows}

    def skus_of(self, tenant_id: str, order_ids: list[str]) -> set[str]:
        """The SKUs on the lines of the given orders."""
        if not order_ids:
            return set()
        rows = self._conn.execute(select(order_lines.c.sku).distinct().where(
            order_lines.c.tenant_id == tenant_id, order_lines.c.order_id.in_(order_ids))).all()
        return {r.sku for r in rows}

    def created_from(self, tenant_id: str, message_ids: list[str]) -> dict[str, str]:
        """For the inbox messages that created an order (its ``raw_ref``): message id → the
        order's status."""
        rows = self._conn.execute(select(orders.c.raw_ref, orders.c.status).where(
            orders.c.tenant_id == tenant_id, orders.c.raw_ref.in_(message_ids))).all()
        return {r.raw_ref: r.status for r in rows}

    def get(self, tenant_id: str, order_id: str) -> Order | None:
        """Load one order of ``tenant_id`` (None when it isn't there).

        An order already loaded or added in this transaction is returned as is (an identity
        map): a batch that touches one order twice must see its own changes, and the events
        the first change recorded must still be there at commit.
        """
        cached = self.seen.get(order_id)
        if cached is not None and cached.tenant_id == tenant_id:
            return cached
        rows = self._conn.execute(self._q.load, {"tenant_id": tenant_id, "order_id": order_id}).all()
        if not rows:
            return None
        order = self._to_domain(rows)
        self.seen[order.id] = order
        return order

    def get_many(self, tenant_id: str, order_ids: Sequence[str]) -> dict[str, Order]:
        """Load several orders of ``tenant_id`` in one query (those already loaded come from
        the identity map); ids not found are left out."""
        found = {oid: o for oid in order_ids if (o := self.seen.get(oid)) is not None and o.tenant_id == tenant_id}
        wanted = sorted(set(order_ids) - set(found))
        for start in range(0, len(wanted), 500):
            rows = self._conn.execute(self._q.load_many, {"tenant_id": tenant_id,
                                                          "order_ids": wanted[start:start + 500]}).all()
            by_order: dict[str, list[Row[Any]]] = {}
            for row in rows:
                by_order.setdefault(row.id, []).append(row)
            for oid, mine in by_order.items():
                order = self._to_domain(mine)
                self.seen[oid] = found[oid] = order
        return found

    def save(self, order: Order, *, loaded_version: int) -> None:
        """Write back a changed order if nobody else changed it since ``loaded_version``,
        with the event keys it applied; raise StaleVersionError, or DuplicateKeyError when a
        concurrent request already stored one of those keys (the update itself stays)."""
        if order.id in self._staged:
            return  # not inserted yet: flush() writes its final state
        heads = self._locked_heads
        if heads is not None and order.version != loaded_version and len(order.new_event_keys) <= 1:
            self._save_combined(order, loaded_version, heads)
            return
        if order.version != loaded_version:
            values = self._row(order)
            for key in _IMMUTABLE:
                del values[key]
            values.update(where_tenant_id=order.tenant_id, where_id=order.id, where_version=loaded_version)
            result = self._conn.execute(self._q.update, values)
            if result.rowcount != 1:
                raise StaleVersionError(f"order {order.id} was changed by someone else; reload and retry",
                                        entity="order", key=order.id)
        self._flush_keys(order)

    def _save_combined(self, order: Order, loaded_version: int, heads: dict[str, LockedHead]) -> None:
        values = self._row(order)
        for key in _IMMUTABLE:
            del values[key]
        params = {f"set_{name}": value for name, value in values.items()}
        params.update(where_tenant_id=order.tenant_id, where_id=order.id, where_version=loaded_version,
                      head_tenant_id=order.tenant_id)
        if order.new_event_keys:
            params.update(event_key=order.new_event_keys[0], key_created_at=order.updated_at)
        try:
            rows = self._conn.execute(combined.save(tuple(values), bool(order.new_event_keys)), params).all()
        except IntegrityError as exc:  # not a duplicate (those are skipped): e.g. an unknown order
            if _failed_table(exc) == order_event_keys.name:
                raise _event_key_taken(order) from exc
            raise
        first = rows[0]
        if not first.updated:
            raise StaleVersionError(f"order {order.id} was changed by someone else; reload and retry",
                                    entity="order", key=order.id)
        if order.new_event_keys and not first.key_inserted:
            raise _event_key_taken(order)
        head = combined.locked_head(rows)
        if head is not None:
            heads[order.tenant_id] = head
        order.new_event_keys.clear()

    def _flush_keys(self, order: Order) -> None:
        if not order.new_event_keys:
            return
        inserted: list[str] = []
        try:
            for key in order.new_event_keys:
                if self._conn.execute(self._q.insert_key, {"tenant_id": order.tenant_id, "order_id": order.id,
                                                           "event_key": key, "created_at": order.updated_at}
                                      ).rowcount != 1:
                    break
                inserted.append(key)
        except IntegrityError as exc:  # not a duplicate (those are skipped): e.g. an unknown order
            raise _event_key_taken(order) from exc
        if len(inserted) != len(order.new_event_keys):
            if inserted:  # all or nothing, as before: take back the keys this call did write
                self._conn.execute(delete(order_event_keys).where(
                    order_event_keys.c.tenant_id == order.tenant_id, order_event_keys.c.order_id == order.id,
                    order_event_keys.c.event_key.in_(inserted)))
            raise _event_key_taken(order)
        order.new_event_keys.clear()

    @staticmethod
    def _row(order: Order) -> dict[str, Any]:
        return {
            "tenant_id": order.tenant_id, "id": order.id, "channel": order.channel, "shop": order.shop,
            "external_id": order.external_id, "currency": order.currency, "status": order.status.value,
            "payment_status": order.payment_status.value, "subtotal_minor": order.subtotal.amount,
            "shipping_fee_minor": order.shipping_fee.amount, "discount_minor": order.discount.amount,
            "total_minor": order.total.amount,
            "buyer": {"name": order.buyer.name, "phone": order.buyer.phone, "email": order.buyer.email},
            "shipping_address": _address_to_json(order.shipping_address), "tags": list(order.tags),
            "channel_status": order.channel_status, "placed_at": order.placed_at, "paid_at": order.paid_at,
            "shipped_at": order.shipped_at, "delivered_at": order.delivered_at,
            "cancelled_at": order.cancelled_at, "completed_at": order.completed_at,
            "status_changed_at": order.status_changed_at, "created_at": order.created_at,
            "updated_at": order.updated_at, "version": order.version,
            "held_from": order.held_from.value if order.held_from else None,
            "hold_reason": order.hold_reason, "cancel_reason": order.cancel_reason,
            "conflict_count": order.conflict_count, "raw_ref": order.raw_ref, "search_text": search_text(order),
            "buyer_key": order.buyer_key,
        }

    @staticmethod
    def _to_domain(rows: Sequence[Row[Any]]) -> Order:
        row = rows[0]
        cur = row.currency
        address = row.shipping_address
        lines = [OrderLine(ln.line_line_no, ln.line_sku, ln.line_title, ln.line_quantity,
                           Money(ln.line_unit_price_minor, cur), Money(ln.line_discount_minor, cur),
                           Money(ln.line_tax_minor, cur))
                 for ln in rows if ln.line_line_no is not None]
        return Order(
            id=row.id, tenant_id=row.tenant_id, channel=row.channel, shop=row.shop, external_id=row.external_id,
            currency=cur, status=OrderStatus(row.status), payment_status=PaymentStatus(row.payment_status),
            lines=lines, shipping_fee=Money(row.shipping_fee_minor, cur), discount=Money(row.discount_minor, cur),
            buyer=Buyer(**row.buyer), shipping_address=Address(**address) if address else None,
            tags=tuple(row.tags), channel_status=row.channel_status, placed_at=row.placed_at,
            paid_at=row.paid_at, shipped_at=row.shipped_at, delivered_at=row.delivered_at,
            cancelled_at=row.cancelled_at, completed_at=row.completed_at,
            status_changed_at=row.status_changed_at, created_at=row.created_at, updated_at=row.updated_at,
            version=row.version, held_from=OrderStatus(row.held_from) if row.held_from else None,
            hold_reason=row.hold_reason, cancel_reason=row.cancel_reason, conflict_count=row.conflict_count,
            raw_ref=row.raw_ref, applied_event_keys=_applied_keys(row.applied_event_keys),
        )

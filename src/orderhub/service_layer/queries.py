"""Read-side queries: what the API, CLI and dashboard show. They never change state."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, or_, select, text

from orderhub.adapters.db.aftersale_tables import aftersale_cases
from orderhub.adapters.db.audit import SqlAuditRepository, StoredEntry
from orderhub.adapters.db.outbox import SqlOutboxRepository, WebhookEndpoint
from orderhub.adapters.db.tables import order_lines, orders, shipments
from orderhub.adapters.db.tenancy import ApiKeyRecord, SqlTenantRepository, Tenant
from orderhub.domain.audit import ChainBreak, chain_hash, digest, verify
from orderhub.domain.errors import DomainError
from orderhub.domain.time import ensure_utc, isoformat
from orderhub.service_layer.aftersale_queries import AfterSaleQueries
from orderhub.service_layer.channel_queries import ChannelQueries
from orderhub.service_layer.errors import InvalidInput, OrderNotFound
from orderhub.service_layer.fulfillment_queries import FulfillmentQueries
from orderhub.service_layer.inventory_queries import InventoryQueries

MAX_PAGE = 200


def _money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def _ts(value: datetime | None) -> str | None:
    return isoformat(value) if value is not None else None


def _order_summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "tenant": row.tenant_id, "channel": row.channel, "shop": row.shop,
        "external_id": row.external_id, "status": row.status, "payment_status": row.payment_status,
        "currency": row.currency,
        "subtotal": _money(row.subtotal_minor, row.currency),
        "shipping_fee": _money(row.shipping_fee_minor, row.currency),
        "discount": _money(row.discount_minor, row.currency),
        "total": _money(row.total_minor, row.currency),
        "buyer": row.buyer, "shipping_address": row.shipping_address, "tags": row.tags,
        "channel_status": row.channel_status, "placed_at": _ts(row.placed_at), "paid_at": _ts(row.paid_at),
        "shipped_at": _ts(row.shipped_at), "delivered_at": _ts(row.delivered_at),
        "cancelled_at": _ts(row.cancelled_at), "completed_at": _ts(row.completed_at),
        "created_at": _ts(row.created_at), "updated_at": _ts(row.updated_at), "version": row.version,
        "hold_reason": row.hold_reason, "held_from": row.held_from, "cancel_reason": row.cancel_reason,
        "conflict_count": row.conflict_count,
        # The inbox message the order was created from: GET /api/v1/inbox/{raw_ref} shows it raw.
        "raw_ref": row.raw_ref,
    }


def _line(row: Any, currency: str) -> dict[str, Any]:
    gross = row.unit_price_minor * row.quantity
    return {"line_no": row.line_no, "sku": row.sku, "title": row.title, "quantity": row.quantity,
            "unit_price": _money(row.unit_price_minor, currency), "discount": _money(row.discount_minor, currency),
            "tax": _money(row.tax_minor, currency),
            "total": _money(gross - row.discount_minor + row.tax_minor, currency)}


_LINE_COLUMNS = ("line_no", "sku", "title", "quantity", "unit_price_minor", "discount_minor", "tax_minor")
# One order and its lines (one row per line, in line order) in one query, built once.
_ORDER_WITH_LINES = (
    select(orders, *(order_lines.c[name].label(f"line_{name}") for name in _LINE_COLUMNS))
    .select_from(orders.outerjoin(order_lines, and_(order_lines.c.tenant_id == orders.c.tenant_id,
                                                    order_lines.c.order_id == orders.c.id)))
    .where(orders.c.tenant_id == bindparam("tenant_id"), orders.c.id == bindparam("order_id"))
    .order_by(order_lines.c.line_no))


class _JoinedLine:
    """The line columns of an ``_ORDER_WITH_LINES`` row, under their own names."""

    __slots__ = ("discount_minor", "line_no", "quantity", "sku", "tax_minor", "title", "unit_price_minor")

    def __init__(self, row: Any) -> None:
        self.line_no = row.line_line_no
        self.sku = row.line_sku
        self.title = row.line_title
        self.quantity = row.line_quantity
        self.unit_price_minor = row.line_unit_price_minor
        self.discount_minor = row.line_discount_minor
        self.tax_minor = row.line_tax_minor


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Filters of ``GET /orders``."""

    status: str | None = None
    channel: str | None = None
    shop: str | None = None
    q: str | None = None


def encode_cursor(created_at: datetime, order_id: str) -> str:
    """Opaque cursor pointing just after ``(created_at, order_id)`` in list order."""
    raw = json.dumps([isoformat(created_at), order_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of :func:`encode_cursor`; raise InvalidInput for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, order_id = json.loads(raw)
        if not isinstance(order_id, str) or "\x00" in order_id:
            raise TypeError("bad order id in cursor")
        return ensure_utc(datetime.fromisoformat(stamp), field="cursor"), order_id
    except (binascii.Error, ValueError, TypeError, DomainError) as exc:
        raise InvalidInput("cursor: not a cursor returned by this API; start again without it",
                           field="cursor") from exc


class Queries(AfterSaleQueries, FulfillmentQueries, InventoryQueries, ChannelQueries):
    """Read-only views over the database, scoped to one tenant per call."""

    # ------------------------------------------------------------------ auth
    def authenticate(self, plain_key: str) -> ApiKeyRecord | None:
        """The key record for a presented API key, or None when unknown."""
        with self._connect() as conn:
            return SqlTenantRepository(conn).find_key(plain_key)

    def tenants(self) -> list[Tenant]:
        """All tenants."""
        with self._connect() as conn:
            return SqlTenantRepository(conn).list()

    def tenant_by_name(self, name: str) -> Tenant | None:
        """The tenant called ``name``."""
        with self._connect() as conn:
            return SqlTenantRepository(conn).by_name(name)

    # ------------------------------------------------------------------ orders
    def list_orders(self, tenant_id: str, flt: OrderFilter, *, cursor: str | None = None,
                    limit: int = 50) -> dict[str, Any]:
        """A page of orders, newest first, in a stable order (created_at, id)."""
        if limit < 1 or limit > MAX_PAGE:
            raise InvalidInput(f"limit: must be between 1 and {MAX_PAGE}", field="limit")
        c = orders.c
        query = select(orders).where(c.tenant_id == tenant_id)
        if flt.status:
            query = query.where(c.status == flt.status)
        if flt.channel:
            query = query.where(c.channel == flt.channel)
        if flt.shop:
            query = query.where(c.shop == flt.shop)
        if flt.q:
            needle = "%" + flt.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(c.search_text.like(needle, escape="\\"))
        if cursor:
            at, after_id = decode_cursor(cursor)
            query = query.where(or_(c.created_at < at, and_(c.created_at == at, c.id < after_id)))
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
        with self._connect() as conn:
            rows = conn.execute(query).all()
            page = rows[:limit]
            items = [_order_summary(r) for r in page]
            lines = self._lines_for(conn, tenant_id, [r.id for r in page])
        for item in items:
            item["lines"] = [_line(ln, item["currency"]) for ln in lines.get(item["id"], [])]
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
        return {"items": items, "next_cursor": next_cursor}

    @staticmethod
    def _lines_for(conn: Connection, tenant_id: str, order_ids: list[str]) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        if not order_ids:
            return found
        rows = conn.execute(select(order_lines).where(order_lines.c.tenant_id == tenant_id,
                                                      order_lines.c.order_id.in_(order_ids))
                            .order_by(order_lines.c.order_id, order_lines.c.line_no)).all()
        for row in rows:
            found.setdefault(row.order_id, []).append(row)
        return found

    def get_order(self, tenant_id: str, order_id: str) -> dict[str, Any]:
        """One order with its lines (and, as later features land, shipments, cases and
        reservations). Raises OrderNotFound for unknown ids and other tenants' orders."""
        with self._connect() as conn:
            rows = conn.execute(_ORDER_WITH_LINES, {"tenant_id": tenant_id, "order_id": order_id}).all()
        if not rows:
            raise OrderNotFound(f"order {order_id!r} not found")
        view = _order_summary(rows[0])
        currency = rows[0].currency
        view["lines"] = [_line(_JoinedLine(r), currency) for r in rows if r.line_line_no is not None]
        # After-sale cases arrive with their feature (DESIGN.md §6).
        view.update({"shipments": self.order_shipments(tenant_id, order_id),
                     "aftersales": self.order_aftersales(tenant_id, order_id)})
        view.update(self.order_stock(tenant_id, order_id))
        return view

    def order_exists(self, tenant_id: str, order_id: str) -> bool:
        """True when the tenant has that order."""
        with self._connect() as conn:
            return bool(conn.execute(select(exists().where(orders.c.tenant_id == tenant_id,
                                                           orders.c.id == order_id))).scalar())

    def timeline(self, tenant_id: str, order_id: str) -> dict[str, Any]:
        """The order's audit entries, each checked against its hash and its predecessor."""
        with self._connect() as conn:
            if not conn.execute(select(exists().where(orders.c.tenant_id == tenant_id,
                                                      orders.c.id == order_id))).scalar():
                raise OrderNotFound(f"order {order_id!r} not found")
            repo = SqlAuditRepository(conn)
            # The order's own entries, its shipments' (scans, waybill, carrier events) and its
            # after-sale cases', in chain order.
            stored = repo.for_subject(tenant_id, "order", order_id)
            parcels = list(conn.execute(select(shipments.c.id).where(
                shipments.c.tenant_id == tenant_id, shipments.c.order_id == order_id)).scalars())
            for shipment_id in parcels:
                stored.extend(repo.for_subject(tenant_id, "shipment", shipment_id))
            cases = list(conn.execute(select(aftersale_cases.c.id).where(
                aftersale_cases.c.tenant_id == tenant_id, aftersale_cases.c.order_id == order_id)).scalars())
            for case_id in cases:
                stored.extend(repo.for_subject(tenant_id, "aftersale", case_id))
            stored.sort(key=lambda s: s.entry.seq)
            predecessors = repo.hashes_at(tenant_id, [s.entry.seq - 1 for s in stored if s.entry.seq > 1])
        items = []
        all_ok = True
        for s in stored:
            ok = _entry_ok(s, predecessors)
            all_ok = all_ok and ok
            items.append(_timeline_item(s, ok))
        return {"order_id": order_id, "items": items, "verified": all_ok}

    # ------------------------------------------------------------------ audit
    def verify_audit(self, tenant_ids: list[str] | None = None) -> Iterator[tuple[str, int, ChainBreak | None]]:
        """Verify each tenant's chain; yields ``(tenant_id, entries_checked, first_break)``."""
        with self._connect() as conn:
            repo = SqlAuditRepository(conn)
            ids = tenant_ids if tenant_ids is not None else [t.id for t in SqlTenantRepository(conn).list()]
            for tenant_id in ids:
                head_seq, head_hash = repo.head(tenant_id)
                counter = _Counter()
                entries = counter.wrap(repo.iter_chain(tenant_id))
                found = verify(entries, tenant_id=tenant_id, head_seq=head_seq, head_hash=head_hash)
                payload_break = counter.payload_break
                if payload_break is not None and (found is None or payload_break.seq < found.seq):
                    found = payload_break
                yield tenant_id, counter.n, found

    def webhook_endpoints(self, tenant_id: str) -> list[WebhookEndpoint]:
        """The tenant's webhook subscriptions, active or not."""
        with self._connect() as conn:
            return SqlOutboxRepository(conn).endpoints(tenant_id, active_only=False)

    def outbox_counts(self, tenant_id: str | None = None) -> dict[str, int]:
        """Outbox messages per status (all tenants when ``tenant_id`` is None)."""
        with self._connect() as conn:
            return SqlOutboxRepository(conn).counts(tenant_id)

    def database_ok(self) -> bool:
        """True when the database answers a trivial query."""
        with self._connect() as conn:
            conn.execute(text("SELECT 1"))
        return True


class _Counter:
    """Counts entries streamed through ``verify`` and checks each stored payload against
    its digest (the digest is in the chain; the payload beside it must match it)."""

    def __init__(self) -> None:
        self.n = 0
        self.payload_break: ChainBreak | None = None

    def wrap(self, stored: Iterator[StoredEntry]) -> Iterator[Any]:
        for s in stored:
            self.n += 1
            if self.payload_break is None and digest(s.payload) != s.entry.record.payload_digest:
                self.payload_break = ChainBreak(s.entry.record.tenant_id, s.entry.seq, s.entry.record.id,
                                                "payload does not match its digest: the payload was edited")
            yield s.entry


def _entry_ok(s: StoredEntry, predecessors: dict[int, str]) -> bool:
    e = s.entry
    if chain_hash(e.prev_hash, e.record, e.seq) != e.hash:
        return False
    if digest(s.payload) != e.record.payload_digest:
        return False
    return e.seq == 1 or predecessors.get(e.seq - 1) == e.prev_hash


def _timeline_item(s: StoredEntry, ok: bool) -> dict[str, Any]:
    r = s.entry.record
    return {"id": r.id, "seq": s.entry.seq, "action": r.action, "actor": r.actor, "source": r.source,
            "trace_id": r.trace_id, "from_status": r.from_status, "to_status": r.to_status, "reason": r.reason,
            "payload": s.payload, "payload_digest": r.payload_digest, "occurred_at": isoformat(r.occurred_at),
            "prev_hash": s.entry.prev_hash, "hash": s.entry.hash, "verified": ok}

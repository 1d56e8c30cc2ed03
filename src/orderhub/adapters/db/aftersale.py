"""Repositories of after-sale and finance: cases, returned damaged stock and the voucher ledger.

Cases are saved with an optimistic version check, like orders and shipments: an operator's
approval and a channel's update racing on one case can't both win. A channel case is one
row per (tenant, channel, channel case id), so a notification delivered twice can't open
two cases. Vouchers are only ever inserted (a database trigger refuses updates and
deletes); (tenant, case, kind) is unique, so a refund confirmed twice posts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, insert, or_, select, update

from orderhub.adapters.db.aftersale_tables import aftersale_cases, damaged_stock, finance_vouchers
from orderhub.adapters.db.engine import insert_unless_duplicate
from orderhub.adapters.db.errors import StaleVersionError
from orderhub.adapters.db.tables import orders
from orderhub.domain.aftersale.amounts import CaseLine
from orderhub.domain.aftersale.case import AfterSaleCase, Decision
from orderhub.domain.aftersale.states import MERCHANT_TURN, AfterSaleStatus, AfterSaleType, SlaLevel
from orderhub.domain.finance.vouchers import Voucher

_LEVELS = (SlaLevel.YELLOW, SlaLevel.ORANGE, SlaLevel.RED)


def next_sla_at(case_: AfterSaleCase) -> datetime | None:
    """When ``case_`` reaches its next SLA level while the merchant owes the next step;
    None when it is the buyer's turn, the case is closed or already red."""
    if case_.status not in MERCHANT_TURN:
        return None
    for level in _LEVELS:
        if level.rank > case_.sla_level.rank:
            return case_.sla_due.get(level.value)
    return None


def _columns(c: AfterSaleCase) -> dict[str, Any]:
    return {
        "order_id": c.order_id, "channel": c.channel, "shop": c.shop, "type": c.type.value,
        "status": c.status.value, "reason": c.reason, "currency": c.currency, "amount_minor": c.amount,
        "refunded_minor": c.refunded_amount, "lines": [cl.to_dict() for cl in c.lines], "source": c.source,
        "external_ref": c.external_ref, "channel_status": c.channel_status, "buyer_key": c.buyer_key,
        "note": c.note, "decision": c.decision.to_dict() if c.decision else None,
        "decision_action": c.decision.action.value if c.decision else None,
        "decision_rule": c.decision.rule[:100] if c.decision else None, "policy_facts": c.policy_facts,
        "queue": c.queue, "choice": c.choice,
        "refund_ref": c.refund_ref, "refunded_at": c.refunded_at, "refund_via": c.refund_via,
        "return_parcel": c.return_parcel,
        "return_waybill": (c.return_parcel or {}).get("waybill_no"), "resolution": c.resolution,
        "sla_level": c.sla_level.value, "sla_rank": c.sla_level.rank,
        "sla_due": {k: v.isoformat() for k, v in c.sla_due.items()}, "next_sla_at": next_sla_at(c),
        "created_at": c.created_at, "updated_at": c.updated_at, "closed_at": c.closed_at, "version": c.version,
    }


def case_from_row(row: Any) -> AfterSaleCase:
    """Rebuild a case from its row."""
    return AfterSaleCase(
        id=row.id, tenant_id=row.tenant_id, order_id=row.order_id, channel=row.channel, shop=row.shop,
        type=AfterSaleType(row.type), status=AfterSaleStatus(row.status), reason=row.reason, currency=row.currency,
        amount=row.amount_minor, lines=tuple(CaseLine.from_dict(d) for d in row.lines), source=row.source,
        created_at=row.created_at, updated_at=row.updated_at, external_ref=row.external_ref,
        channel_status=row.channel_status, buyer_key=row.buyer_key, note=row.note,
        decision=Decision.from_dict(row.decision) if row.decision else None, queue=row.queue, choice=row.choice,
        policy_facts=row.policy_facts,
        refunded_amount=row.refunded_minor, refund_ref=row.refund_ref, refunded_at=row.refunded_at,
        refund_via=row.refund_via, return_parcel=row.return_parcel, resolution=row.resolution,
        sla_level=SlaLevel(row.sla_level),
        sla_due={k: datetime.fromisoformat(v) for k, v in (row.sla_due or {}).items()},
        closed_at=row.closed_at, version=row.version)


@dataclass(frozen=True, slots=True)
class CustomerCounts:
    """What the database knows of a buyer: first order, orders, refunded cases, disputes."""

    first_order_at: datetime | None
    orders: int
    refunds: int
    disputes: int


class SqlAfterSaleRepository:
    """After-sale cases, damaged stock and vouchers, inside one unit of work.

    Loaded and added cases are remembered (``seen``) so the unit of work collects their events.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.seen: dict[tuple[str, str], AfterSaleCase] = {}

    # ------------------------------------------------------------------ cases
    def add(self, case_: AfterSaleCase) -> None:
        """Insert a new case (DuplicateKeyError-free: check :meth:`by_external_ref` first;
        a race on the same channel case id fails the transaction on the UNIQUE key)."""
        self._conn.execute(insert(aftersale_cases).values(tenant_id=case_.tenant_id, id=case_.id, **_columns(case_)))
        self.seen[(case_.tenant_id, case_.id)] = case_

    def get(self, tenant_id: str, case_id: str, *, for_update: bool = False) -> AfterSaleCase | None:
        """The case, or None (another tenant's case is None too)."""
        known = self.seen.get((tenant_id, case_id))
        if known is not None:
            return known
        c = aftersale_cases.c
        query = select(aftersale_cases).where(c.tenant_id == tenant_id, c.id == case_id)
        if for_update:
            query = query.with_for_update()
        row = self._conn.execute(query).first()
        return self._remember(row)

    def lock_order(self, tenant_id: str, order_id: str) -> None:
        """Lock the order's row until commit, so two cases opened on one order at once are
        checked against each other's amounts (on SQLite the write transaction already is)."""
        if self._conn.dialect.name == "postgresql":
            o = orders.c
            self._conn.execute(select(o.id).where(o.tenant_id == tenant_id, o.id == order_id).with_for_update())

    def by_external_ref(self, tenant_id: str, channel: str, external_ref: str) -> AfterSaleCase | None:
        """The case a channel case id opened, or None."""
        c = aftersale_cases.c
        row = self._conn.execute(select(aftersale_cases).where(
            c.tenant_id == tenant_id, c.channel == channel, c.external_ref == external_ref)).first()
        return self._remember(row)

    def for_order(self, tenant_id: str, order_id: str) -> list[AfterSaleCase]:
        """Every case of an order, oldest first."""
        c = aftersale_cases.c
        rows = self._conn.execute(select(aftersale_cases).where(c.tenant_id == tenant_id, c.order_id == order_id)
                                  .order_by(c.created_at, c.id)).all()
        return [case_ for row in rows if (case_ := self._remember(row)) is not None]

    def save(self, case_: AfterSaleCase, *, loaded_version: int) -> None:
        """Write a changed case if nobody changed it since ``loaded_version``
        (StaleVersionError otherwise); bumps its version."""
        c = aftersale_cases.c
        case_.version = loaded_version + 1
        result = self._conn.execute(update(aftersale_cases).where(
            c.tenant_id == case_.tenant_id, c.id == case_.id, c.version == loaded_version).values(**_columns(case_)))
        if result.rowcount != 1:
            case_.version = loaded_version
            raise StaleVersionError(f"after-sale case {case_.id} changed while this change was made; try again",
                                    entity="aftersale", key=case_.id)

    def due_for_sla(self, *, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(tenant, case id) of cases whose next SLA level is due, most overdue first."""
        c = aftersale_cases.c
        rows = self._conn.execute(select(c.tenant_id, c.id).where(c.next_sla_at <= now)
                                  .order_by(c.next_sla_at).limit(limit)).all()
        return [(r.tenant_id, r.id) for r in rows]

    def customer_counts(self, tenant_id: str, buyer_key: str) -> CustomerCounts:
        """A buyer's history (``Order.buyer_key``): the first order, how many orders, how
        many of their cases were refunded, and disputes: cases the merchant rejected or the
        channel refunded over the merchant's head (platform arbitration)."""
        o = orders.c
        first_order_at, count = self._conn.execute(select(func.min(o.placed_at), func.count()).where(
            o.tenant_id == tenant_id, o.buyer_key == buyer_key)).one()
        c = aftersale_cases.c
        refunded = func.sum(case((c.status == AfterSaleStatus.REFUNDED.value, 1), else_=0))
        disputed = func.sum(case((or_(c.status == AfterSaleStatus.REJECTED.value,
                                      and_(c.refund_via == "channel", c.decision_rule != "channel")), 1), else_=0))
        stats = self._conn.execute(select(refunded, disputed).where(
            c.tenant_id == tenant_id, c.buyer_key == buyer_key)).one()
        return CustomerCounts(first_order_at=first_order_at, orders=int(count), refunds=int(stats[0] or 0),
                              disputes=int(stats[1] or 0))

    def _remember(self, row: Any) -> AfterSaleCase | None:
        if row is None:
            return None
        key = (row.tenant_id, row.id)
        known = self.seen.get(key)
        if known is not None:
            return known
        case_ = case_from_row(row)
        self.seen[key] = case_
        return case_

    # ------------------------------------------------------------------ damaged stock
    def add_damaged(self, tenant_id: str, warehouse_id: str, sku: str, quantity: int, *, now: datetime) -> int:
        """Count ``quantity`` damaged returned units of ``sku`` at a warehouse; the new total."""
        d = damaged_stock.c
        updated = self._conn.execute(update(damaged_stock).where(
            d.tenant_id == tenant_id, d.warehouse_id == warehouse_id, d.sku == sku).values(
            quantity=d.quantity + quantity, updated_at=now))
        if updated.rowcount == 0:
            self._conn.execute(insert(damaged_stock).values(tenant_id=tenant_id, warehouse_id=warehouse_id, sku=sku,
                                                            quantity=quantity, updated_at=now))
        return int(self._conn.execute(select(d.quantity).where(
            d.tenant_id == tenant_id, d.warehouse_id == warehouse_id, d.sku == sku)).scalar_one())

    # ------------------------------------------------------------------ vouchers
    def post_voucher(self, voucher: Voucher) -> bool:
        """Append a voucher; False (nothing written) when the case already has one of that kind."""
        statement = insert_unless_duplicate(finance_vouchers, self._conn.dialect.name)
        result = self._conn.execute(statement.values(
            tenant_id=voucher.tenant_id, id=voucher.id, kind=voucher.kind, case_id=voucher.case_id,
            order_id=voucher.order_id, debit=voucher.debit, credit=voucher.credit, amount_minor=voucher.amount,
            currency=voucher.currency, tags=list(voucher.tags), reference=voucher.reference, memo=voucher.memo,
            posted_at=voucher.posted_at))
        return result.rowcount == 1


"""Read-side queries of after-sale and finance: the case queue sorted by urgency, one case
with its order and verified timeline, an order's cases, and the voucher ledger with its
tie-out against the cases. Mixed into :class:`orderhub.service_layer.queries.Queries`;
scoped to one tenant per call and never changing state."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import func, select

from orderhub.adapters.db.aftersale import SqlAfterSaleRepository, case_from_row, next_sla_at
from orderhub.adapters.db.aftersale_tables import aftersale_cases, damaged_stock, finance_vouchers
from orderhub.adapters.db.audit import SqlAuditRepository
from orderhub.adapters.db.tables import orders, warehouses
from orderhub.domain.aftersale.case import AfterSaleCase
from orderhub.domain.aftersale.states import OPEN, AfterSaleStatus
from orderhub.domain.money import Money
from orderhub.domain.time import isoformat
from orderhub.service_layer.channel_queries import ChannelQueries
from orderhub.service_layer.errors import AfterSaleNotFound, InvalidInput

MAX_ROWS = 500
VOUCHER_COLUMNS = ("seq", "id", "posted_at", "kind", "case_id", "order_id", "debit", "credit", "amount",
                   "currency", "tags", "reference", "memo")


def _time(value: datetime | None) -> str | None:
    return isoformat(value) if value is not None else None


def _money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def case_view(case: AfterSaleCase) -> dict[str, Any]:
    """The JSON shape of a case (API, CLI, dashboard)."""
    decision = case.decision.to_dict() if case.decision else None
    return {
        "id": case.id, "order_id": case.order_id, "channel": case.channel, "shop": case.shop,
        "external_ref": case.external_ref, "channel_status": case.channel_status, "type": case.type.value,
        "status": case.status.value, "reason": case.reason, "note": case.note, "source": case.source,
        "amount": _money(case.amount, case.currency), "refunded": _money(case.refunded_amount, case.currency),
        "lines": [{"line_no": cl.line_no, "sku": cl.sku, "quantity": cl.quantity,
                   "amount": _money(cl.amount, case.currency)} for cl in case.lines],
        "decision": decision, "queue": case.queue, "choice": case.choice,
        "options": decision["options"] if decision and case.status is AfterSaleStatus.NEGOTIATING else [],
        "return_parcel": case.return_parcel,
        "refund": {"ref": case.refund_ref, "refunded_at": _time(case.refunded_at), "via": case.refund_via},
        "resolution": case.resolution,
        "sla": {"level": case.sla_level.value, "due": {k: isoformat(v) for k, v in case.sla_due.items()},
                "next_at": _time(next_sla_at(case))},
        "allowed_actions": list(case.allowed_actions()),
        "created_at": isoformat(case.created_at), "updated_at": isoformat(case.updated_at),
        "closed_at": _time(case.closed_at), "version": case.version,
    }


class AfterSaleQueries(ChannelQueries):
    """After-sale and finance read models."""

    # ------------------------------------------------------------------ cases
    def aftersale_queue(self, tenant_id: str, *, status: str | None = None, queue: str | None = None,
                        sla: str | None = None, include_closed: bool = False, order_id: str | None = None,
                        limit: int = 100) -> list[dict[str, Any]]:
        """Cases, most urgent first: red before orange before yellow, then the nearest
        deadline, then the oldest. Open cases only unless ``include_closed`` or a closed
        ``status`` is asked for."""
        c = aftersale_cases.c
        query = select(aftersale_cases).where(c.tenant_id == tenant_id)
        if status is not None:
            try:
                query = query.where(c.status == AfterSaleStatus(status).value)
            except ValueError:
                raise InvalidInput(f"status: unknown case status {status!r}; expected one of "
                                   f"{', '.join(s.value for s in AfterSaleStatus)}", field="status") from None
        elif not include_closed:
            query = query.where(c.status.in_([s.value for s in OPEN]))
        if queue is not None:
            query = query.where(c.queue == queue)
        if sla is not None:
            query = query.where(c.sla_level == sla)
        if order_id is not None:
            query = query.where(c.order_id == order_id)
        no_deadline_last = sql_case((c.next_sla_at.is_(None), 1), else_=0)
        query = query.order_by(c.sla_rank.desc(), no_deadline_last, c.next_sla_at, c.created_at, c.id)
        with self._connect() as conn:
            rows = conn.execute(query.limit(min(max(limit, 1), MAX_ROWS))).all()
            numbers = self._order_numbers(conn, tenant_id, {r.order_id for r in rows})
        items = []
        for row in rows:
            view = case_view(case_from_row(row))
            view["order_external_id"] = numbers.get(row.order_id)
            items.append(view)
        return items

    def aftersale(self, tenant_id: str, case_id: str) -> dict[str, Any]:
        """One case with its order, vouchers and verified timeline; AfterSaleNotFound for
        unknown ids and other tenants' cases."""
        with self._connect() as conn:
            found = SqlAfterSaleRepository(conn).get(tenant_id, case_id)
            if found is None:
                raise AfterSaleNotFound(f"after-sale case {case_id!r} not found")
            order = conn.execute(select(orders.c.id, orders.c.external_id, orders.c.status, orders.c.total_minor,
                                        orders.c.currency, orders.c.channel).where(
                orders.c.tenant_id == tenant_id, orders.c.id == found.order_id)).first()
            vouchers = conn.execute(select(finance_vouchers).where(
                finance_vouchers.c.tenant_id == tenant_id, finance_vouchers.c.case_id == case_id)
                .order_by(finance_vouchers.c.seq)).all()
            stored = SqlAuditRepository(conn).for_subject(tenant_id, "aftersale", case_id)
        view = case_view(found)
        view["order"] = None if order is None else {
            "id": order.id, "external_id": order.external_id, "status": order.status, "channel": order.channel,
            "total": _money(order.total_minor, order.currency)}
        view["vouchers"] = [_voucher(v) for v in vouchers]
        view["timeline"] = [{"action": s.entry.record.action, "from_status": s.entry.record.from_status,
                             "to_status": s.entry.record.to_status, "reason": s.entry.record.reason,
                             "actor": s.entry.record.actor, "occurred_at": isoformat(s.entry.record.occurred_at),
                             "payload": s.payload, "seq": s.entry.seq} for s in stored]
        return view

    def order_aftersales(self, tenant_id: str, order_id: str) -> list[dict[str, Any]]:
        """An order's cases, oldest first."""
        with self._connect() as conn:
            cases = SqlAfterSaleRepository(conn).for_order(tenant_id, order_id)
        return [case_view(c) for c in cases]

    def decided_facts(self, tenant_id: str, *, limit: int) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(case id, stored decision, the facts it was decided on) of the ``limit`` most recent
        cases the policy decided: what the sandbox replays a proposed policy on."""
        c = aftersale_cases.c
        with self._connect() as conn:
            rows = conn.execute(select(c.id, c.decision, c.policy_facts).where(
                c.tenant_id == tenant_id, c.policy_facts.is_not(None))
                .order_by(c.created_at.desc(), c.id).limit(limit)).all()
        return [(r.id, dict(r.decision or {}), dict(r.policy_facts)) for r in rows]

    def aftersale_ids(self, tenant_id: str, order_id: str) -> list[str]:
        """Ids of an order's cases (the order timeline includes their entries)."""
        c = aftersale_cases.c
        with self._connect() as conn:
            return list(conn.execute(select(c.id).where(c.tenant_id == tenant_id, c.order_id == order_id)).scalars())

    def aftersale_counts(self, tenant_id: str) -> dict[str, Any]:
        """Open cases by status and by SLA level (dashboard header)."""
        c = aftersale_cases.c
        with self._connect() as conn:
            by_status: dict[str, int] = dict(conn.execute(select(c.status, func.count()).where(
                c.tenant_id == tenant_id, c.status.in_([s.value for s in OPEN])).group_by(c.status)).all())
            by_level: dict[str, int] = dict(conn.execute(select(c.sla_level, func.count()).where(
                c.tenant_id == tenant_id, c.status.in_([s.value for s in OPEN])).group_by(c.sla_level)).all())
        return {"open": sum(by_status.values()), "by_status": by_status, "by_sla": by_level}

    def damaged_stock(self, tenant_id: str) -> list[dict[str, Any]]:
        """Returned units that came back damaged, per warehouse and SKU."""
        d, w = damaged_stock.c, warehouses.c
        with self._connect() as conn:
            rows = conn.execute(select(w.code, d.sku, d.quantity, d.updated_at).join(
                warehouses, (w.tenant_id == d.tenant_id) & (w.id == d.warehouse_id)).where(
                d.tenant_id == tenant_id).order_by(w.code, d.sku)).all()
        return [{"warehouse": r.code, "sku": r.sku, "quantity": r.quantity, "updated_at": _time(r.updated_at)}
                for r in rows]

    @staticmethod
    def _order_numbers(conn: Any, tenant_id: str, order_ids: set[str]) -> dict[str, str]:
        if not order_ids:
            return {}
        return dict(conn.execute(select(orders.c.id, orders.c.external_id).where(
            orders.c.tenant_id == tenant_id, orders.c.id.in_(sorted(order_ids)))).all())

    # ------------------------------------------------------------------ vouchers
    def vouchers(self, tenant_id: str, *, since: datetime | None = None, until: datetime | None = None,
                 tag: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Vouchers in posting order, optionally in a period and with a tag."""
        return [_voucher(r) for r in self._voucher_rows(tenant_id, since=since, until=until, tag=tag, limit=limit)]

    def vouchers_csv(self, tenant_id: str, *, since: datetime | None = None, until: datetime | None = None,
                     tag: str | None = None) -> Iterator[str]:
        """The ledger as CSV (header first; amounts as decimal text; tags joined with ``|``)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(VOUCHER_COLUMNS)
        yield out.getvalue()
        for row in self._voucher_rows(tenant_id, since=since, until=until, tag=tag, limit=None):
            out.seek(0)
            out.truncate()
            writer.writerow([row.seq, row.id, isoformat(row.posted_at), row.kind, row.case_id, row.order_id,
                             row.debit, row.credit, Money(row.amount_minor, row.currency).to_decimal_string(),
                             row.currency, "|".join(row.tags), row.reference or "", row.memo])
            yield out.getvalue()

    def _voucher_rows(self, tenant_id: str, *, since: datetime | None, until: datetime | None, tag: str | None,
                      limit: int | None) -> list[Any]:
        v = finance_vouchers.c
        query = select(finance_vouchers).where(v.tenant_id == tenant_id).order_by(v.seq)
        if since is not None:
            query = query.where(v.posted_at >= since)
        if until is not None:
            query = query.where(v.posted_at < until)
        with self._connect() as conn:
            rows = conn.execute(query).all()
        if tag is not None:  # tags are a JSON list: filtered here, the same on both databases
            rows = [r for r in rows if tag in r.tags]
        return list(rows) if limit is None else list(rows[:limit])

    def ledger_tie_out(self, tenant_id: str) -> dict[str, Any]:
        """Voucher totals against the refunded cases, per currency: they must agree, and
        every refunded case must have exactly one refund voucher."""
        v, c = finance_vouchers.c, aftersale_cases.c
        with self._connect() as conn:
            posted = {r.currency: (int(r.total or 0), int(r.n)) for r in conn.execute(
                select(v.currency, func.sum(v.amount_minor).label("total"), func.count().label("n"))
                .where(v.tenant_id == tenant_id, v.kind == "refund").group_by(v.currency))}
            refunded = {r.currency: (int(r.total or 0), int(r.n)) for r in conn.execute(
                select(c.currency, func.sum(c.refunded_minor).label("total"), func.count().label("n"))
                .where(c.tenant_id == tenant_id, c.status == AfterSaleStatus.REFUNDED.value).group_by(c.currency))}
            missing = list(conn.execute(select(c.id).where(
                c.tenant_id == tenant_id, c.status == AfterSaleStatus.REFUNDED.value,
                ~select(v.id).where(v.tenant_id == tenant_id, v.case_id == c.id, v.kind == "refund")
                .exists()).limit(100)).scalars())
        currencies = sorted(set(posted) | set(refunded))
        rows = []
        for cur in currencies:
            (posted_total, posted_n), (case_total, case_n) = posted.get(cur, (0, 0)), refunded.get(cur, (0, 0))
            rows.append({"currency": cur, "vouchers": _money(posted_total, cur), "voucher_count": posted_n,
                         "refunded_cases": _money(case_total, cur), "case_count": case_n,
                         "difference": _money(posted_total - case_total, cur)})
        ties = all(r["difference"]["amount"] == 0 and r["voucher_count"] == r["case_count"] for r in rows)
        return {"ties_out": ties and not missing, "currencies": rows, "cases_without_voucher": missing}


def _voucher(row: Any) -> dict[str, Any]:
    return {"seq": row.seq, "id": row.id, "kind": row.kind, "case_id": row.case_id, "order_id": row.order_id,
            "debit": row.debit, "credit": row.credit, "amount": _money(row.amount_minor, row.currency),
            "tags": list(row.tags), "reference": row.reference, "memo": row.memo, "posted_at": isoformat(row.posted_at)}

"""Repository of imported bank / payment-platform statements (``statement_imports``,
``statement_lines``) and the read side of what they are matched against: refunded
after-sale cases and paid orders that no statement line has matched yet ("open").

A refund or payment is matched by one line at most: the UNIQUE key (tenant, matched_kind,
matched_id) backs up the matcher, so two imports racing for the same refund can't both win
(the loser's transaction fails as a whole and is run again).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, insert, or_, select
from sqlalchemy.exc import IntegrityError

from orderhub.adapters.db.aftersale_tables import aftersale_cases, statement_imports, statement_lines
from orderhub.adapters.db.errors import DuplicateKeyError
from orderhub.adapters.db.tables import orders
from orderhub.domain.finance.statements import PAYMENT, REFUND, Candidate, MatchResult, StatementLine

# Keys per IN (…) list: below SQLite's (32,766) and PostgreSQL's (65,535) parameter limits, and
# few enough queries, since each order-number lookup reads the tenant's orders.
CHUNK = 2000


@dataclass(frozen=True, slots=True)
class StoredStatementLine:
    """A statement line as stored, with the outcome of its matching."""

    line_key: str
    import_id: str
    line_no: int
    booked_at: datetime
    amount: int
    currency: str
    memo: str
    counterparty: str
    reference: str
    status: str
    match_rule: str | None
    matched_kind: str | None
    matched_id: str | None
    candidates: list[dict[str, Any]]
    created_at: datetime


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    items = sorted(set(values))
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _unmatched(kind: str, tenant: ColumnElement[Any], ident: ColumnElement[Any]) -> ColumnElement[bool]:
    """No statement line matched the refund / payment ``ident`` (uses the UNIQUE key's index)."""
    return ~(select(statement_lines.c.line_key)
             .where(statement_lines.c.tenant_id == tenant, statement_lines.c.matched_kind == kind,
                    statement_lines.c.matched_id == ident)
             .exists())


def _open_refunds(tenant_id: str) -> Select[Any]:
    return (select(aftersale_cases.c.id, aftersale_cases.c.order_id, aftersale_cases.c.refunded_minor,
                   aftersale_cases.c.currency, aftersale_cases.c.refunded_at, aftersale_cases.c.refund_ref,
                   orders.c.external_id)
            .join_from(aftersale_cases, orders, and_(orders.c.tenant_id == aftersale_cases.c.tenant_id,
                                                     orders.c.id == aftersale_cases.c.order_id))
            .where(aftersale_cases.c.tenant_id == tenant_id, aftersale_cases.c.status == "refunded",
                   aftersale_cases.c.refunded_at.is_not(None), aftersale_cases.c.refunded_minor > 0,
                   _unmatched(REFUND, aftersale_cases.c.tenant_id, aftersale_cases.c.id)))


def _open_payments(tenant_id: str) -> Select[Any]:
    return (select(orders.c.id, orders.c.total_minor, orders.c.currency, orders.c.paid_at, orders.c.external_id)
            .where(orders.c.tenant_id == tenant_id, orders.c.payment_status == "paid", orders.c.paid_at.is_not(None),
                   orders.c.total_minor > 0, _unmatched(PAYMENT, orders.c.tenant_id, orders.c.id)))


def _refund(row: Any) -> Candidate:
    return Candidate(kind=REFUND, id=row.id, amount=int(row.refunded_minor), currency=row.currency,
                     at=row.refunded_at, order_id=row.order_id, order_external_id=row.external_id,
                     refund_ref=row.refund_ref)


def _payment(row: Any) -> Candidate:
    return Candidate(kind=PAYMENT, id=row.id, amount=int(row.total_minor), currency=row.currency, at=row.paid_at,
                     order_id=row.id, order_external_id=row.external_id)


def _stored(row: Any) -> StoredStatementLine:
    return StoredStatementLine(
        line_key=row.line_key, import_id=row.import_id, line_no=row.line_no, booked_at=row.booked_at,
        amount=int(row.amount_minor), currency=row.currency, memo=row.memo, counterparty=row.counterparty,
        reference=row.reference, status=row.status, match_rule=row.match_rule, matched_kind=row.matched_kind,
        matched_id=row.matched_id, candidates=list(row.candidates or []), created_at=row.created_at)


class SqlStatementRepository:
    """Statement imports and lines of one connection (the unit of work's, for writes)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # ------------------------------------------------------------------ candidates
    def open_candidates(self, tenant_id: str, *, since: datetime | None = None,
                        until: datetime | None = None) -> list[Candidate]:
        """Refunded cases (by ``refunded_at``) and paid orders (by ``paid_at``) of the tenant
        that no statement line has matched, optionally within ``[since, until]``: what the
        amount/date rule can match. Called once per import."""
        refunds, payments = _open_refunds(tenant_id), _open_payments(tenant_id)
        if since is not None:
            refunds = refunds.where(aftersale_cases.c.refunded_at >= since)
            payments = payments.where(orders.c.paid_at >= since)
        if until is not None:
            refunds = refunds.where(aftersale_cases.c.refunded_at <= until)
            payments = payments.where(orders.c.paid_at <= until)
        return ([_refund(r) for r in self._conn.execute(refunds)]
                + [_payment(r) for r in self._conn.execute(payments)])

    def open_candidates_for(self, tenant_id: str, *, refs: Collection[str] = (),
                            order_numbers: Collection[str] = ()) -> list[Candidate]:
        """Open candidates named by a statement, whatever their date: refunds whose refund ref
        or case id is in ``refs``; refunds and payments of the orders whose external id is in
        ``order_numbers``. Called once per import with the words of every new line."""
        found: list[Candidate] = []
        for chunk in _chunks(refs):
            found.extend(_refund(r) for r in self._conn.execute(_open_refunds(tenant_id).where(
                or_(aftersale_cases.c.refund_ref.in_(chunk), aftersale_cases.c.id.in_(chunk)))))
        for chunk in _chunks(order_numbers):
            found.extend(_refund(r) for r in self._conn.execute(
                _open_refunds(tenant_id).where(orders.c.external_id.in_(chunk))))
            found.extend(_payment(r) for r in self._conn.execute(
                _open_payments(tenant_id).where(orders.c.external_id.in_(chunk))))
        return found

    # ------------------------------------------------------------------ lines
    def line_statuses(self, tenant_id: str, keys: Collection[str]) -> dict[str, str]:
        """``line_key → status`` of the given keys already stored (earlier imports)."""
        statuses: dict[str, str] = {}
        for chunk in _chunks(keys):
            rows = self._conn.execute(select(statement_lines.c.line_key, statement_lines.c.status).where(
                statement_lines.c.tenant_id == tenant_id, statement_lines.c.line_key.in_(chunk)))
            statuses.update({row.line_key: row.status for row in rows})
        return statuses

    def add_lines(self, tenant_id: str, import_id: str, outcomes: Sequence[tuple[StatementLine, MatchResult]], *,
                  now: datetime) -> None:
        """Store new lines with their outcome (one multi-row INSERT per chunk). Raises
        :class:`DuplicateKeyError` when a line key or a matched refund / payment was stored
        by a concurrent import; the transaction is then unusable and must be rolled back."""
        # Counterparty and reference columns are bounded (PostgreSQL refuses longer text); the
        # line key was computed from the full values, so a re-import is still recognised.
        rows = [{
            "tenant_id": tenant_id, "line_key": line.key, "import_id": import_id, "line_no": line.line_no,
            "booked_at": line.booked_at, "amount_minor": line.amount, "currency": line.currency,
            "memo": line.memo, "counterparty": line.counterparty[:300], "reference": line.reference[:200],
            "status": result.status, "match_rule": result.rule,
            "matched_kind": result.matched.kind if result.matched else None,
            "matched_id": result.matched.id if result.matched else None,
            "candidates": [c.to_dict() for c in result.candidates], "created_at": now,
        } for line, result in outcomes]
        try:
            for start in range(0, len(rows), CHUNK):
                self._conn.execute(insert(statement_lines), rows[start:start + CHUNK])
        except IntegrityError as exc:
            raise DuplicateKeyError("a statement line or the refund / payment it matched was stored by a "
                                    "concurrent import", entity="statement_line", key=import_id) from exc

    def add_import(self, tenant_id: str, import_id: str, *, filename: str, digest: str, counts: dict[str, Any],
                   errors: list[dict[str, Any]], now: datetime) -> None:
        """Record one import: the file, its digest, what it counted and its bad rows."""
        self._conn.execute(insert(statement_imports).values(
            tenant_id=tenant_id, id=import_id, filename=filename[:500], file_digest=digest, counts=counts,
            errors=errors, imported_at=now))

    def lines(self, tenant_id: str, *, status: str | None = None, import_id: str | None = None,
              limit: int = 100) -> list[StoredStatementLine]:
        """Stored lines, newest import first then in file order; ``orderhub finance
        statement-lines`` lists them."""
        query = select(statement_lines).where(statement_lines.c.tenant_id == tenant_id)
        if status is not None:
            query = query.where(statement_lines.c.status == status)
        if import_id is not None:
            query = query.where(statement_lines.c.import_id == import_id)
        query = query.order_by(statement_lines.c.created_at.desc(), statement_lines.c.import_id,
                               statement_lines.c.line_no).limit(limit)
        return [_stored(row) for row in self._conn.execute(query)]

"""Statement import (``orderhub finance import-statement FILE``, issue 6 §6): read a bank or
payment-platform statement, match each new line to the refund (money out) or order payment
(money in) it settles, and store lines and outcomes with an import record in ONE
transaction.

Idempotent: a line already stored by an earlier import (same line key: content plus
occurrence in the file) is not imported again; it is counted as ``already_imported`` with
its earlier status. Candidates are loaded once per import (``adapters/db/statements.py``)
and matched in memory (``domain/finance/statements.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from orderhub.adapters.db.errors import DuplicateKeyError
from orderhub.adapters.db.statements import SqlStatementRepository, StoredStatementLine
from orderhub.domain import ids
from orderhub.domain.finance.statements import (
    AMBIGUOUS,
    DEFAULT_CURRENCY,
    DEFAULT_ZONE,
    MATCHED,
    REFUND,
    RULES,
    STATUSES,
    BadRow,
    Candidate,
    Matcher,
    MatchResult,
    StatementLine,
    order_keys,
    parse_statement,
    reference_keys,
)
from orderhub.domain.money import Money
from orderhub.domain.time import isoformat
from orderhub.service_layer.errors import ConcurrencyConflict, InvalidInput
from orderhub.service_layer.unit_of_work import SqlAlchemyUnitOfWork

Progress = Callable[[int, int], None]
PROGRESS_EVERY = 200          # lines between progress calls: a redraw per line would cost more than matching
MAX_WINDOW_DAYS = 366
MAX_LIST = 1000


@dataclass
class StatementReport:
    """What one import did; counts are of the lines new in this import (``lines`` counts
    every good line of the file, ``already_imported`` those stored by an earlier import)."""

    import_id: str
    file: str
    lines: int = 0
    by_rule: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULES, 0))
    ambiguous: list[tuple[StatementLine, MatchResult]] = field(default_factory=list)
    unmatched: list[StatementLine] = field(default_factory=list)
    already_imported: int = 0
    earlier_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    bad_rows: list[BadRow] = field(default_factory=list)

    @property
    def matched(self) -> int:
        """New lines matched, whatever the rule."""
        return sum(self.by_rule.values())

    def add(self, line: StatementLine, result: MatchResult) -> None:
        """Count the outcome of one new line (called by :func:`import_statement` as it matches)."""
        if result.status == MATCHED:
            assert result.rule is not None
            self.by_rule[result.rule] += 1
        elif result.status == AMBIGUOUS:
            self.ambiguous.append((line, result))
        else:
            self.unmatched.append(line)

    def counts(self) -> dict[str, Any]:
        """The figures stored with the import record (``statement_imports.counts``)."""
        return {"lines": self.lines, "matched": self.matched, "by_rule": dict(self.by_rule),
                "ambiguous": len(self.ambiguous), "unmatched": len(self.unmatched),
                "already_imported": self.already_imported, "already_imported_by_status": dict(self.earlier_status),
                "bad_rows": len(self.bad_rows)}

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (``--json``); amounts are ``{"amount": minor, "currency"}``."""
        return {
            "import_id": self.import_id, "file": self.file, "lines": self.lines, "matched": self.matched,
            "by_rule": dict(self.by_rule),
            "ambiguous": [{**_line_view(line), "rule": result.rule, "reason": result.reason,
                           "candidate_count": result.candidate_count,
                           "candidates": [c.to_dict() for c in result.candidates]}
                          for line, result in self.ambiguous],
            "unmatched": [_line_view(line) for line in self.unmatched],
            "already_imported": self.already_imported,
            "already_imported_by_status": dict(self.earlier_status),
            "bad_rows": [b.to_dict() for b in self.bad_rows],
        }


def _line_view(line: StatementLine) -> dict[str, Any]:
    return {"line": line.line_no, "date": isoformat(line.booked_at), "amount": line.money.to_dict(),
            "memo": line.memo, "counterparty": line.counterparty, "reference": line.reference}


def _check_options(tolerance_minor: int, window_days: int) -> None:
    if isinstance(tolerance_minor, bool) or not isinstance(tolerance_minor, int) or tolerance_minor < 0:
        raise InvalidInput("the amount tolerance must be zero or more minor units", field="tolerance")
    if isinstance(window_days, bool) or not isinstance(window_days, int) or not 0 <= window_days <= MAX_WINDOW_DAYS:
        raise InvalidInput(f"the date window must be 0 to {MAX_WINDOW_DAYS} days", field="window_days")


def _candidates(repo: SqlStatementRepository, tenant_id: str, lines: Sequence[StatementLine],
                window_days: int) -> list[Candidate]:
    """Open candidates the lines can match: everything dated near them (amount/date rule),
    plus whatever their references and memos name, however old (reference and memo rules)."""
    if not lines:
        return []
    # Two days of slack: the window counts calendar days in the statement's zone, not hours in UTC.
    slack = timedelta(days=window_days + 2)
    dated = repo.open_candidates(tenant_id, since=min(line.booked_at for line in lines) - slack,
                                 until=max(line.booked_at for line in lines) + slack)
    refs = {key for line in lines if line.side == REFUND for key in reference_keys(line)}
    numbers = {key for line in lines for key in order_keys(line)}
    numbers |= {line.reference.strip() for line in lines if line.side != REFUND and line.reference.strip()}
    named = repo.open_candidates_for(tenant_id, refs=refs, order_numbers=numbers)
    return list({(c.kind, c.id): c for c in dated + named}.values())


def import_statement(uow_factory: Callable[[], SqlAlchemyUnitOfWork], *, tenant_id: str, filename: str, data: bytes,
                     tolerance_minor: int = 50, window_days: int = 3, currency: str = DEFAULT_CURRENCY,
                     zone: str = DEFAULT_ZONE, progress: Progress | None = None) -> StatementReport:
    """Import the statement ``data`` (the bytes of ``filename``) for ``tenant_id``: used by
    ``orderhub finance import-statement``. Raises InvalidStatement (domain) when the file
    can't be read at all (nothing is imported), InvalidInput for bad options and
    ConcurrencyConflict when another import stored some of these lines or matches first
    (nothing is imported; running it again skips what the other one stored).
    ``progress(done, total)`` is called while the new lines are matched."""
    _check_options(tolerance_minor, window_days)
    parsed = parse_statement(data, currency=currency, zone=zone)
    report = StatementReport(import_id=ids.new_id("stm"), file=filename, lines=len(parsed.lines),
                             bad_rows=list(parsed.bad_rows))
    with uow_factory() as uow:
        repo = SqlStatementRepository(uow.connection)
        earlier = repo.line_statuses(tenant_id, [line.key for line in parsed.lines])
        new = [line for line in parsed.lines if line.key not in earlier]
        report.already_imported = len(parsed.lines) - len(new)
        report.earlier_status.update(Counter(earlier.values()))
        matcher = Matcher(_candidates(repo, tenant_id, new, window_days), tolerance_minor=tolerance_minor,
                          window_days=window_days, zone=zone)
        outcomes: list[tuple[StatementLine, MatchResult]] = []
        if progress is not None:
            progress(0, len(new))
        for done, line in enumerate(new, start=1):
            result = matcher.match(line)
            report.add(line, result)
            outcomes.append((line, result))
            if progress is not None and (done % PROGRESS_EVERY == 0 or done == len(new)):
                progress(done, len(new))
        now = uow.clock.now()
        try:
            repo.add_import(tenant_id, report.import_id, filename=filename, digest=parsed.digest,
                            counts=report.counts(), errors=[b.to_dict() for b in report.bad_rows], now=now)
            repo.add_lines(tenant_id, report.import_id, outcomes, now=now)
        except DuplicateKeyError as exc:
            raise ConcurrencyConflict(f"{filename}: another statement import stored some of these lines or matched "
                                      "the same refunds / payments first; nothing was imported, run it again "
                                      "(lines already stored are skipped)") from exc
        uow.commit()
    return report


# --------------------------------------------------------------------------- reading
@contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    # Ends with COMMIT (nothing was written): on psycopg 3 that keeps prepared statements.
    with engine.connect() as conn:
        yield conn
        if conn.in_transaction():
            conn.commit()


def stored_line_view(line: StoredStatementLine) -> dict[str, Any]:
    """The JSON shape of a stored line (``orderhub finance statement-lines --json``)."""
    matched = {"kind": line.matched_kind, "id": line.matched_id} if line.matched_id else None
    return {"line_key": line.line_key, "import_id": line.import_id, "line": line.line_no,
            "date": isoformat(line.booked_at), "amount": Money(line.amount, line.currency).to_dict(),
            "memo": line.memo, "counterparty": line.counterparty, "reference": line.reference,
            "status": line.status, "rule": line.match_rule, "matched": matched, "candidates": line.candidates,
            "imported_at": isoformat(line.created_at)}


def statement_lines(engine: Engine, *, tenant_id: str, status: str | None = None, import_id: str | None = None,
                    limit: int = 100) -> list[dict[str, Any]]:
    """Stored statement lines of the tenant (newest import first), optionally of one status
    or import: used by ``orderhub finance statement-lines``. Reads only."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; expected one of: {', '.join(STATUSES)}", field="status")
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit must be 1 to {MAX_LIST}", field="limit")
    with _reading(engine) as conn:
        rows = SqlStatementRepository(conn).lines(tenant_id, status=status, import_id=import_id, limit=limit)
    return [stored_line_view(row) for row in rows]

"""Bank and payment-platform statements (DESIGN.md §2 step 6): reading a statement CSV into
lines, and matching each line to the refund (money out) or order payment (money in) it
settles. Used by ``orderhub finance import-statement`` (``service_layer/statements.py``);
:class:`Matcher` is also what a benchmark times.

Reading. A header row is required; column names are case-insensitive with the aliases of
:data:`COLUMN_ALIASES`. The file is UTF-8 (with or without BOM) or, failing that, GB18030
(what Chinese banks export). A missing required column raises :class:`InvalidStatement`;
a bad row (unparseable date or amount, more decimals than the currency has, empty date or
amount) becomes a :class:`BadRow` with its 1-based file line (the header is line 1) and the
other rows are still read. Fully empty rows (a blank line, ``,,,``) are skipped.

Matching, per line, first rule that gives an answer wins (see :meth:`Matcher.match`):
``reference`` (a refund ref / case id in the reference or memo, an order number as the
reference of money in), ``memo_order`` (an order number in the memo), ``amount_date``
(amount within the tolerance, date within ±N calendar days in the statement's zone).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from orderhub.domain.errors import DomainError, InvalidMoney, InvalidStatement
from orderhub.domain.money import Money, currency_exponent
from orderhub.domain.time import isoformat

# [assumed] Chinese banks and payment platforms print local times without an offset.
DEFAULT_ZONE = "Asia/Shanghai"
DEFAULT_CURRENCY = "CNY"
REFUND, PAYMENT = "refund", "payment"
MATCHED, AMBIGUOUS, UNMATCHED = "matched", "ambiguous", "unmatched"
STATUSES = (MATCHED, AMBIGUOUS, UNMATCHED)
REFERENCE, MEMO_ORDER, AMOUNT_DATE = "reference", "memo_order", "amount_date"
RULES = (REFERENCE, MEMO_ORDER, AMOUNT_DATE)
MAX_CANDIDATES = 10          # candidates listed for an ambiguous line
MIN_TOKEN = 6                # shorter memo words are too likely to collide with an order number

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("date", "booked_at", "value_date", "交易日期"),
    "amount": ("amount",),
    "debit": ("debit",),
    "credit": ("credit",),
    "memo": ("memo", "description", "摘要", "备注"),
    "counterparty": ("counterparty", "payee", "对方户名"),
    "reference": ("reference", "ref", "transaction_id", "流水号"),
    "currency": ("currency",),
}

_DATE = re.compile(
    r"(?P<y>\d{4})(?:(?P<sep>[-/])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})|(?P<m8>\d{2})(?P<d8>\d{2}))"
    r"(?:[T ]\s*(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<f>\d{1,6}))?)?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?")
# "1,234.50": digit grouping as banks print it; any other comma is an error, not a guess.
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
# Refund refs and case ids (``as_…``) may hold underscores; order numbers are letters, digits, dashes.
_REF_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_ORDER_TOKEN = re.compile(r"[A-Za-z0-9-]+")
_SPACES = re.compile(r"\s+")


# --------------------------------------------------------------------------- reading
@dataclass(frozen=True, slots=True)
class StatementLine:
    """One good statement row. ``amount`` is signed minor units (negative: money out),
    ``booked_at`` aware UTC, ``key`` the idempotency key (see :func:`line_key`)."""

    line_no: int
    booked_at: datetime
    amount: int
    currency: str
    memo: str
    counterparty: str
    reference: str
    key: str = ""

    @property
    def side(self) -> str:
        """``refund`` for money out, ``payment`` for money in: what the line can settle."""
        return REFUND if self.amount < 0 else PAYMENT

    @property
    def money(self) -> Money:
        """The signed amount as Money."""
        return Money(self.amount, self.currency)


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that could not be read: its file line, the field at fault and why."""

    line: int
    field: str
    error: str

    def to_dict(self) -> dict[str, Any]:
        """The report shape ``{"line", "field", "error"}``."""
        return {"line": self.line, "field": self.field, "error": self.error}


@dataclass(frozen=True, slots=True)
class ParsedStatement:
    """Every good line and bad row of a file, with the file's digest (``sha256:…``)."""

    lines: tuple[StatementLine, ...]
    bad_rows: tuple[BadRow, ...]
    digest: str


def decode_statement(data: bytes) -> str:
    """The text of a statement file: UTF-8 (BOM or not) first, then GB18030."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        # UTF-8 first: valid UTF-8 Chinese text also decodes as GB18030, into mojibake.
        encodings = ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidStatement("the file is not UTF-8 or GB18030 text; export the statement as CSV")


def parse_zone(zone: str) -> ZoneInfo:
    """The IANA zone naive statement times are read in; InvalidStatement if unknown."""
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidStatement(f"unknown IANA time zone {zone!r} (e.g. Asia/Shanghai)", field="timezone") from exc


def parse_booked_at(text: str, zone: ZoneInfo) -> datetime:
    """A statement date as aware UTC: ``YYYY-MM-DD``, ``YYYY/MM/DD``, ``YYYYMMDD``, each
    optionally with ``HH:MM[:SS[.ffffff]]`` and an offset (``Z``, ``+08:00``); a date or
    time without an offset is local time in ``zone``. ValueError names what is wrong."""
    match = _DATE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD, YYYY/MM/DD, optionally with HH:MM:SS)")
    g = match.groupdict()
    fraction = (g["f"] or "").ljust(6, "0")
    try:
        naive = datetime(int(g["y"]), int(g["m"] or g["m8"]), int(g["d"] or g["d8"]), int(g["H"] or 0),
                         int(g["M"] or 0), int(g["S"] or 0), int(fraction or 0))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid date: {exc}") from exc
    offset = g["tz"]
    if offset is None:
        return naive.replace(tzinfo=zone).astimezone(UTC)
    if offset == "Z":
        return naive.replace(tzinfo=UTC)
    digits = offset[1:].replace(":", "").ljust(4, "0")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if delta >= timedelta(hours=24):
        raise ValueError(f"{text!r} has an impossible UTC offset")
    return naive.replace(tzinfo=timezone(-delta if offset[0] == "-" else delta)).astimezone(UTC)


def parse_amount(text: str, currency: str, *, field: str = "amount") -> int:
    """Decimal text (``-12.30``, ``1,234.50``) as exact minor units of ``currency``;
    InvalidMoney when it isn't a plain amount or has more decimals than the currency."""
    value = text.strip()
    if _GROUPED.fullmatch(value):
        value = value.replace(",", "")
    return Money.parse(value, currency, field=field).amount


def line_key(line: StatementLine, occurrence: int) -> str:
    """The idempotency key of a row: sha256 of its normalised content (date, amount, currency,
    memo, counterparty, reference) and its occurrence among identical rows of the file, so a
    re-import is recognised and two identical rows in one file (two equal transfers on one
    day) are both kept."""
    parts = (isoformat(line.booked_at), str(line.amount), line.currency, line.memo, line.counterparty,
             line.reference, str(occurrence))
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _columns(header: list[str]) -> dict[str, list[int]]:
    """Canonical field → indexes of the header cells naming it (alias priority order)."""
    names = [cell.strip().casefold() for cell in header]
    found: dict[str, list[int]] = {}
    for fld, aliases in COLUMN_ALIASES.items():
        indexes = [i for alias in aliases for i, name in enumerate(names) if name == alias.casefold()]
        if indexes:
            found[fld] = indexes
    return found


def _check_columns(header: list[str], columns: dict[str, list[int]]) -> None:
    missing = []
    for fld in ("date", "memo", "counterparty"):
        if fld not in columns:
            missing.append(" or ".join(COLUMN_ALIASES[fld]))
    if not {"amount", "debit", "credit"} & columns.keys():
        missing.append("amount (or debit/credit)")
    if missing:
        shown = ", ".join(cell.strip() for cell in header if cell.strip()) or "(empty)"
        raise InvalidStatement(f"missing required column(s): {'; '.join(missing)}; the header row is: {shown}",
                               field="header")


def _delimiter(text: str) -> str:
    # Banks export commas; "Unicode text" exports from spreadsheets use tabs, some locales ';'.
    return max((",", "\t", ";"), key=text.split("\n", 1)[0].count)


def _rows(text: str) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """``(first file line, cells, error)`` per CSV record; a record spanning lines (a quoted
    memo with a newline) is numbered by its first line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if reader.line_num < start:
                return
            yield start, None, f"unreadable CSV: {exc}"
            continue
        yield start, cells, None


def _amount(cells: dict[str, str], currency: str) -> int:
    """The signed amount of a row: ``amount``, else ``credit`` (in) minus ``debit`` (out)."""
    if cells.get("amount"):
        return parse_amount(cells["amount"], currency)
    debit, credit = cells.get("debit", ""), cells.get("credit", "")
    # Some banks print debits as negative numbers, others as positive: the column says which.
    out = abs(parse_amount(debit, currency, field="debit")) if debit else 0
    into = abs(parse_amount(credit, currency, field="credit")) if credit else 0
    if out and into:
        raise InvalidMoney("both debit and credit are filled in", field="debit")
    return into - out


def _read_row(line_no: int, cells: dict[str, str], currency: str, zone: ZoneInfo
              ) -> tuple[datetime, int, str] | BadRow:
    """The date, amount and currency of a row, or its first problem."""
    if not cells.get("date"):
        return BadRow(line_no, "date", "empty")
    try:
        booked_at = parse_booked_at(cells["date"], zone)
    except ValueError as exc:
        return BadRow(line_no, "date", str(exc))
    row_currency = cells.get("currency", "").upper() or currency
    try:
        currency_exponent(row_currency)
        if not any(cells.get(f) for f in ("amount", "debit", "credit")):
            return BadRow(line_no, "amount", "empty")
        amount = _amount(cells, row_currency)
    except DomainError as exc:
        return BadRow(line_no, exc.field or "amount", exc.message)
    if amount == 0:
        return BadRow(line_no, "amount", "zero: neither money in nor money out")
    return booked_at, amount, row_currency


def _header(rows: Iterator[tuple[int, list[str] | None, str | None]]) -> list[str]:
    """The first non-empty record (leading blank lines are skipped)."""
    for _line_no, cells, _error in rows:
        if cells is not None and any(cell.strip() for cell in cells):
            return cells
    raise InvalidStatement("the file has no header row (date, amount, memo, counterparty…)", field="header")


def parse_statement(data: bytes, *, currency: str = DEFAULT_CURRENCY, zone: str = DEFAULT_ZONE) -> ParsedStatement:
    """Read a statement file (see the module docstring). Raises :class:`InvalidStatement`
    when the file can't be read as a whole, UnknownCurrency for an unknown ``currency``."""
    currency_exponent(currency)
    tz = parse_zone(zone)
    rows = _rows(decode_statement(data))
    header = _header(rows)
    columns = _columns(header)
    _check_columns(header, columns)
    width = len(header)
    lines: list[StatementLine] = []
    bad: list[BadRow] = []
    seen: Counter[StatementLine] = Counter()
    for line_no, raw, error in rows:
        if raw is None:
            bad.append(BadRow(line_no, "row", error or "unreadable"))
            continue
        if not any(cell.strip() for cell in raw):
            continue
        if len(raw) > width and any(cell.strip() for cell in raw[width:]):
            bad.append(BadRow(line_no, "row", f"{len(raw)} cells but the header has {width} columns"))
            continue
        # Every memo column is kept (摘要 and 备注 often both carry text); otherwise the first counts.
        cells = {fld: (" ".join(raw[i] for i in idx if i < len(raw)) if fld == "memo"
                       else raw[idx[0]] if idx[0] < len(raw) else "")
                 for fld, idx in columns.items()}
        cells = {fld: _SPACES.sub(" ", value).strip() for fld, value in cells.items()}
        read = _read_row(line_no, cells, currency, tz)
        if isinstance(read, BadRow):
            bad.append(read)
            continue
        booked_at, amount, row_currency = read
        content = StatementLine(0, booked_at, amount, row_currency, cells.get("memo", ""),
                                cells.get("counterparty", ""), cells.get("reference", ""))
        lines.append(replace(content, line_no=line_no, key=line_key(content, seen[content])))
        seen[content] += 1
    return ParsedStatement(tuple(lines), tuple(bad), "sha256:" + hashlib.sha256(data).hexdigest())


# --------------------------------------------------------------------------- matching
@dataclass(frozen=True, slots=True)
class Candidate:
    """Something a statement line can settle: a refunded after-sale case (``refund``, ``id``
    the case id, ``at`` refunded_at) or a paid order (``payment``, ``id`` the order id, ``at``
    paid_at). ``amount`` is positive minor units."""

    kind: str
    id: str
    amount: int
    currency: str
    at: datetime
    order_id: str
    order_external_id: str
    refund_ref: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report shape of a candidate."""
        return {"kind": self.kind, "id": self.id, "amount": Money(self.amount, self.currency).to_dict(),
                "date": isoformat(self.at), "order_id": self.order_id,
                "order_external_id": self.order_external_id, "refund_ref": self.refund_ref}


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The outcome for one line: ``matched`` (``rule``, ``matched``), ``ambiguous`` (the rule
    that found them, up to :data:`MAX_CANDIDATES` ``candidates`` of ``candidate_count``, and a
    ``reason``) or ``unmatched``."""

    status: str
    rule: str | None = None
    matched: Candidate | None = None
    candidates: tuple[Candidate, ...] = ()
    candidate_count: int = 0
    reason: str = ""


def reference_keys(line: StatementLine) -> set[str]:
    """What the ``reference`` rule looks up for money out: the whole reference and every
    letters/digits/``_``/``-`` word of at least :data:`MIN_TOKEN` characters in the
    reference and memo (compared exactly: ``RF-1001`` does not match ``RF-10012``)."""
    keys = {line.reference.strip()} - {""}
    for text in (line.reference, line.memo):
        keys.update(t for t in (w.strip("-_") for w in _REF_TOKEN.findall(text)) if len(t) >= MIN_TOKEN)
    return keys


def order_keys(line: StatementLine) -> set[str]:
    """The order numbers the ``memo_order`` rule looks up: letters/digits/dash words of at
    least :data:`MIN_TOKEN` characters in the memo and reference (a dictionary lookup per
    word, never a substring scan of every order)."""
    words = _ORDER_TOKEN.findall(line.memo) + _ORDER_TOKEN.findall(line.reference)
    return {t for t in (w.strip("-") for w in words) if len(t) >= MIN_TOKEN}


class Matcher:
    """Matches statement lines against open candidates, built once per import.

    Indexes: refunds by refund ref and case id, refunds and payments by order number, and
    per (side, currency, local day) the candidates sorted by amount, so the amount/date rule
    is a few bisections per line whatever the number of candidates. A matched candidate is
    taken: no later line of this matcher is offered it.
    """

    def __init__(self, candidates: Iterable[Candidate], *, tolerance_minor: int = 50, window_days: int = 3,
                 zone: str = DEFAULT_ZONE) -> None:
        if tolerance_minor < 0 or window_days < 0:
            raise ValueError("tolerance_minor and window_days can't be negative")
        self.tolerance = tolerance_minor
        self.window = window_days
        self._zone = parse_zone(zone)
        self._taken: set[tuple[str, str]] = set()
        self._day: dict[tuple[str, str], int] = {}
        self._by_ref: dict[str, list[Candidate]] = defaultdict(list)
        self._by_order: dict[tuple[str, str], list[Candidate]] = defaultdict(list)
        buckets: dict[tuple[str, str, int], list[Candidate]] = defaultdict(list)
        for c in candidates:
            ident = (c.kind, c.id)
            if ident in self._day:
                continue
            day = self._day[ident] = self.local_day(c.at)
            buckets[(c.kind, c.currency, day)].append(c)
            self._by_order[(c.kind, c.order_external_id)].append(c)
            if c.kind == REFUND:
                self._by_ref[c.id].append(c)
                if c.refund_ref and c.refund_ref != c.id:
                    self._by_ref[c.refund_ref].append(c)
        self._buckets: dict[tuple[str, str, int], tuple[list[int], list[Candidate]]] = {}
        for bucket_key, items in buckets.items():
            items.sort(key=lambda c: (c.amount, c.at, c.id))
            self._buckets[bucket_key] = ([c.amount for c in items], items)

    def local_day(self, at: datetime) -> int:
        """The calendar day (ordinal) of ``at`` in the statement's zone: the date window
        counts whole days, as a bank statement does."""
        return at.astimezone(self._zone).date().toordinal()

    def match(self, line: StatementLine) -> MatchResult:
        """Match one line: ``reference``, then ``memo_order``, then ``amount_date``; a match
        takes its candidate."""
        amount = abs(line.amount)
        result = (self._by_reference(line, amount) or self._by_memo_order(line, amount)
                  or self._by_amount_date(line, amount))
        if result.matched is not None:
            self._take(result.matched)
        return result

    # ------------------------------------------------------------------ rules
    def _usable(self, line: StatementLine, found: Iterable[Candidate]) -> list[Candidate]:
        unique = {(c.kind, c.id): c for c in found
                  if c.currency == line.currency and (c.kind, c.id) not in self._taken}
        # Sorted: the keys come from a set, and reports must not change from run to run.
        return sorted(unique.values(), key=lambda c: (c.amount, c.id))

    def _by_reference(self, line: StatementLine, amount: int) -> MatchResult | None:
        if line.side == REFUND:
            found = self._usable(line, (c for key in reference_keys(line) for c in self._by_ref.get(key, ())))
        elif line.reference.strip():
            found = self._usable(line, self._by_order.get((PAYMENT, line.reference.strip()), ()))
        else:
            return None
        if not found:
            return None
        agreeing = [c for c in found if abs(c.amount - amount) <= self.tolerance]
        if len(agreeing) == 1:
            return MatchResult(MATCHED, REFERENCE, agreeing[0])
        money = Money(amount, line.currency).to_decimal_string()
        if agreeing:
            reason = f"the line names {len(agreeing)} {line.side}s of {money}"
        else:
            named = ", ".join(f"{c.id} ({Money(c.amount, c.currency).to_decimal_string()})" for c in found[:3])
            reason = f"the line names {named} but its amount is {money}"
        return self._ambiguous(REFERENCE, line, amount, agreeing or found, reason)

    def _by_memo_order(self, line: StatementLine, amount: int) -> MatchResult | None:
        found = self._usable(line, (c for key in order_keys(line) for c in self._by_order.get((line.side, key), ())))
        close = [c for c in found if abs(c.amount - amount) <= self.tolerance]
        if not close:
            return None
        if len(close) == 1:
            return MatchResult(MATCHED, MEMO_ORDER, close[0])
        orders = sorted({c.order_external_id for c in close})
        return self._ambiguous(MEMO_ORDER, line, amount, close,
                               f"order {', '.join(orders)} has {len(close)} open {line.side}s of this amount")

    def _by_amount_date(self, line: StatementLine, amount: int) -> MatchResult:
        # Taken candidates are removed from the buckets, so counting is bisection arithmetic
        # and only the few nearest per day are looked at: popular prices (thousands of 59.90
        # refunds a week) cost no more than rare ones.
        day = self.local_day(line.booked_at)
        count = 0
        near: list[Candidate] = []
        for d in range(day - self.window, day + self.window + 1):
            bucket = self._buckets.get((line.side, line.currency, d))
            if bucket is None:
                continue
            amounts, items = bucket
            lo = bisect_left(amounts, amount - self.tolerance)
            hi = bisect_right(amounts, amount + self.tolerance, lo)
            if lo < hi:
                count += hi - lo
                middle = bisect_left(amounts, amount, lo, hi)
                near.extend(items[max(lo, middle - MAX_CANDIDATES):min(hi, middle + MAX_CANDIDATES)])
        if count == 0:
            return MatchResult(UNMATCHED)
        if count == 1:
            return MatchResult(MATCHED, AMOUNT_DATE, near[0])
        return self._ambiguous(AMOUNT_DATE, line, amount, near,
                               f"{count} open {line.side}s within the tolerance and ±{self.window} days", count=count)

    def _ambiguous(self, rule: str, line: StatementLine, amount: int, found: list[Candidate], reason: str, *,
                   count: int | None = None) -> MatchResult:
        day = self.local_day(line.booked_at)
        ranked = sorted(found, key=lambda c: (abs(c.amount - amount), abs(self._day[(c.kind, c.id)] - day),
                                              c.at, c.id))
        return MatchResult(AMBIGUOUS, rule, None, tuple(ranked[:MAX_CANDIDATES]),
                           len(found) if count is None else count, reason)

    def _take(self, candidate: Candidate) -> None:
        self._taken.add((candidate.kind, candidate.id))
        amounts, items = self._buckets[(candidate.kind, candidate.currency, self._day[(candidate.kind, candidate.id)])]
        index = bisect_left(amounts, candidate.amount)
        while items[index] is not candidate:
            index += 1
        del amounts[index], items[index]

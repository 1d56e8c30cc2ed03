"""What is still refundable on an order, and the amount and lines of a new case.

Money is integer minor units. An order can be refunded up to what was paid for it; each line
up to its own total (price × quantity − discount + tax). Every case that isn't rejected or
cancelled counts against both, so partial and line-level refunds across several cases never
add up to more than was paid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from orderhub.domain.aftersale.states import AfterSaleType
from orderhub.domain.errors import InvalidAfterSale, RefundExceedsRemaining
from orderhub.domain.money import Money


@dataclass(frozen=True, slots=True)
class PaidLine:
    """One order line as paid: ``total`` in minor units for ``quantity`` units."""

    line_no: int
    sku: str
    quantity: int
    total: int


@dataclass(frozen=True, slots=True)
class CaseLine:
    """A line of a case: ``quantity`` units of order line ``line_no`` for ``amount`` minor units."""

    line_no: int
    sku: str
    quantity: int
    amount: int

    def to_dict(self) -> dict[str, object]:
        """JSON-safe form (stored and returned by the API)."""
        return {"line_no": self.line_no, "sku": self.sku, "quantity": self.quantity, "amount": self.amount}

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> CaseLine:
        """The inverse of :meth:`to_dict`."""
        return cls(line_no=int(raw["line_no"]), sku=str(raw["sku"]),  # type: ignore[call-overload]
                   quantity=int(raw["quantity"]), amount=int(raw["amount"]))  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True)
class LineRequest:
    """A line as asked for: by line number or SKU, a quantity, optionally an amount."""

    line_no: int | None
    sku: str | None
    quantity: int
    amount: int | None = None


@dataclass(frozen=True, slots=True)
class Committed:
    """An existing case's claim on the order: its amount and lines."""

    amount: int
    lines: tuple[CaseLine, ...] = ()


@dataclass(frozen=True, slots=True)
class Remaining:
    """What is still refundable: on the order, and per line (quantity, amount)."""

    order: int
    lines: dict[int, tuple[int, int]]


def remaining(paid_total: int, lines: Sequence[PaidLine], committed: Iterable[Committed]) -> Remaining:
    """What ``committed`` cases leave refundable of an order that was paid ``paid_total``."""
    left = paid_total
    per_line = {ln.line_no: (ln.quantity, ln.total) for ln in lines}
    for claim in committed:
        left -= claim.amount
        for cl in claim.lines:
            qty, amount = per_line.get(cl.line_no, (0, 0))
            per_line[cl.line_no] = (qty - cl.quantity, amount - cl.amount)
    return Remaining(order=max(left, 0),
                     lines={no: (max(q, 0), max(a, 0)) for no, (q, a) in per_line.items()})


def plan_case(case_type: AfterSaleType, *, paid_lines: Sequence[PaidLine], left: Remaining,
              amount: int | None, requested: Sequence[LineRequest],
              currency: str | None = None) -> tuple[int, tuple[CaseLine, ...]]:
    """The amount and lines of a new case, checked against what is ``left``.

    * Lines given: each names an order line (``line_no`` or a SKU on the order) and a
      quantity; its amount defaults to that share of the line's remaining amount (the last
      unit takes the remainder, so a whole line refunds to the cent).
    * ``amount`` given: a partial refund; it may not exceed the lines' amounts (when lines
      are given) nor what is left on the order.
    * Neither: the whole remaining amount of the order (refund types) or nothing (reship,
      exchange without lines means every remaining unit).

    Raises :class:`InvalidAfterSale` for lines that aren't on the order and
    :class:`RefundExceedsRemaining` for amounts above what is left (messages show amounts in
    ``currency`` when given, minor units otherwise).
    """
    show = _shower(currency)
    by_no = {ln.line_no: ln for ln in paid_lines}
    by_sku: dict[str, list[PaidLine]] = {}
    for ln in paid_lines:
        by_sku.setdefault(ln.sku, []).append(ln)
    planned = _plan_lines(requested, by_no, by_sku, left, show)
    lines_total = sum(cl.amount for cl in planned)
    if not case_type.moves_money:
        if amount not in (None, 0):
            raise InvalidAfterSale(f"amount: a {case_type.value} case refunds nothing; leave amount out",
                                   field="amount")
        if not planned:
            planned = [CaseLine(line_no=ln.line_no, sku=ln.sku, quantity=left.lines[ln.line_no][0], amount=0)
                       for ln in paid_lines if left.lines.get(ln.line_no, (0, 0))[0] > 0]
            if not planned:
                raise InvalidAfterSale("lines: nothing is left on the order to exchange or reship", field="lines")
        return 0, tuple(CaseLine(cl.line_no, cl.sku, cl.quantity, 0) for cl in planned)
    if case_type is AfterSaleType.PRICE_PROTECTION and amount is None and not any(
            r.amount is not None for r in requested):
        raise InvalidAfterSale("amount: a price_protection case needs the price difference to refund, "
                               "e.g. \"amount\": \"10.00\"", field="amount")
    if amount is None:
        total = lines_total if planned else left.order
    else:
        if amount < 0:
            raise InvalidAfterSale("amount: can't be negative", field="amount")
        if planned and amount > lines_total:
            raise RefundExceedsRemaining(
                f"amount: {show(amount)} is more than the listed lines are worth ({show(lines_total)}); refund less or "
                "list more lines", field="amount", remaining=lines_total)
        total = amount
        if planned and amount < lines_total:
            planned = _scale(planned, amount)
    if total > left.order:
        raise RefundExceedsRemaining(
            f"amount: {show(total)} asked, only {show(left.order)} is left to refund on this order after earlier cases",
            field="amount", remaining=left.order)
    if total <= 0:
        raise InvalidAfterSale("amount: nothing to refund (zero); give a positive amount or other lines",
                               field="amount")
    if case_type.needs_return and not planned:
        # Goods come back: which ones? All that is left, unless lines were named.
        planned = [CaseLine(line_no=ln.line_no, sku=ln.sku, quantity=left.lines[ln.line_no][0],
                            amount=left.lines[ln.line_no][1])
                   for ln in paid_lines if left.lines.get(ln.line_no, (0, 0))[0] > 0]
        if planned and total < sum(cl.amount for cl in planned):
            planned = _scale(planned, total)
    return total, tuple(planned)


def _plan_lines(requested: Sequence[LineRequest], by_no: dict[int, PaidLine], by_sku: dict[str, list[PaidLine]],
                left: Remaining, show: Callable[[int], str]) -> list[CaseLine]:
    planned: list[CaseLine] = []
    seen: set[int] = set()
    for i, req in enumerate(requested):
        where = f"lines[{i}]"
        line = _find_line(req, by_no, by_sku, where)
        if line.line_no in seen:
            raise InvalidAfterSale(f"{where}: order line {line.line_no} ({line.sku}) is listed twice; "
                                   "give it once with the total quantity", field=where)
        seen.add(line.line_no)
        qty_left, amount_left = left.lines.get(line.line_no, (0, 0))
        if not isinstance(req.quantity, int) or req.quantity < 1:
            raise InvalidAfterSale(f"{where}.quantity: a whole number of at least 1, got {req.quantity!r}",
                                   field=f"{where}.quantity")
        if req.quantity > qty_left:
            raise InvalidAfterSale(
                f"{where}.quantity: {req.quantity} × {line.sku} asked, {qty_left} of {line.quantity} left on "
                f"order line {line.line_no} after earlier after-sale cases", field=f"{where}.quantity")
        share = amount_left if req.quantity == qty_left else amount_left * req.quantity // qty_left
        line_amount = share if req.amount is None else req.amount
        if line_amount < 0:
            raise InvalidAfterSale(f"{where}.amount: can't be negative", field=f"{where}.amount")
        if line_amount > amount_left:
            raise RefundExceedsRemaining(
                f"{where}.amount: {show(line_amount)} asked for order line {line.line_no} ({line.sku}); only "
                f"{show(amount_left)} of its {show(line.total)} is left to refund", field=f"{where}.amount",
                remaining=amount_left)
        planned.append(CaseLine(line_no=line.line_no, sku=line.sku, quantity=req.quantity, amount=line_amount))
    return planned


def _shower(currency: str | None) -> Callable[[int], str]:
    """How amounts read in messages: ``12.30 CNY`` with a currency, minor units without."""
    if currency is None:
        return str
    return lambda amount: f"{Money(amount, currency).to_decimal_string()} {currency}"


def _find_line(req: LineRequest, by_no: dict[int, PaidLine], by_sku: dict[str, list[PaidLine]],
               where: str) -> PaidLine:
    if req.line_no is not None:
        line = by_no.get(req.line_no)
        if line is None:
            raise InvalidAfterSale(f"{where}.line_no: the order has no line {req.line_no}; lines are "
                                   f"{sorted(by_no)}", field=f"{where}.line_no")
        return line
    if req.sku is not None:
        found = by_sku.get(req.sku)
        if not found:
            raise InvalidAfterSale(f"{where}.sku: {req.sku!r} is not on the order; SKUs are "
                                   f"{sorted(by_sku)}", field=f"{where}.sku")
        if len(found) > 1:
            raise InvalidAfterSale(f"{where}.sku: {req.sku!r} is on several order lines "
                                   f"{[ln.line_no for ln in found]}; give line_no instead", field=f"{where}.sku")
        return found[0]
    raise InvalidAfterSale(f"{where}: give line_no or sku", field=where)


def _scale(lines: list[CaseLine], total: int) -> list[CaseLine]:
    """Spread a partial ``total`` over ``lines`` in proportion; the last line takes the
    remainder so the lines add up exactly."""
    full = sum(cl.amount for cl in lines)
    out: list[CaseLine] = []
    given = 0
    for i, cl in enumerate(lines):
        share = total - given if i == len(lines) - 1 else (cl.amount * total // full if full else 0)
        given += share
        out.append(CaseLine(cl.line_no, cl.sku, cl.quantity, share))
    return out

"""Statements, pure (domain/finance/statements.py): reading statement CSVs (aliases, BOM,
GB18030, date formats, bad rows with file line numbers, missing columns, line keys) and the
matcher's rules in order: reference, order number in the memo, amount within the tolerance
and date within the window; ambiguous lines list their candidates; a candidate is matched
once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orderhub.domain.errors import InvalidStatement
from orderhub.domain.finance.statements import (
    AMBIGUOUS,
    AMOUNT_DATE,
    MATCHED,
    MAX_CANDIDATES,
    MEMO_ORDER,
    PAYMENT,
    REFERENCE,
    REFUND,
    UNMATCHED,
    Candidate,
    Matcher,
    StatementLine,
    order_keys,
    parse_booked_at,
    parse_statement,
    parse_zone,
)

SHANGHAI = parse_zone("Asia/Shanghai")
HEADER = "date,amount,memo,counterparty,reference\n"


def at(day: int, hour: int = 12) -> datetime:
    """A Shanghai wall-clock time on 2026-11-DAY, as aware UTC."""
    return datetime(2026, 11, day, hour, tzinfo=SHANGHAI).astimezone(UTC)


def refund(case_id: str, amount: int, day: int = 20, *, order: str = "WEB-100001", ref: str | None = None,
           currency: str = "CNY", hour: int = 12) -> Candidate:
    return Candidate(REFUND, case_id, amount, currency, at(day, hour), f"ord_{order}", order, ref)


def payment(order: str, amount: int, day: int = 20, *, hour: int = 12) -> Candidate:
    return Candidate(PAYMENT, f"ord_{order}", amount, "CNY", at(day, hour), f"ord_{order}", order)


def line(amount: int, day: int = 20, *, memo: str = "", reference: str = "", currency: str = "CNY",
         line_no: int = 2, hour: int = 12) -> StatementLine:
    return StatementLine(line_no, at(day, hour), amount, currency, memo, "王小明", reference)


# --------------------------------------------------------------------------- reading
def test_reads_aliases_case_insensitively_with_bom_and_skips_empty_rows() -> None:
    text = ("\ufeffValue_Date,AMOUNT,Description,Payee,Transaction_ID,Currency\n"
            "2026-11-21,-59.90,退款 WEB-100001,王小明,RF-1,\n"
            ",,,,,\n"
            "\n"
            "2026-11-22 10:30:00,\"1,234.50\",货款,李四,,usd\n")
    parsed = parse_statement(text.encode("utf-8"))
    assert parsed.bad_rows == ()
    first, second = parsed.lines
    assert (first.line_no, first.amount, first.currency, first.memo, first.counterparty, first.reference) == (
        2, -5990, "CNY", "退款 WEB-100001", "王小明", "RF-1")
    assert first.booked_at == datetime(2026, 11, 20, 16, tzinfo=UTC)     # midnight in Shanghai
    assert (second.line_no, second.amount, second.currency) == (5, 123450, "USD")
    assert second.booked_at == datetime(2026, 11, 22, 2, 30, tzinfo=UTC)
    assert parsed.digest.startswith("sha256:")


def test_gb18030_file_with_chinese_headers() -> None:
    text = "交易日期,amount,摘要,备注,对方户名,流水号\n2026/11/21,-12.00,退款,订单 WEB-100001,张三,LS001\n"
    [only] = parse_statement(text.encode("gb18030")).lines
    assert (only.amount, only.memo, only.counterparty, only.reference) == (-1200, "退款 订单 WEB-100001", "张三",
                                                                          "LS001")
    assert only.booked_at == datetime(2026, 11, 20, 16, tzinfo=UTC)


def test_debit_and_credit_columns() -> None:
    text = ("date,debit,credit,memo,counterparty\n"
            "2026-11-21,12.30,,refund,x\n"
            "2026-11-21,,45.00,payment,y\n"
            "2026-11-21,1.00,2.00,both,z\n")
    parsed = parse_statement(text.encode())
    assert [ln.amount for ln in parsed.lines] == [-1230, 4500]
    assert [(b.line, b.field) for b in parsed.bad_rows] == [(4, "debit")]


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-21", datetime(2026, 11, 20, 16, tzinfo=UTC)),
    ("2026/11/21", datetime(2026, 11, 20, 16, tzinfo=UTC)),
    ("20261121", datetime(2026, 11, 20, 16, tzinfo=UTC)),
    ("2026-11-21 10:00:00", datetime(2026, 11, 21, 2, tzinfo=UTC)),
    ("2026/11/21 10:00", datetime(2026, 11, 21, 2, tzinfo=UTC)),
    ("2026-11-21T10:00:00+08:00", datetime(2026, 11, 21, 2, tzinfo=UTC)),
    ("2026-11-21T10:00:00.5Z", datetime(2026, 11, 21, 10, 0, 0, 500000, tzinfo=UTC)),
    ("2026-11-21T10:00:00-0500", datetime(2026, 11, 21, 15, tzinfo=UTC)),
])
def test_date_formats(text: str, expected: datetime) -> None:
    assert parse_booked_at(text, SHANGHAI) == expected


def test_naive_times_use_the_given_zone() -> None:
    [only] = parse_statement((HEADER + "2026-11-21 10:00:00,-1,x,y,\n").encode(), zone="Europe/London").lines
    assert only.booked_at == datetime(2026, 11, 21, 10, tzinfo=UTC)


def test_bad_rows_are_listed_with_file_lines_and_good_rows_kept() -> None:
    text = (HEADER
            + "2026-11-21,-10.00,ok,a,\n"            # 2
            + "21/11/2026,-10.00,bad date,a,\n"      # 3
            + "2026-02-30,-10.00,no such day,a,\n"   # 4
            + "2026-11-21,abc,bad amount,a,\n"       # 5
            + "2026-11-21,1.234,three decimals,a,\n"  # 6
            + '2026-11-21,-1.00,"two\nlines",a,\n'     # 7-8: numbered by its first line
            + ",-1.00,no date,a,\n"                  # 9
            + "2026-11-21,,no amount,a,\n"           # 10
            + "2026-11-21,0.00,zero,a,\n"            # 11
            + "2026-11-21,1.00,x,a,,surplus\n"       # 12
            + "2026-11-21,1.00,x,a,,\n")             # 13: an empty extra cell is harmless
    parsed = parse_statement(text.encode())
    assert [ln.line_no for ln in parsed.lines] == [2, 7, 13]
    assert parsed.lines[1].memo == "two lines"
    assert [(b.line, b.field) for b in parsed.bad_rows] == [
        (3, "date"), (4, "date"), (5, "amount"), (6, "amount"), (9, "date"), (10, "amount"), (11, "amount"),
        (12, "row")]
    assert "decimal places" in parsed.bad_rows[3].error
    assert parsed.bad_rows[4].error == "empty"


def test_currency_column_decides_the_decimals() -> None:
    text = "date,amount,memo,counterparty,currency\n2026-11-21,1500,x,y,JPY\n2026-11-21,1.5,x,y,JPY\n" \
           "2026-11-21,1,x,y,XYZ\n"
    parsed = parse_statement(text.encode())
    assert [(ln.amount, ln.currency) for ln in parsed.lines] == [(1500, "JPY")]
    assert [(b.line, b.field) for b in parsed.bad_rows] == [(3, "amount"), (4, "currency")]


@pytest.mark.parametrize(("text", "words"), [
    ("amount,memo,counterparty\n1,x,y\n", ["date or booked_at or value_date or 交易日期"]),
    ("date,memo\n2026-11-21,x\n", ["amount (or debit/credit)", "counterparty"]),
    ("", ["no header"]),
    ("\n\n", ["no header"]),
])
def test_missing_columns_name_what_is_missing(text: str, words: list[str]) -> None:
    with pytest.raises(InvalidStatement) as caught:
        parse_statement(text.encode())
    for word in words:
        assert word in caught.value.message


def test_neither_utf8_nor_gb18030_is_refused() -> None:
    with pytest.raises(InvalidStatement, match="UTF-8 or GB18030"):
        parse_statement(b"date,amount\n\xff\xff\xff\n")


def test_line_keys_are_stable_and_count_identical_rows() -> None:
    row = "2026-11-21,-10.00,refund  WEB-100001,a,\n"
    one = parse_statement((HEADER + row + row).encode())
    again = parse_statement(("\ufeff" + HEADER + row).encode())
    first, second = one.lines
    assert first.key != second.key                         # two equal transfers are both kept
    assert again.lines[0].key == first.key                 # the same row imported again is recognised
    gb = parse_statement((HEADER + row).encode("gb18030"))
    assert gb.lines[0].key == first.key


# --------------------------------------------------------------------------- matching
def test_reference_names_a_refund_ref_or_case_id() -> None:
    matcher = Matcher([refund("as_one", 5990, ref="2026112199001"), refund("as_two", 5990, day=2)])
    by_ref = matcher.match(line(-5990, day=25, memo="支付宝退款 2026112199001"))
    assert (by_ref.status, by_ref.rule, by_ref.matched and by_ref.matched.id) == (MATCHED, REFERENCE, "as_one")
    by_id = matcher.match(line(-5990, day=25, reference="as_two"))
    assert (by_id.status, by_id.rule, by_id.matched and by_id.matched.id) == (MATCHED, REFERENCE, "as_two")


def test_reference_must_match_exactly() -> None:
    matcher = Matcher([refund("as_one", 5990, ref="RF-100123", day=1)])
    assert matcher.match(line(-5990, memo="RF-1001234")).status == UNMATCHED
    assert matcher.match(line(-5990, memo="xRF-100123")).status == UNMATCHED


def test_reference_with_another_amount_is_ambiguous_with_that_candidate() -> None:
    matcher = Matcher([refund("as_one", 5990, ref="RF-100123")])
    result = matcher.match(line(-7000, reference="RF-100123"))
    assert (result.status, result.rule) == (AMBIGUOUS, REFERENCE)
    assert [c.id for c in result.candidates] == ["as_one"]
    assert "RF-100123" not in result.reason and "as_one (59.90)" in result.reason and "amount is 70.00" in result.reason


def test_order_number_in_memo() -> None:
    matcher = Matcher([refund("as_a", 1000, order="TB20261121001", day=1),
                       refund("as_b", 2500, order="TB20261121001", day=1),
                       refund("as_c", 1000, order="TB20261121002", day=1)])
    result = matcher.match(line(-2500, memo="退款/订单号TB20261121001。"))
    assert (result.status, result.rule, result.matched and result.matched.id) == (MATCHED, MEMO_ORDER, "as_b")
    # The order's refunds of another amount don't match: the rule falls through (to unmatched here).
    assert matcher.match(line(-9900, memo="TB20261121001")).status == UNMATCHED
    # Words of letters, digits and dashes, at least six long, edge dashes dropped.
    assert order_keys(line(-1, memo="订单a-WEB-1,ABCDE ABCDEF -TB-1234- WEB_100001")) == {
        "a-WEB-1", "ABCDEF", "TB-1234", "100001"}


def test_two_refunds_of_an_order_with_the_memo_amount_are_ambiguous() -> None:
    matcher = Matcher([refund("as_a", 1000, order="TB20261121001", day=1),
                       refund("as_b", 1000, order="TB20261121001", day=1)])
    result = matcher.match(line(-1000, memo="TB20261121001"))
    assert (result.status, result.rule, [c.id for c in result.candidates]) == (AMBIGUOUS, MEMO_ORDER,
                                                                               ["as_a", "as_b"])


@pytest.mark.parametrize(("off", "status"), [(0, MATCHED), (49, MATCHED), (50, MATCHED), (51, UNMATCHED),
                                             (-49, MATCHED), (-51, UNMATCHED)])
def test_amount_tolerance(off: int, status: str) -> None:
    matcher = Matcher([refund("as_one", 5990)], tolerance_minor=50)
    result = matcher.match(line(-(5990 + off)))
    assert result.status == status
    if status == MATCHED:
        assert result.rule == AMOUNT_DATE


def test_zero_tolerance_needs_the_exact_amount() -> None:
    assert Matcher([refund("as_one", 5990)], tolerance_minor=0).match(line(-5991)).status == UNMATCHED


@pytest.mark.parametrize(("line_day", "line_hour", "status"), [
    (23, 23, MATCHED),      # three calendar days later, late evening
    (17, 0, MATCHED),       # three days earlier, just after midnight
    (24, 0, UNMATCHED),     # four days later
    (16, 23, UNMATCHED),    # four days earlier
])
def test_date_window_counts_calendar_days_in_the_zone(line_day: int, line_hour: int, status: str) -> None:
    matcher = Matcher([refund("as_one", 5990, day=20, hour=0)], window_days=3)
    assert matcher.match(line(-5990, day=line_day, hour=line_hour)).status == status


def test_two_equal_refunds_on_one_day_are_ambiguous_with_candidates() -> None:
    matcher = Matcher([refund("as_a", 5990, order="WEB-100001"), refund("as_b", 5990, order="WEB-100002"),
                       refund("as_far", 5990, day=1)])
    result = matcher.match(line(-5990))
    assert (result.status, result.rule, result.candidate_count) == (AMBIGUOUS, AMOUNT_DATE, 2)
    shown = [c.to_dict() for c in result.candidates]
    assert [(c["id"], c["amount"], c["order_external_id"]) for c in shown] == [
        ("as_a", {"amount": 5990, "currency": "CNY"}, "WEB-100001"),
        ("as_b", {"amount": 5990, "currency": "CNY"}, "WEB-100002")]
    assert shown[0]["date"] == "2026-11-20T04:00:00.000000Z"
    # Ambiguous takes nothing: both are still offered.
    assert matcher.match(line(-5990)).candidate_count == 2


def test_ambiguous_lists_at_most_ten_closest_first() -> None:
    many = [refund(f"as_{i:02d}", 5990 + i, day=20) for i in range(15)]
    result = Matcher(many).match(line(-5990))
    assert result.candidate_count == 15 and len(result.candidates) == MAX_CANDIDATES
    assert [c.id for c in result.candidates][:3] == ["as_00", "as_01", "as_02"]


def test_unmatched_and_sides_and_currencies_dont_mix() -> None:
    matcher = Matcher([refund("as_one", 5990), payment("WEB-100009", 5990), refund("as_usd", 700, currency="USD")])
    assert matcher.match(line(-100)).status == UNMATCHED
    money_in = matcher.match(line(5990))
    assert (money_in.status, money_in.matched and money_in.matched.kind) == (MATCHED, PAYMENT)
    assert matcher.match(line(-700)).status == UNMATCHED                      # CNY line, USD refund
    assert matcher.match(line(-700, currency="USD")).status == MATCHED


def test_payments_match_by_reference_memo_and_amount() -> None:
    matcher = Matcher([payment("WEB-100001", 11980), payment("WEB-100002", 5000), payment("WEB-100003", 7700)])
    by_ref = matcher.match(line(11980, day=1, reference="WEB-100001"))
    assert (by_ref.rule, by_ref.matched and by_ref.matched.id) == (REFERENCE, "ord_WEB-100001")
    by_memo = matcher.match(line(5000, day=1, memo="货款 WEB-100002"))
    assert (by_memo.rule, by_memo.matched and by_memo.matched.id) == (MEMO_ORDER, "ord_WEB-100002")
    by_amount = matcher.match(line(7720, day=21))
    assert (by_amount.rule, by_amount.matched and by_amount.matched.id) == (AMOUNT_DATE, "ord_WEB-100003")
    wrong = matcher.match(line(100, reference="WEB-100001"))
    assert wrong.status == UNMATCHED                                          # taken above


def test_a_candidate_is_matched_once() -> None:
    matcher = Matcher([refund("as_one", 5990, ref="RF-100123")])
    assert matcher.match(line(-5990, reference="RF-100123")).status == MATCHED
    assert matcher.match(line(-5990, reference="RF-100123", line_no=3)).status == UNMATCHED
    assert matcher.match(line(-5990, line_no=4)).status == UNMATCHED


def test_rules_apply_in_order() -> None:
    # The amount/date rule alone would be ambiguous; the reference decides first.
    matcher = Matcher([refund("as_a", 5990, ref="RF-AAAAAA"), refund("as_b", 5990, ref="RF-BBBBBB")])
    result = matcher.match(line(-5990, memo="refund RF-BBBBBB"))
    assert (result.rule, result.matched and result.matched.id) == (REFERENCE, "as_b")
    assert matcher.match(line(-5990)).rule == AMOUNT_DATE


def test_matcher_is_fast_enough_to_build_for_large_candidate_sets() -> None:
    # Not a timing assertion: a smoke test that the indexes handle many candidates per amount.
    base = at(1)
    many = [Candidate(REFUND, f"as_{i}", 1000 + i % 500, "CNY", base + timedelta(hours=i % 700), "o", "WEB")
            for i in range(5000)]
    matcher = Matcher(many)
    results = [matcher.match(line(-(1000 + i % 500), day=1 + i % 28)) for i in range(500)]
    assert {r.status for r in results} <= {MATCHED, AMBIGUOUS, UNMATCHED}

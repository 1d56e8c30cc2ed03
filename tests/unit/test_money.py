"""Money: exact conversion from decimal strings, refusal of everything inexact, arithmetic."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderhub.domain.errors import CurrencyMismatch, DomainError, InvalidMoney, UnknownCurrency
from orderhub.domain.money import CURRENCY_EXPONENTS, MAX_MINOR_UNITS, Money, currency_exponent


@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("59.90", "CNY", 5990),
    ("59.9", "CNY", 5990),
    ("12", "CNY", 1200),
    ("0.01", "CNY", 1),
    ("0", "CNY", 0),
    ("0.00", "USD", 0),
    (" 12.30 ", "CNY", 1230),      # surrounding whitespace is not part of the number
    ("00012.30", "CNY", 1230),
    ("12.300000", "CNY", 1230),   # trailing zeros add no precision
    ("-0.05", "CNY", -5),
    ("+3", "CNY", 300),
    ("1500", "JPY", 1500),
    ("1500.0", "JPY", 1500),
    ("1.234", "KWD", 1234),
    ("0.005", "BHD", 5),
    ("1.2345", "CLF", 12345),
    ("92233720368547758.07", "CNY", MAX_MINOR_UNITS),
    # More digits than a float or a 28-digit decimal context holds: still exact.
    ("1.000000000000000000000000000000000000", "CNY", 100),
])
def test_parse_is_exact(text: str, currency: str, minor: int) -> None:
    assert Money.parse(text, currency) == Money(minor, currency)


def test_int_is_taken_as_major_units() -> None:
    assert Money.parse(12, "CNY") == Money(1200, "CNY")
    assert Money.parse(12, "JPY") == Money(12, "JPY")
    assert Money.parse(12, "KWD") == Money(12000, "KWD")


@pytest.mark.parametrize("value", [12.3, 0.1, 1.0, True, False, None, b"12.30", [1]])
def test_parse_refuses_floats_and_other_types(value: Any) -> None:
    with pytest.raises(InvalidMoney, match="decimal strings") as info:
        Money.parse(value, "CNY", field="lines[0].unit_price")
    assert info.value.field == "lines[0].unit_price"


@pytest.mark.parametrize(("text", "currency"), [
    ("1.234", "CNY"),
    ("59.901", "CNY"),
    ("0.001", "USD"),
    ("1.5", "JPY"),
    ("1.0001", "KWD"),
    # 31 significant digits: Decimal's default context would round this to 1.00 silently.
    ("1.00000000000000000000000000001", "CNY"),
])
def test_parse_refuses_more_decimals_than_the_currency_has(text: str, currency: str) -> None:
    with pytest.raises(InvalidMoney, match=rf"more than {currency_exponent(currency)} decimal places") as info:
        Money.parse(text, currency, field="discount")
    assert info.value.field == "discount"
    assert info.value.code == "invalid_money"


@pytest.mark.parametrize("text", [
    "", " ", "abc", "12,30", "12.30 CNY", "¥12.30", "1.2.3", ".", "-", "+", "--1", "1-",
    "NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf",
    "1e2", "1E+2", "1e999999999",   # exponent notation: exact in theory, unbounded in practice
    "1_000", "١٢.٣٠", "１２",        # digit grouping and non-ASCII digits
])
def test_parse_refuses_non_numbers(text: str) -> None:
    with pytest.raises(InvalidMoney, match="not a decimal amount") as info:
        Money.parse(text, "CNY", field="shipping_fee")
    assert info.value.field == "shipping_fee"


@pytest.mark.parametrize("text", ["92233720368547758.08", "-92233720368547758.08", "1" + "0" * 5000])
def test_parse_refuses_amounts_beyond_64_bit_minor_units(text: str) -> None:
    with pytest.raises(InvalidMoney, match="too large"):
        Money.parse(text, "CNY")


@pytest.mark.parametrize("currency", ["cny", "Cny", "XXX", "RMB", "", "CNY ", "usd", None, 156])
def test_unknown_or_lowercase_currency_is_refused(currency: Any) -> None:
    with pytest.raises(UnknownCurrency, match="ISO 4217") as info:
        Money.parse("1.00", currency)
    assert info.value.code == "unknown_currency"
    with pytest.raises(UnknownCurrency):
        Money(100, currency)
    with pytest.raises(UnknownCurrency) as info:
        currency_exponent(currency, field="lines[0].currency")
    assert info.value.field == "lines[0].currency"


def test_currency_exponents() -> None:
    assert (currency_exponent("CNY"), currency_exponent("JPY"), currency_exponent("KWD"),
            currency_exponent("CLF")) == (2, 0, 3, 4)
    assert all(code.isupper() and len(code) == 3 for code in CURRENCY_EXPONENTS)


@pytest.mark.parametrize("amount", [1.5, 100.0, "100", True, None])
def test_money_amount_must_be_int(amount: Any) -> None:
    with pytest.raises(InvalidMoney, match="integer number of minor units"):
        Money(amount, "CNY")


def test_arithmetic_in_one_currency() -> None:
    a, b = Money(5990, "CNY"), Money(1010, "CNY")
    assert a + b == Money(7000, "CNY")
    assert a - b == Money(4980, "CNY")
    assert b - a == Money(-4980, "CNY")
    assert (b - a).is_negative and not a.is_negative and not Money.zero("CNY").is_negative
    assert a * 3 == Money(17970, "CNY") == 3 * a
    assert -a == Money(-5990, "CNY")
    assert b < a and b <= a and a <= a and not a < a
    assert Money.zero("JPY") == Money(0, "JPY")
    assert Money.from_minor(1234, "KWD") == Money(1234, "KWD")
    assert a.to_dict() == {"amount": 5990, "currency": "CNY"}


@pytest.mark.parametrize("op", [
    lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a < b, lambda a, b: a <= b,
])
def test_combining_currencies_is_refused(op: Any) -> None:
    with pytest.raises(CurrencyMismatch, match="CNY with USD") as info:
        op(Money(100, "CNY"), Money(100, "USD"))
    assert isinstance(info.value, DomainError)


def test_money_is_not_combined_with_other_types() -> None:
    with pytest.raises(TypeError):
        Money(100, "CNY") + 1  # type: ignore[operator]
    for factor in (1.5, True, "2"):
        with pytest.raises(TypeError, match="integer"):
            Money(100, "CNY") * factor  # type: ignore[operator]


def test_same_amount_in_different_currencies_is_not_equal() -> None:
    assert Money(100, "CNY") != Money(100, "USD")


@pytest.mark.parametrize(("money", "text"), [
    (Money(5990, "CNY"), "59.90"),
    (Money(5, "CNY"), "0.05"),
    (Money(-5, "CNY"), "-0.05"),
    (Money(-1234, "CNY"), "-12.34"),
    (Money(0, "CNY"), "0.00"),
    (Money(1500, "JPY"), "1500"),
    (Money(-7, "JPY"), "-7"),
    (Money(1234, "KWD"), "1.234"),
    (Money(1, "KWD"), "0.001"),
    (Money(12345, "CLF"), "1.2345"),
    # Beyond the 28-digit default Decimal context: still every digit.
    (Money(10**40 + 1, "CNY"), "1" + "0" * 38 + ".01"),
])
def test_to_decimal_string(money: Money, text: str) -> None:
    assert money.to_decimal_string() == text


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(amount=st.integers(min_value=-MAX_MINOR_UNITS, max_value=MAX_MINOR_UNITS),
       currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)))
def test_parse_of_decimal_string_round_trips(amount: int, currency: str) -> None:
    money = Money(amount, currency)
    text = money.to_decimal_string()
    exponent = currency_exponent(currency)
    assert len(text.partition(".")[2]) == exponent
    assert Money.parse(text, currency) == money

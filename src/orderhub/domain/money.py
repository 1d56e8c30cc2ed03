"""Money: integer minor units plus an ISO 4217 currency. Never a float.

Amounts come in as decimal strings ("12.30") or integer minor units and are converted
exactly; an amount with more fraction digits than its currency has (``"1.234"`` CNY) is
rejected rather than rounded, because rounding money silently is how ledgers drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orderhub.domain.errors import CurrencyMismatch, InvalidMoney, UnknownCurrency

# Active ISO 4217 codes and their minor-unit exponents (ISO 4217 list one, 2024 edition).
# Codes not listed here default to 2 decimals; the exceptions are spelled out below.
_TWO_DECIMALS = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD "
    "FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD "
    "KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD "
    "NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP "
    "SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED "
    "VES WST XCD XCG YER ZAR ZMW ZWG"
).split()
_ZERO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND".split()
_FOUR_DECIMALS = "CLF UYW".split()

# Plain decimal notation with ASCII digits only. Decimal() would also take exponents ("1e9"),
# digit grouping ("1_000"), non-ASCII digits, NaN and Infinity, and rounds to 28 digits.
_DECIMAL_TEXT = re.compile(r"(?P<sign>[+-]?)(?P<whole>[0-9]*)(?:\.(?P<frac>[0-9]*))?")
# Minor units are stored as signed 64-bit integers.
MAX_MINOR_UNITS = 2**63 - 1

CURRENCY_EXPONENTS: dict[str, int] = {
    **{code: 2 for code in _TWO_DECIMALS},
    **{code: 0 for code in _ZERO_DECIMALS},
    **{code: 3 for code in _THREE_DECIMALS},
    **{code: 4 for code in _FOUR_DECIMALS},
}


def currency_exponent(code: str, *, field: str = "currency") -> int:
    """Return the number of minor-unit digits of ``code``; raise UnknownCurrency otherwise."""
    if not isinstance(code, str) or code not in CURRENCY_EXPONENTS:
        raise UnknownCurrency(
            f"{code!r} is not an ISO 4217 currency code (use an upper-case code such as CNY, USD, JPY)",
            field=field,
        )
    return CURRENCY_EXPONENTS[code]


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: ``amount`` minor units of ``currency`` (e.g. 1230 CNY = ¥12.30)."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        # bool is an int subclass and float is the enemy: refuse both explicitly.
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise InvalidMoney(f"amount must be an integer number of minor units, got {self.amount!r}")
        currency_exponent(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Zero in ``currency``."""
        return cls(0, currency)

    @classmethod
    def parse(cls, value: str | int, currency: str, *, field: str = "amount") -> Money:
        """Convert a decimal string (major units, ``"59.90"``) exactly into minor units.

        An ``int`` is taken as major units too (``12`` CNY = 1200 minor units). Floats are
        refused: they can't represent most decimal amounts exactly.
        """
        exponent = currency_exponent(currency)
        if isinstance(value, (bool, float)) or not isinstance(value, (str, int)):
            raise InvalidMoney(
                f"{field}: amounts are decimal strings like \"12.30\", not {type(value).__name__}",
                field=field,
            )
        text = str(value).strip()
        match = _DECIMAL_TEXT.fullmatch(text)
        if match is None or not (match["whole"] or match["frac"]):
            raise InvalidMoney(f"{field}: {value!r} is not a decimal amount (e.g. \"12.30\")", field=field)
        # Exact integer arithmetic on the digits: nothing is ever rounded.
        whole = match["whole"].lstrip("0")
        frac = (match["frac"] or "").rstrip("0")
        if len(frac) > exponent:
            raise InvalidMoney(
                f"{field}: {value!r} has more than {exponent} decimal places, which {currency} does not have",
                field=field,
            )
        if len(whole) + exponent > len(str(MAX_MINOR_UNITS)):
            raise InvalidMoney(f"{field}: {value!r} is too large", field=field)
        amount = int((whole or "0") + frac.ljust(exponent, "0"))
        if amount > MAX_MINOR_UNITS:
            raise InvalidMoney(f"{field}: {value!r} is too large", field=field)
        return cls(-amount if match["sign"] == "-" else amount, currency)

    @classmethod
    def from_minor(cls, amount: int, currency: str) -> Money:
        """Build from integer minor units (cents, fen)."""
        return cls(amount, currency)

    def to_decimal_string(self) -> str:
        """Render in major units with exactly the currency's number of decimals."""
        exponent = currency_exponent(self.currency)
        sign = "-" if self.amount < 0 else ""
        whole, frac = divmod(abs(self.amount), 10**exponent)
        return f"{sign}{whole}.{frac:0{exponent}d}" if exponent else f"{sign}{whole}"

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"can't combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"can't combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int):
            raise TypeError("Money can only be multiplied by an integer")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    @property
    def is_negative(self) -> bool:
        """True when the amount is below zero."""
        return self.amount < 0

    def to_dict(self) -> dict[str, int | str]:
        """The wire shape: ``{"amount": <minor units>, "currency": "CNY"}``."""
        return {"amount": self.amount, "currency": self.currency}

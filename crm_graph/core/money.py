"""Money: an exact amount with its ISO 4217 currency, and the rules for arithmetic and rounding.

Amounts are ``Decimal`` from the GraphQL input to the database column and back; a ``float`` is
refused wherever it could sneak in. Rounding happens in one place, ``round_amount``: to the
currency's minor units (2 for EUR, 0 for JPY, 3 for KWD), half away from zero ("commercial
rounding"), which is what invoices and tax authorities expect.

In the database an amount is a ``NUMERIC(19, 4)`` on PostgreSQL. SQLite has no decimal type (it
would store a float), so there the same column holds an integer count of ten-thousandths:
``SUM`` and comparisons stay exact in SQL, and the column type converts on the way in and out.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

ROUNDING = ROUND_HALF_UP

# Stored scale of amounts, quantities and percentages: four decimal places.
SCALE = 4
# Largest absolute amount accepted anywhere (a hundred billion). Together with SCALE this keeps
# sums of many rows far inside a 64-bit integer on SQLite.
MAX_AMOUNT = Decimal(10) ** 11

# Active ISO 4217 codes (currencies and fund codes) with their number of minor units. Precious
# metals, SDRs and the testing codes (XAU, XAG, XPD, XPT, XDR, XSU, XUA, XB*, XTS, XXX) have no
# minor units and are not used to price goods, so they are not accepted.
_TWO_DECIMALS = """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD
    CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP
    GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD
    MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP
    PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG
"""
_NO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"
_FOUR_DECIMALS = "CLF UYW"


def _table(*groups: tuple[str, int]) -> dict[str, int]:
    return {code: units for codes, units in groups for code in codes.split()}


_MINOR_UNITS = _table((_TWO_DECIMALS, 2), (_NO_DECIMALS, 0), (_THREE_DECIMALS, 3), (_FOUR_DECIMALS, 4))
CURRENCIES: frozenset[str] = frozenset(_MINOR_UNITS)


class InvalidCurrency(ValueError):
    """Not an ISO 4217 currency code."""


class CurrencyMismatch(ValueError):
    """Arithmetic between amounts of two currencies."""


def currency_code(value: Any) -> str:
    """The upper-cased ISO 4217 code, or ``InvalidCurrency``."""
    if not isinstance(value, str) or value.strip().upper() not in CURRENCIES:
        shown = value if isinstance(value, str) else type(value).__name__
        raise InvalidCurrency(f"{str(shown)[:16]!r} is not an ISO 4217 currency code (e.g. EUR, USD, JPY).")
    return value.strip().upper()


def minor_units(currency: str) -> int:
    return _MINOR_UNITS[currency]


def decimal(value: Any) -> Decimal:
    """An exact Decimal from a Decimal, an int or a numeric string. Floats are refused."""
    if isinstance(value, (bool, float)):
        raise TypeError("money and quantities are never floats; pass a Decimal or a string")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, (int, str)):
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a number") from None
    else:
        raise TypeError(f"expected a number, not {type(value).__name__}")
    if not number.is_finite():
        raise ValueError("the number must be finite")
    return number


def places(value: Decimal) -> int:
    """Number of decimal places written (``Decimal('1.50')`` has 2, ``Decimal('1E+2')`` has 0)."""
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def round_amount(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor units, half away from zero."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUNDING)


def percent_of(amount: Decimal, percent: Decimal, currency: str) -> Decimal:
    """``percent`` % of ``amount``, rounded to the currency."""
    return round_amount(amount * percent / 100, currency)


def display(amount: Decimal, currency: str) -> Decimal:
    """The amount with at least the currency's minor units and no trailing zeros beyond them:
    ``12.5 EUR -> 12.50``, ``0.01250 EUR -> 0.0125``, ``1500.0000 JPY -> 1500``."""
    minimum = minor_units(currency)
    normalized = amount.normalize()
    wanted = max(minimum, places(normalized))
    return amount.quantize(Decimal(1).scaleb(-wanted), rounding=ROUNDING)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of one currency. Arithmetic across currencies raises ``CurrencyMismatch``."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("Money.amount is a Decimal")
        if self.currency not in CURRENCIES:
            raise InvalidCurrency(f"{self.currency!r} is not an ISO 4217 currency code.")

    @classmethod
    def of(cls, amount: Any, currency: Any) -> Money:
        return cls(decimal(amount), currency_code(currency))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError("Money combines only with Money")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        return Money(self.amount * decimal(factor), self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def rounded(self) -> Money:
        return Money(round_amount(self.amount, self.currency), self.currency)

    def displayed(self) -> Money:
        return Money(display(self.amount, self.currency), self.currency)

    @property
    def is_zero(self) -> bool:
        return self.amount == 0

    def __str__(self) -> str:
        return f"{display(self.amount, self.currency)} {self.currency}"


# --- database columns ---------------------------------------------------------------------------


class ScaledInteger(TypeDecorator[Decimal]):
    """SQLite storage of a fixed-point number: an integer count of ``10**-scale`` units."""

    impl = sa.BigInteger
    cache_ok = True

    def __init__(self, scale: int = SCALE) -> None:
        super().__init__()
        self.scale = scale

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> int | None:
        if value is None:
            return None
        number = decimal(value).scaleb(self.scale).to_integral_value(rounding=ROUNDING)
        return int(number)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, float):  # only if someone wrote a float into the column by hand
            value = round(value)
        return Decimal(int(value)).scaleb(-self.scale)

    def process_literal_param(self, value: Any, dialect: sa.Dialect) -> str:
        bound = self.process_bind_param(value, dialect)
        return "NULL" if bound is None else str(bound)


def fixed_decimal(precision: int = 19, scale: int = SCALE) -> sa.types.TypeEngine[Decimal]:
    """``NUMERIC(precision, scale)``, stored as scaled integers on SQLite (see module docstring)."""
    return sa.Numeric(precision, scale, asdecimal=True).with_variant(ScaledInteger(scale), "sqlite")


AmountType = fixed_decimal(19, SCALE)
"""Column type of money amounts; the currency lives in a column of its own."""

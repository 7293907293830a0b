"""The Money value object: ISO 4217 codes, exact arithmetic, rounding to minor units."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crm_graph.core.money import (
    CurrencyMismatch,
    InvalidCurrency,
    Money,
    currency_code,
    display,
    percent_of,
    round_amount,
)


def test_currency_codes_are_iso_4217():
    assert currency_code(" eur ") == "EUR"
    assert currency_code("JPY") == "JPY"
    for bad in ("EURO", "XXX", "ABC", "", None, 978):
        with pytest.raises(InvalidCurrency):
            currency_code(bad)


def test_rounding_follows_the_currency_minor_units_half_up():
    assert round_amount(Decimal("2.345"), "EUR") == Decimal("2.35")
    assert round_amount(Decimal("2.344"), "EUR") == Decimal("2.34")
    assert round_amount(Decimal("1500.5"), "JPY") == Decimal(1501)
    assert round_amount(Decimal("1.2345"), "KWD") == Decimal("1.235")
    assert percent_of(Decimal("19.99"), Decimal(19), "EUR") == Decimal("3.80")


def test_display_keeps_minor_units_and_extra_precision_only_when_needed():
    assert str(display(Decimal("12.5"), "EUR")) == "12.50"
    assert str(display(Decimal("0.01250"), "EUR")) == "0.0125"
    assert str(display(Decimal("1500.0000"), "JPY")) == "1500"
    assert str(display(Decimal("1E+3"), "USD")) == "1000.00"


def test_arithmetic_is_exact_and_refuses_mixed_currencies_and_floats():
    total = Money.of("0.10", "EUR") + Money.of("0.20", "EUR")
    assert total == Money(Decimal("0.30"), "EUR")
    assert (Money.of("19.99", "EUR") * 3).rounded() == Money(Decimal("59.97"), "EUR")
    with pytest.raises(CurrencyMismatch):
        Money.of("1", "EUR") + Money.of("1", "USD")
    with pytest.raises(TypeError):
        Money.of(0.1, "EUR")
    with pytest.raises(TypeError):
        Money.of("1", "EUR") * 1.5
    with pytest.raises(ValueError):
        Money.of("NaN", "EUR")

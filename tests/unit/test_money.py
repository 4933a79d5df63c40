"""Money is integer minor units of one currency, and currencies are never mixed."""

from __future__ import annotations

import pytest

from ingest.money import Money, UnsupportedCurrency, normalize_currency


def test_currency_codes_are_accepted_in_any_case_and_returned_upper_case() -> None:
    assert normalize_currency("usd") == "USD"
    assert normalize_currency(" Jpy ") == "JPY"


def test_unknown_currencies_are_refused() -> None:
    with pytest.raises(UnsupportedCurrency):
        normalize_currency("XYZ")


def test_zero_decimal_currencies_print_unscaled() -> None:
    assert str(Money(1500, "JPY")) == "1500 JPY"
    assert str(Money(1500, "USD")) == "15.00 USD"
    assert str(Money(-5, "EUR")) == "-0.05 EUR"


def test_adding_two_currencies_is_a_bug() -> None:
    with pytest.raises(AssertionError):
        _ = Money(1, "USD") + Money(1, "EUR")


def test_floats_are_not_money() -> None:
    with pytest.raises(AssertionError):
        Money(10.0, "USD")  # type: ignore[arg-type]

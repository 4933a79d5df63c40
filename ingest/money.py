"""Money as integer minor units of an ISO 4217 currency; never a float.

``CURRENCY_EXPONENTS`` is the list of supported currencies with the number of decimal places of
their minor unit. Zero-decimal currencies (JPY, KRW, ...) take amounts in whole units, unscaled.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_AMOUNT_MINOR = 99_999_999
"""Largest amount accepted on any payment, capture or refund, in minor units."""

CURRENCY_EXPONENTS: dict[str, int] = {
    "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2, "CZK": 2, "DKK": 2,
    "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "ISK": 0,
    "JPY": 0, "KRW": 0, "MXN": 2, "MYR": 2, "NOK": 2, "NZD": 2, "PHP": 2, "PLN": 2,
    "RON": 2, "SEK": 2, "SGD": 2, "THB": 2, "TRY": 2, "TWD": 2, "UGX": 0, "USD": 2,
    "VND": 0, "XAF": 0, "XOF": 0, "ZAR": 2,
}  # fmt: skip
ZERO_DECIMAL_CURRENCIES = frozenset(c for c, e in CURRENCY_EXPONENTS.items() if e == 0)


class UnsupportedCurrency(ValueError):
    """The code is not an ISO 4217 currency payflow accepts."""


def normalize_currency(code: str) -> str:
    """Upper-case ISO 4217 code for ``code`` (accepted in any case) or UnsupportedCurrency."""
    normalized = code.strip().upper()
    if normalized not in CURRENCY_EXPONENTS:
        raise UnsupportedCurrency(f"unsupported currency: {code!r}")
    return normalized


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in integer minor units of one currency (cents for USD, yen for JPY)."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        assert isinstance(self.amount_minor, int) and not isinstance(self.amount_minor, bool)
        assert self.currency in CURRENCY_EXPONENTS, self.currency

    def __add__(self, other: Money) -> Money:
        assert other.currency == self.currency, "never mix currencies"
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        assert other.currency == self.currency, "never mix currencies"
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __str__(self) -> str:
        exponent = CURRENCY_EXPONENTS[self.currency]
        if exponent == 0:
            return f"{self.amount_minor} {self.currency}"
        sign = "-" if self.amount_minor < 0 else ""
        whole, minor = divmod(abs(self.amount_minor), 10**exponent)
        return f"{sign}{whole}.{minor:0{exponent}d} {self.currency}"

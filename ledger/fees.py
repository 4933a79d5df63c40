"""Processing fees: a percentage plus a fixed amount per payment, per merchant and currency.

Default pricing: 2.9 % + 30 minor units (0.30 in two-decimal currencies), and 2.9 % + 0 in
currencies without minor units (JPY, KRW, ...). A merchant may have its own price per currency
(table ``merchant_pricing``).

Policy on refunds: fees are returned pro rata. A refund of R out of a captured C returns
``fee * R / C`` rounded down, except that the refund which completes the full refund returns
whatever fee remains, so a fully refunded payment has earned no fee.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.money import CURRENCY_EXPONENTS


@dataclass(frozen=True, slots=True)
class Pricing:
    percent_bps: int
    """Basis points of the captured amount (290 = 2.9 %)."""
    fixed_minor: int

    def __post_init__(self) -> None:
        assert 0 <= self.percent_bps <= 10_000 and self.fixed_minor >= 0


def default_pricing(currency: str) -> Pricing:
    return Pricing(percent_bps=290, fixed_minor=30 if CURRENCY_EXPONENTS[currency] else 0)


def capture_fee(amount: int, pricing: Pricing) -> int:
    """The fee on capturing ``amount``: rounded half up, never more than the amount."""
    assert amount > 0
    percent = (amount * pricing.percent_bps + 5_000) // 10_000
    return min(amount, percent + pricing.fixed_minor)


def refund_fee_return(
    fee_charged: int, fee_returned: int, captured: int, refunded_before: int, refund: int
) -> int:
    """The part of the fee returned with a refund of ``refund`` (pro rata, remainder last)."""
    assert 0 < refund <= captured - refunded_before
    if refunded_before + refund == captured:
        return fee_charged - fee_returned
    share = fee_charged * refund // captured
    return min(share, fee_charged - fee_returned)

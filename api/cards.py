"""Card number checks and the token summary: pure functions, no I/O.

The full number (PAN) enters here and leaves only as AES-GCM ciphertext (``api.vault``) and as
the summary: brand, funding, last4, expiry and a keyed fingerprint (HMAC-SHA256), which lets
risk features follow a card without ever seeing its number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ingest.sandbox import card_fingerprint

# (brand, prefixes as (low, high) ranges over the first digits, valid lengths, CVC length)
_BRANDS: tuple[tuple[str, tuple[tuple[str, str], ...], tuple[int, ...], int], ...] = (
    ("amex", (("34", "34"), ("37", "37")), (15,), 4),
    ("visa", (("4", "4"),), (13, 16, 19), 3),
    ("mastercard", (("51", "55"), ("2221", "2720")), (16,), 3),
    ("discover", (("6011", "6011"), ("644", "649"), ("65", "65")), (16, 19), 3),
    ("jcb", (("3528", "3589"),), (16, 17, 18, 19), 3),
    ("diners", (("300", "305"), ("36", "36"), ("38", "39")), (14, 16), 3),
    ("unionpay", (("62", "62"),), (16, 17, 18, 19), 3),
)

# Funding by BIN range, for the sandbox: the well-known test ranges are debit or prepaid.
_DEBIT_PREFIXES = ("400005", "520082", "555555444")
_PREPAID_PREFIXES = ("510510",)


class CardError(ValueError):
    """A card that cannot be accepted; ``param`` names the offending field."""

    def __init__(self, message: str, param: str, code: str = "invalid_card") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@dataclass(frozen=True, slots=True)
class CheckedCard:
    number: str
    brand: str
    funding: str
    exp_month: int
    exp_year: int

    @property
    def last4(self) -> str:
        return self.number[-4:]


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def brand_of(number: str) -> tuple[str, tuple[int, ...], int]:
    """(brand, valid lengths, CVC length) from the number's leading digits."""
    for brand, ranges, lengths, cvc_length in _BRANDS:
        for low, high in ranges:
            head = number[: len(low)]
            if len(head) == len(low) and low <= head <= high:
                return brand, lengths, cvc_length
    return "unknown", tuple(range(12, 20)), 3


def funding_of(number: str) -> str:
    if number.startswith(_PREPAID_PREFIXES):
        return "prepaid"
    if number.startswith(_DEBIT_PREFIXES):
        return "debit"
    return "credit"


def check_card(number: str, exp_month: int, exp_year: int, cvc: str, today: date) -> CheckedCard:
    """Validate a card as merchants send it; raise CardError naming the field at fault."""
    digits = number.replace(" ", "").replace("-", "")
    if not luhn_valid(digits):
        raise CardError("The card number is not a valid card number.", "number",
                        "incorrect_number")
    brand, lengths, cvc_length = brand_of(digits)
    if len(digits) not in lengths:
        raise CardError(f"A {brand} card number has {lengths} digits.", "number",
                        "incorrect_number")
    if not 1 <= exp_month <= 12:
        raise CardError("The expiry month must be 1 to 12.", "exp_month", "invalid_expiry_month")
    if (exp_year, exp_month) < (today.year, today.month) or exp_year > today.year + 50:
        raise CardError("The card has expired.", "exp_year", "expired_card")
    if not (cvc.isdigit() and len(cvc) == cvc_length):
        raise CardError(f"The CVC must be {cvc_length} digits.", "cvc", "invalid_cvc")
    return CheckedCard(digits, brand, funding_of(digits), exp_month, exp_year)


def fingerprint(number: str, key: bytes) -> str:
    """Keyed fingerprint of a card number: same card, same fingerprint; reveals nothing."""
    return card_fingerprint(number, key)

"""Test card numbers: a fresh, valid (Luhn) card per call, so risk features built up by other
tests on the well-known test numbers cannot change what a test sees."""

from __future__ import annotations

import random


def fresh_card_number(prefix: str = "4", length: int = 16) -> str:
    digits = [int(d) for d in prefix] + [random.randrange(10)
                                         for _ in range(length - len(prefix) - 1)]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 0:  # doubled: these sit right before the check digit's position
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)

"""Synthetic payment traffic: a seeded, reproducible stream of API request bodies.

The foundation's trickle for ``payflow demo``: a few customers with their own cards, ordinary
amounts, and now and then one of the sandbox's test cards (declines, the fraud card).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

# Visa test numbers that approve, and the sandbox's outcome cards.
APPROVING_CARDS = ("4242424242424242", "4000056655665556", "5555555555554444", "378282246310005")
DECLINING_CARDS = ("4000000000000002", "4000000000009995", "4100000000000019")
CURRENCIES = ("USD", "USD", "USD", "EUR", "GBP", "JPY")


@dataclass
class TrafficSimulator:
    seed: int = 7
    decline_share: float = 0.05

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._count = 0

    def next_payment(self) -> dict[str, Any]:
        """The JSON body of the next ``POST /v1/payments``."""
        rng = self._rng
        self._count += 1
        number = rng.choice(
            DECLINING_CARDS if rng.random() < self.decline_share else APPROVING_CARDS
        )
        currency = rng.choice(CURRENCIES)
        amount = max(50, int(rng.lognormvariate(8.0, 1.0)))  # median ~30.00
        if currency == "JPY":
            amount = max(100, amount // 100 * 10)
        return {
            "amount": min(amount, 5_000_000),
            "currency": currency,
            "payment_method": {
                "type": "card",
                "card": {
                    "number": number,
                    "exp_month": rng.randint(1, 12),
                    "exp_year": 2030 + rng.randint(0, 5),
                    "cvc": "1234" if number.startswith("37") else "123",
                },
            },
            "description": f"Demo order #{self._count}",
            "customer": {"id": f"cus_demo_{rng.randint(1, 50)}"},
            "metadata": {"source": "payflow-demo"},
        }

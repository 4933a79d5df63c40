"""The sandbox's test cards: well-known numbers whose outcome is fixed, recognised by their
keyed fingerprint (the number itself never travels past the API).

| number              | outcome                                                        |
|---------------------|----------------------------------------------------------------|
| 4242 4242 4242 4242 | approves                                                       |
| 4000 0000 0000 0002 | issuer declines: ``generic_decline``                          |
| 4000 0000 0000 9995 | issuer declines: ``insufficient_funds``                       |
| 4100 0000 0000 0019 | risk blocks it: ``fraudulent``, score >= 90, level high        |
| 4000 0000 0000 0259 | approves, and is disputed shortly after capture               |

These outcomes hold whatever the card's velocity, so integrations test deterministically; risk
still scores and flags them. Every other valid number approves unless risk says no.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from enum import StrEnum


class SandboxCard(StrEnum):
    APPROVE = "4242424242424242"
    GENERIC_DECLINE = "4000000000000002"
    INSUFFICIENT_FUNDS = "4000000000009995"
    ALWAYS_BLOCKED = "4100000000000019"
    DISPUTED = "4000000000000259"


ISSUER_DECLINES: dict[SandboxCard, str] = {
    SandboxCard.GENERIC_DECLINE: "generic_decline",
    SandboxCard.INSUFFICIENT_FUNDS: "insufficient_funds",
}
BLOCKED_SCORE = 95


def card_fingerprint(number: str, key: bytes) -> str:
    """Keyed fingerprint of a card number (HMAC-SHA256, 32 hex characters)."""
    return hmac.new(key, number.encode(), hashlib.sha256).hexdigest()[:32]


@functools.cache
def _fingerprints(key: bytes) -> dict[str, SandboxCard]:
    return {card_fingerprint(card.value, key): card for card in SandboxCard}


def sandbox_card_for(fingerprint: str | None, key: bytes) -> SandboxCard | None:
    """The test card with this fingerprint, or None for any other card."""
    if fingerprint is None:
        return None
    return _fingerprints(key).get(fingerprint)


def issuer_decline_code(fingerprint: str | None, key: bytes) -> str | None:
    """The sandbox issuer's decline code for this card, or None when it approves."""
    card = sandbox_card_for(fingerprint, key)
    return ISSUER_DECLINES.get(card) if card else None

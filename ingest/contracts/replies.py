"""What the ledger tells a waiting API instance (over Redis, not Kafka) once it has committed.

``correlation_id`` is the payment id for a new payment and the command's message id for a
capture, void, refund or dispute. Exactly one of ``transaction`` and ``error_code`` is set.
"""

from __future__ import annotations

from ingest.contracts.base import Contract
from ingest.contracts.payments import Transaction


class CommandOutcome(Contract):
    correlation_id: str
    transaction: Transaction | None = None
    error_code: str | None = None
    """``invalid_state``, ``amount_exceeds_authorized`` or ``amount_exceeds_captured``."""
    error_message: str | None = None

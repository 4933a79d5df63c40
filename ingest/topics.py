"""The topic catalog: every Kafka topic payflow uses, with its key, partitions and retention.

This is the one place topic names live. Processes ask ``Topic.name_for(prefix)`` for the
physical name, so tests can run isolated under a unique prefix on a shared broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DAY_MS = 24 * 60 * 60 * 1000


class Visibility(StrEnum):
    PUBLIC = "public"
    """Other teams consume it; its schemas are a versioned contract."""
    INTERNAL = "internal"
    """Only payflow's own processes read it; it may change with the code."""


@dataclass(frozen=True, slots=True)
class Topic:
    """One Kafka topic: what it carries, how it is keyed (the ordering guarantee) and kept."""

    name: str
    key: str
    """The message key, and so the unit of ordering: one key's messages stay in order."""
    description: str
    visibility: Visibility = Visibility.INTERNAL
    partitions: int = 6
    retention_ms: int = 7 * DAY_MS
    compacted: bool = False

    def name_for(self, prefix: str) -> str:
        return f"{prefix}{self.name}"

    def config(self) -> dict[str, str]:
        """Topic-level configuration for the admin client."""
        return {
            "cleanup.policy": "compact" if self.compacted else "delete",
            "retention.ms": str(self.retention_ms),
        }


PAYMENT_REQUESTS = Topic(
    name="payments.requests",
    key="payment id",
    description="New payments accepted by the API, tokenized, awaiting a risk decision.",
)
PAYMENT_DECISIONS = Topic(
    name="payments.decisions",
    key="payment id",
    description="The risk engine's decision for each request, with score, flags and features.",
    visibility=Visibility.PUBLIC,
    retention_ms=30 * DAY_MS,
)
PAYMENT_COMMANDS = Topic(
    name="payments.commands",
    key="payment id",
    description="Capture, void, refund and dispute commands from the API for the ledger.",
)
PAYMENT_EVENTS = Topic(
    name="payments.events",
    key="payment id",
    description="Every committed state change of a payment, in order per payment.",
    visibility=Visibility.PUBLIC,
    retention_ms=30 * DAY_MS,
)
PAYOUTS = Topic(
    name="payouts",
    key="merchant id",
    description="Payouts created and paid by the daily settlement, in order per merchant.",
    visibility=Visibility.PUBLIC,
    partitions=3,
    retention_ms=365 * DAY_MS,
)
DEAD_LETTERS = Topic(
    name="payflow.deadletter",
    key="the original message's key",
    description="Messages a consumer could not process, with the reason in the headers.",
    partitions=1,
    retention_ms=30 * DAY_MS,
)

CATALOG: tuple[Topic, ...] = (
    PAYMENT_REQUESTS,
    PAYMENT_DECISIONS,
    PAYMENT_COMMANDS,
    PAYMENT_EVENTS,
    PAYOUTS,
    DEAD_LETTERS,
)

"""The topic catalog: every Kafka topic payflow uses, with its key, partitions and retention.

This is the one place topic names live. Processes ask ``Topic.name_for(prefix)`` for the
physical name, so tests can run isolated under a unique prefix on a shared broker. It is also
the one place a dead letter's shape lives (``dead_letter``): every consumer sends the message it
could not process to ``payflow.deadletter`` unchanged, with the same headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

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

# --- The risk engine's internal repartition topics (streams/): each carries a payment being
# scored (and, for merchants, fraud labels) keyed by the entity whose features come next.
RISK_CARDS = Topic(
    name="risk.cards",
    key="card fingerprint",
    description="Payments being scored, keyed by card: the card-features stage.",
    retention_ms=1 * DAY_MS,
)
RISK_ORIGINS = Topic(
    name="risk.origins",
    key="ip:<address> or device:<id>",
    description="Payments being scored, keyed by network origin: the card-testing stage.",
    retention_ms=1 * DAY_MS,
)
RISK_CUSTOMERS = Topic(
    name="risk.customers",
    key="merchant id/customer id (customer ids are per merchant)",
    description="Payments being scored, keyed by customer: the customer-features stage.",
    retention_ms=1 * DAY_MS,
)
RISK_MERCHANTS = Topic(
    name="risk.merchants",
    key="merchant id",
    description="Payments being scored and fraud labels, keyed by merchant: the deciding stage.",
    retention_ms=1 * DAY_MS,
)
FEATURE_LOG = Topic(
    name="risk.feature-log",
    key="payment id",
    description="Every decision with its feature vector and model version (training data).",
    retention_ms=30 * DAY_MS,
)
MODEL_PROMOTIONS = Topic(
    name="models.promotions",
    key="model name",
    description="A fraud model version was promoted or rolled back; every worker reloads.",
    partitions=1,
    retention_ms=365 * DAY_MS,
)


def _changelog(table: str, key: str) -> Topic:
    """The changelog of a stream-worker table (Faust names it ``<app id>-<table>-changelog``)."""
    return Topic(
        name=f"payflow-streams-{table}-changelog",
        key=key,
        description=f"Changelog of the risk engine's {table} table (restores it on restart).",
        retention_ms=-1,
        compacted=True,
    )


RISK_TABLE_CHANGELOGS = (
    _changelog("card-state", "card fingerprint"),
    _changelog("origin-state", "network origin"),
    _changelog("customer-state", "customer id"),
    _changelog("merchant-state", "merchant id"),
)

CATALOG: tuple[Topic, ...] = (
    PAYMENT_REQUESTS,
    PAYMENT_DECISIONS,
    PAYMENT_COMMANDS,
    PAYMENT_EVENTS,
    PAYOUTS,
    DEAD_LETTERS,
    RISK_CARDS,
    RISK_ORIGINS,
    RISK_CUSTOMERS,
    RISK_MERCHANTS,
    FEATURE_LOG,
    MODEL_PROMOTIONS,
    *RISK_TABLE_CHANGELOGS,
)


# --- dead letters ---------------------------------------------------------------------------

DEAD_LETTER_HEADERS = ("reason", "topic", "partition", "offset", "consumer", "time")
"""The headers of every dead letter: why the message failed, where it was read (physical topic,
partition, offset), which consumer gave up on it, and when (ISO 8601, UTC)."""
MAX_REASON_CHARS = 1000


class SourceMessage(Protocol):
    """A consumed message, as aiokafka's ``ConsumerRecord`` and Faust's ``Message`` both are."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message to send to the dead-letter topic: the original key and value, and headers."""

    topic: str
    """The physical dead-letter topic (``payflow.deadletter`` with the deployment's prefix)."""
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def dead_letter(prefix: str, message: SourceMessage, reason: str, consumer: str,
                value: bytes | None = None, now: datetime | None = None) -> DeadLetter:
    """The dead letter of ``message``, which ``consumer`` (its consumer group or process name)
    could not process for ``reason``; ``value`` replaces the message's value when only one item
    of it failed (a stage bundle's item, say)."""
    assert consumer and reason, (consumer, reason)
    at = (now or datetime.now(UTC)).isoformat(timespec="milliseconds")
    fields = (reason[:MAX_REASON_CHARS], message.topic, str(message.partition),
              str(message.offset), consumer, at)
    headers = [(name, text.encode()) for name, text in zip(DEAD_LETTER_HEADERS, fields,
                                                              strict=True)]
    body = value if value is not None else message.value
    return DeadLetter(DEAD_LETTERS.name_for(prefix), message.key, body or b"", headers)

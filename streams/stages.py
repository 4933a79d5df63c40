"""The work of each risk-engine stage on one micro-batch, apart from Kafka I/O.

A payment's features come from four entities, each keyed differently, so the engine is a chain
of repartitions: ``route`` re-keys requests by card; the card, origin and customer stages each
read and update their entity's record and forward the case keyed by the next entity (skipping
an origin or customer the payment does not have); the merchant stage adds the merchant's
features, applies fraud labels, and hands the complete cases to the decision engine.

A batch's table reads and writes go through ``BatchRecords``: it keeps each key's record for
the rest of the batch (so a burst on one key costs one table write, not one per event) and
writes it under the event that carried the key (the take() partition trap: streams.context).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ingest.contracts import UndecodableMessage, decode_request
from ingest.topics import (
    DEAD_LETTERS,
    RISK_CARDS,
    RISK_CUSTOMERS,
    RISK_MERCHANTS,
    RISK_ORIGINS,
)
from models.facts import LabelFacts, PaymentFacts, payment_facts
from models.features import (
    ABSENT_CUSTOMER,
    ABSENT_ORIGIN,
    Record,
    Step,
    merchant_features,
    merchant_label,
    payment_features,
)
from streams.cases import RiskCase, decode
from streams.context import event_context

Outgoing = tuple[str, bytes | None, bytes, dict[str, bytes] | None]
"""(topic, key, value, headers) to send."""
ChangelogWrite = tuple[int, bytes, bytes]
"""(partition, key, value) of a table's changelog message."""


@dataclass(frozen=True)
class StageTopics:
    """Physical topic names (with the deployment's prefix)."""

    cards: str
    origins: str
    customers: str
    merchants: str
    dead_letters: str

    @classmethod
    def for_prefix(cls, prefix: str) -> StageTopics:
        return cls(RISK_CARDS.name_for(prefix), RISK_ORIGINS.name_for(prefix),
                   RISK_CUSTOMERS.name_for(prefix), RISK_MERCHANTS.name_for(prefix),
                   DEAD_LETTERS.name_for(prefix))

    def dead_letter(self, event: Any, reason: str) -> Outgoing:
        headers = {"reason": reason[:1000].encode(), "topic": event.message.topic.encode()}
        return self.dead_letters, event.key, event.value or b"", headers


class BatchRecords:
    """One table's records for one batch: read once, written once per key, each under the
    event that carried its key.

    ``flush`` writes the local store directly and returns the changelog messages for the caller
    to send with the batch's other messages (measured: Faust's own path queues each table write
    and sends it alone, which throttles a busy stage; see performance-facts.md).
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self.records: dict[str, tuple[Any, Record]] = {}

    def get(self, key: str, event: Any) -> Record | None:
        if key in self.records:
            return self.records[key][1]
        with event_context(event):
            raw = self.table.get(key.encode())
        return None if raw is None else list(orjson.loads(raw))

    def put(self, key: str, event: Any, record: Record) -> None:
        self.records[key] = (event, record)

    def flush(self) -> list[ChangelogWrite]:
        """Write every record to the local store; the changelog messages to send."""
        writes = []
        for key, (event, record) in self.records.items():
            raw_key, value = key.encode(), orjson.dumps(record)
            with event_context(event):
                self.table.data[raw_key] = value
            writes.append((event.message.partition, raw_key, value))
        self.records.clear()
        return writes


def forward(case: RiskCase, after: str, topics: StageTopics) -> Outgoing:
    """The case keyed for the next stage after ``after`` that applies to this payment."""
    facts = case.facts
    if after == "route":
        return topics.cards, facts.card.encode(), case.encode(), None
    origin = facts.origin
    if after == "cards" and origin is not None:
        return topics.origins, origin.encode(), case.encode(), None
    if after == "cards":
        case.features.update(ABSENT_ORIGIN)
    if after in ("cards", "origins") and facts.customer_id is not None:
        return topics.customers, facts.customer_id.encode(), case.encode(), None
    if after in ("cards", "origins"):
        case.features.update(ABSENT_CUSTOMER)
    return topics.merchants, facts.merchant_id.encode(), case.encode(), None


def route_batch(events: Sequence[Any], topics: StageTopics) -> list[Outgoing]:
    """Decode requests (poison to the dead letters) and re-key them by card."""
    out: list[Outgoing] = []
    for event in events:
        try:
            message = decode_request(event.value)
        except UndecodableMessage as error:
            out.append(topics.dead_letter(event, str(error)))
            continue
        facts = payment_facts(message)
        out.append(forward(RiskCase(facts, message.data.reply_to, payment_features(facts)),
                           "route", topics))
    return out


def entity_batch(events: Sequence[Any], records: BatchRecords, step: Step, stage: str,
                 key_of: Callable[[PaymentFacts], str | None],
                 topics: StageTopics) -> tuple[list[Outgoing], list[ChangelogWrite]]:
    """Run one entity's feature step for every case of the batch and forward each; the
    forwarded cases and the table's changelog messages."""
    out: list[Outgoing] = []
    for event in events:
        case = _case(event, topics, out)
        if case is None:
            continue
        key = key_of(case.facts)
        assert key is not None, (stage, case.facts.payment_id)
        features, record = step(records.get(key, event), case.facts)
        records.put(key, event, record)
        case.features.update(features)
        out.append(forward(case, stage, topics))
    return out, records.flush()


def merchant_batch(events: Sequence[Any], records: BatchRecords, topics: StageTopics,
                   out: list[Outgoing]) -> tuple[list[RiskCase], list[ChangelogWrite]]:
    """Apply labels and add merchant features; the complete cases, in order, and the table's
    changelog messages."""
    complete: list[RiskCase] = []
    for event in events:
        try:
            item = decode(event.value)
        except ValueError as error:
            out.append(topics.dead_letter(event, str(error)))
            continue
        key = item.merchant_id if isinstance(item, LabelFacts) else item.facts.merchant_id
        if isinstance(item, LabelFacts):
            records.put(key, event, merchant_label(records.get(key, event), item))
            continue
        features, record = merchant_features(records.get(key, event), item.facts)
        records.put(key, event, record)
        item.features.update(features)
        complete.append(item)
    return complete, records.flush()


def _case(event: Any, topics: StageTopics, out: list[Outgoing]) -> RiskCase | None:
    try:
        item = decode(event.value)
    except ValueError as error:
        out.append(topics.dead_letter(event, str(error)))
        return None
    if not isinstance(item, RiskCase):
        out.append(topics.dead_letter(event, "a label on a payment stage"))
        return None
    return item

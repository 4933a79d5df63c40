"""What travels between the risk engine's stages: payments being scored and fraud labels,
bundled.

A case is the payment's facts, where the waiting API listens, and the features gathered so far;
each stage adds its entity's features and forwards the case, keyed by the next entity. A label
is a dispute's fraud label on its way to the merchant stage.

Stages send **bundles**: every item of a micro-batch bound for the same partition of the next
stage travels in one Kafka message (``["bundle", item, item, ...]``), sent to the partition the
default partitioner gives the items' keys (``streams.stages.partition_of``). A message costs
Faust about 100 µs to consume whatever its size, so a bundle of a hundred cases costs one case's
overhead; under light load a bundle holds one case and nothing waits for it to fill. The
table of the stage that reads a bundle is read and written in the bundle's partition, which is
each item's own. A single item (a label from ``streams.side_consumers``) is a bundle of one.

Items are compact JSON lists (orjson), since only payflow's own stages read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from models.facts import LabelFacts, PaymentFacts
from models.features import Features

CASE, LABEL, BUNDLE = "case", "label", "bundle"


@dataclass
class RiskCase:
    facts: PaymentFacts
    reply_to: str | None
    features: Features = field(default_factory=dict)

    def encode(self) -> bytes:
        return orjson.dumps(self.to_list())

    def to_list(self) -> list[Any]:
        f = self.facts
        return [CASE, f.payment_id, f.time_seconds, f.merchant_id, f.amount_minor, f.currency,
                f.card, f.customer_id, f.ip_address, f.device_id, f.country, self.reply_to,
                self.features]

    @property
    def requested_at(self) -> datetime:
        return datetime.fromtimestamp(self.facts.time_seconds, UTC)


def label_list(label: LabelFacts) -> list[Any]:
    return [LABEL, label.payment_id, label.time_seconds, label.merchant_id,
            label.payment_time_seconds]


def encode_label(label: LabelFacts) -> bytes:
    return orjson.dumps(label_list(label))


def encode_bundle(items: list[list[Any]]) -> bytes:
    """One message carrying ``items`` (each a case's or label's list), in order."""
    return orjson.dumps([BUNDLE, *items])


def decode(raw: bytes | None) -> RiskCase | LabelFacts:
    """A single case or label; ValueError (or a subclass) on anything else."""
    items = decode_bundle(raw)
    if len(items) != 1:
        raise ValueError(f"expected one stage item, got {len(items)}")
    return items[0]


def decode_bundle(raw: bytes | None) -> list[RiskCase | LabelFacts]:
    """The items of a bundle (or of a single item's message), in order; ValueError (or a
    subclass) if the message or any of its items is malformed."""
    if raw is None:
        raise ValueError("empty stage message")
    message = orjson.loads(raw)
    if not isinstance(message, list) or not message:
        raise ValueError("stage message is not a tagged list")
    if message[0] == BUNDLE:
        return [_item(item) for item in message[1:]]
    return [_item(message)]


def _item(item: Any) -> RiskCase | LabelFacts:
    if not isinstance(item, list) or not item:
        raise ValueError("stage item is not a tagged list")
    if item[0] == LABEL and len(item) == 5:
        return LabelFacts(str(item[1]), float(item[2]), str(item[3]), float(item[4]))
    if item[0] != CASE or len(item) != 13:
        raise ValueError(f"unknown stage item tag {item[0]!r}")
    facts = PaymentFacts(str(item[1]), float(item[2]), str(item[3]), int(item[4]), str(item[5]),
                         str(item[6]), item[7], item[8], item[9], item[10])
    return RiskCase(facts, item[11], dict(item[12]))

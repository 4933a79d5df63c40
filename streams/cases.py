"""What travels between the risk engine's stages: a payment being scored, or a fraud label.

A case is the payment's facts, where the waiting API listens, and the features gathered so far;
each stage adds its entity's features and forwards the case, keyed by the next entity. Encoded
as a compact JSON list (orjson): this crosses Kafka four times per payment, so it stays small
and cheap to parse, and only payflow's own stages read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from models.facts import LabelFacts, PaymentFacts
from models.features import Features

CASE, LABEL = "case", "label"


@dataclass
class RiskCase:
    facts: PaymentFacts
    reply_to: str | None
    features: Features = field(default_factory=dict)

    def encode(self) -> bytes:
        f = self.facts
        return orjson.dumps([
            CASE, f.payment_id, f.time_seconds, f.merchant_id, f.amount_minor, f.currency,
            f.card, f.customer_id, f.ip_address, f.device_id, f.country, self.reply_to,
            self.features,
        ])

    @property
    def requested_at(self) -> datetime:
        return datetime.fromtimestamp(self.facts.time_seconds, UTC)


def encode_label(label: LabelFacts) -> bytes:
    return orjson.dumps([LABEL, label.payment_id, label.time_seconds, label.merchant_id,
                         label.payment_time_seconds])


def decode(raw: bytes | None) -> RiskCase | LabelFacts:
    """A case or a label; ValueError (or a subclass) on anything else."""
    if raw is None:
        raise ValueError("empty stage message")
    item = orjson.loads(raw)
    if not isinstance(item, list) or not item:
        raise ValueError("stage message is not a tagged list")
    if item[0] == LABEL and len(item) == 5:
        return LabelFacts(str(item[1]), float(item[2]), str(item[3]), float(item[4]))
    if item[0] != CASE or len(item) != 13:
        raise ValueError(f"unknown stage message tag {item[0]!r}")
    facts = PaymentFacts(str(item[1]), float(item[2]), str(item[3]), int(item[4]), str(item[5]),
                         str(item[6]), item[7], item[8], item[9], item[10])
    return RiskCase(facts, item[11], dict(item[12]))

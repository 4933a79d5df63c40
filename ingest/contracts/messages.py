"""Internal pipeline messages: requests to the risk engine, and its decisions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

import orjson
from pydantic import TypeAdapter

from ingest.contracts.base import Message, decode_with
from ingest.contracts.payments import Decision, Outcome, PaymentRequest, RiskLevel


class PaymentRequested(Message):
    """On ``payments.requests``: a new payment awaiting a risk decision."""

    type: Literal["payment.requested.v1"] = "payment.requested.v1"
    data: PaymentRequest


class PaymentDecided(Message):
    """On ``payments.decisions``: the decision, with its feature vector and model version."""

    type: Literal["payment.decided.v1"] = "payment.decided.v1"
    data: Decision


DECIDED_TYPE = "payment.decided.v1"
"""``PaymentDecided.type`` (its ``Literal`` cannot name a constant)."""


def encode_decided(*, message_id: str, time: datetime, source: str, merchant_id: str,
                   payment_id: str, outcome: Outcome, fraud_score: int, risk_level: RiskLevel,
                   fraud_flags: Sequence[str], decline_code: str | None, model_version: str,
                   features: Mapping[str, float], degraded: bool, reply_to: str | None) -> bytes:
    """The bytes ``PaymentDecided(id=message_id, ..., subject=payment_id, data=Decision(...))
    .encode()`` gives, byte for byte (tested), for a UTC ``time`` and a score within 0-100,
    without building and validating the two models: the stream worker encodes one per payment,
    and building and encoding the models took 17 us where this takes 4.4. The key order is the
    models' field order; ``features`` are written as floats, as the model coerces them."""
    return orjson.dumps({
        "id": message_id, "type": DECIDED_TYPE, "source": source, "time": time,
        "merchant_id": merchant_id, "subject": payment_id,
        "data": {
            "payment_id": payment_id, "outcome": outcome, "fraud_score": fraud_score,
            "risk_level": risk_level, "fraud_flags": fraud_flags,
            "decline_code": decline_code, "model_version": model_version,
            "features": {name: float(value) for name, value in features.items()},
            "degraded": degraded, "reply_to": reply_to,
        },
    }, option=orjson.OPT_UTC_Z)


_request_adapter: TypeAdapter[PaymentRequested] = TypeAdapter(PaymentRequested)
_decision_adapter: TypeAdapter[PaymentDecided] = TypeAdapter(PaymentDecided)


def decode_request(raw: bytes | None) -> PaymentRequested:
    result: PaymentRequested = decode_with(_request_adapter, raw)
    return result


def decode_decision(raw: bytes | None) -> PaymentDecided:
    result: PaymentDecided = decode_with(_decision_adapter, raw)
    return result

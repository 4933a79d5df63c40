"""Internal pipeline messages: requests to the risk engine, and its decisions."""

from __future__ import annotations

from typing import Literal

from pydantic import TypeAdapter

from ingest.contracts.base import Message, decode_with
from ingest.contracts.payments import Decision, PaymentRequest


class PaymentRequested(Message):
    """On ``payments.requests``: a new payment awaiting a risk decision."""

    type: Literal["payment.requested.v1"] = "payment.requested.v1"
    data: PaymentRequest


class PaymentDecided(Message):
    """On ``payments.decisions``: the decision, with its feature vector and model version."""

    type: Literal["payment.decided.v1"] = "payment.decided.v1"
    data: Decision


_request_adapter: TypeAdapter[PaymentRequested] = TypeAdapter(PaymentRequested)
_decision_adapter: TypeAdapter[PaymentDecided] = TypeAdapter(PaymentDecided)


def decode_request(raw: bytes | None) -> PaymentRequested:
    result: PaymentRequested = decode_with(_request_adapter, raw)
    return result


def decode_decision(raw: bytes | None) -> PaymentDecided:
    result: PaymentDecided = decode_with(_decision_adapter, raw)
    return result

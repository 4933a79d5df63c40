"""Versioned message contracts for every topic in the catalog.

Every message is an envelope with CloudEvents-style fields: ``id`` (unique per message; the
idempotency key for whoever consumes it), ``type`` (name and version, ``payment.requested.v1``),
``source`` (the producing process), ``time`` (event time, UTC), ``merchant_id`` and ``subject``
(the payment id) — and ``data``, the typed payload. Models are frozen and reject unknown
fields; a new field goes into a new version.

No contract carries a card number or CVC: a card travels as its token summary (id, brand,
funding, last4, expiry and keyed fingerprint).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
)

from ingest.money import MAX_AMOUNT_MINOR

AmountMinor = Annotated[int, Field(ge=1, le=MAX_AMOUNT_MINOR, strict=True)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


def new_message_id() -> str:
    """A fresh message id (UUID4, hex)."""
    return uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(UTC)


class Contract(BaseModel):
    """Base of every payload and envelope: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- payloads -------------------------------------------------------------------------------


class CardSummary(Contract):
    brand: str
    funding: Literal["credit", "debit", "prepaid", "unknown"]
    last4: Annotated[str, Field(pattern=r"^\d{4}$")]
    exp_month: Annotated[int, Field(ge=1, le=12)]
    exp_year: Annotated[int, Field(ge=2000, le=2100)]
    fingerprint: str


class BankAccountSummary(Contract):
    last4: Annotated[str, Field(pattern=r"^\d{4}$")]
    routing_number: str


class PaymentMethodSummary(Contract):
    """What travels of a payment method: the token and non-sensitive details, never the PAN."""

    id: str
    type: Literal["card", "bank_transfer"]
    card: CardSummary | None = None
    bank_account: BankAccountSummary | None = None

    @model_serializer(mode="wrap")
    def _only_own_details(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A card shows ``card``, a bank account ``bank_account``; never the other as null."""
        data: dict[str, Any] = handler(self)
        data.pop("bank_account" if self.type == "card" else "card", None)
        return data


class PaymentRequest(Contract):
    """A new payment, tokenized, as the API accepted it."""

    payment_id: str
    amount: AmountMinor
    currency: CurrencyCode
    capture: bool = True
    payment_method: PaymentMethodSummary
    customer_id: str | None = None
    ip_address: str | None = None
    description: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    reply_to: str | None = None
    """Where the API instance that took the request waits for the outcome (a Redis channel)."""


RiskLevel = Literal["low", "medium", "high"]
Outcome = Literal["approve", "review", "decline"]


class Decision(Contract):
    """The risk engine's verdict on one request."""

    payment_id: str
    outcome: Outcome
    fraud_score: Annotated[int, Field(ge=0, le=100)]
    risk_level: RiskLevel
    fraud_flags: tuple[str, ...] = ()
    decline_code: str | None = None
    model_version: str
    features: dict[str, float] = Field(default_factory=dict)
    degraded: bool = False
    reply_to: str | None = None
    """Copied from the request: where the waiting API instance listens for the outcome."""


class Customer(Contract):
    id: str | None = None
    email: str | None = None


class Refund(Contract):
    id: str
    amount: int
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None
    created_at: AwareDatetime


PaymentStatus = Literal["pending", "authorized", "captured", "refunded", "voided", "failed"]


class Transaction(Contract):
    """A payment as committed in the ledger: the object the API answers with and events carry.

    The database's ``transactions`` view has exactly these columns.
    """

    id: str
    merchant_id: str
    amount: int
    currency: str
    captured_amount: int
    refunded_amount: int
    status: PaymentStatus
    fraud_score: int | None
    risk_level: RiskLevel | None
    fraud_flags: tuple[str, ...]
    decline_code: str | None
    processor_ref: str | None
    payment_method: PaymentMethodSummary
    description: str | None
    customer: Customer | None
    metadata: dict[str, str]
    refunds: tuple[Refund, ...] = ()
    created_at: AwareDatetime
    updated_at: AwareDatetime


# --- envelopes ------------------------------------------------------------------------------


class Message(Contract):
    """The envelope every topic message shares."""

    id: str = Field(default_factory=new_message_id)
    type: str
    source: str
    time: AwareDatetime = Field(default_factory=utc_now)
    merchant_id: str
    subject: str
    """The entity the message is about (a payment id); also its Kafka key."""

    def key(self) -> bytes:
        return self.subject.encode()

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


class PaymentRequested(Message):
    type: Literal["payment.requested.v1"] = "payment.requested.v1"
    data: PaymentRequest


class PaymentDecided(Message):
    type: Literal["payment.decided.v1"] = "payment.decided.v1"
    data: Decision


PaymentEventType = Literal[
    "payment.authorized.v1",
    "payment.captured.v1",
    "payment.failed.v1",
    "payment.voided.v1",
    "payment.refunded.v1",
]


class PaymentEvent(Message):
    """A committed state change of a payment (public, on ``payments.events``).

    ``type`` names the change and its schema version; the webhook event type is the same name
    without the version suffix (``payment.captured``).
    """

    type: PaymentEventType
    data: Transaction

    @property
    def event_name(self) -> str:
        return self.type.rsplit(".", 1)[0]


_request_adapter: TypeAdapter[PaymentRequested] = TypeAdapter(PaymentRequested)
_decision_adapter: TypeAdapter[PaymentDecided] = TypeAdapter(PaymentDecided)
_event_adapter: TypeAdapter[PaymentEvent] = TypeAdapter(PaymentEvent)


class UndecodableMessage(ValueError):
    """Bytes that are not a valid message of the expected contract (a poison message)."""


def _decode(adapter: TypeAdapter[Any], raw: bytes | None) -> Any:
    if raw is None:
        raise UndecodableMessage("empty message value")
    try:
        return adapter.validate_json(raw)
    except ValueError as error:
        raise UndecodableMessage(str(error)[:500]) from error


def decode_request(raw: bytes | None) -> PaymentRequested:
    result: PaymentRequested = _decode(_request_adapter, raw)
    return result


def decode_decision(raw: bytes | None) -> PaymentDecided:
    result: PaymentDecided = _decode(_decision_adapter, raw)
    return result


def decode_event(raw: bytes | None) -> PaymentEvent:
    result: PaymentEvent = _decode(_event_adapter, raw)
    return result

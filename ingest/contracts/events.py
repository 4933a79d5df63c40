"""Public events on ``payments.events``: every committed change, in order per payment.

``type`` names the change and its schema version (``payment.captured.v1``); the webhook event
type is the same name without the version (``payment.captured``). ``data`` is the object the
event is about: the transaction, the refund, the dispute or the payout.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, TypeAdapter

from ingest.contracts.base import Contract, Message, decode_with
from ingest.contracts.payments import RefundReason, Transaction

PaymentEventType = Literal[
    "payment.authorized.v1",
    "payment.captured.v1",
    "payment.failed.v1",
    "payment.voided.v1",
    "payment.refunded.v1",
]


class PaymentEvent(Message):
    """A payment changed state; ``data`` is the transaction as committed."""

    type: PaymentEventType
    data: Transaction


class RefundObject(Contract):
    """A refund: all or part of a captured payment returned to the customer."""

    id: str
    payment_id: str
    merchant_id: str
    amount: int
    """The amount refunded, in minor units of ``currency``."""
    currency: str
    reason: RefundReason | None
    status: Literal["succeeded"] = "succeeded"
    created_at: AwareDatetime


class RefundEvent(Message):
    """A refund was made; ``data`` is the refund, with its payment id."""

    type: Literal["refund.created.v1"] = "refund.created.v1"
    data: RefundObject


class DisputeObject(Contract):
    """A chargeback on a captured payment."""

    id: str
    payment_id: str
    merchant_id: str
    amount: int
    """The disputed amount (what was captured and not refunded), in minor units."""
    currency: str
    reason: str
    card_fingerprint: str | None
    """The disputed card, so risk features can count fraud labels per card."""
    payment_created_at: AwareDatetime
    """When the disputed payment happened: labels count against that time, not today."""
    created_at: AwareDatetime


class DisputeEvent(Message):
    """A chargeback: funds move to disputes, and the payment is labelled fraudulent."""

    type: Literal["dispute.created.v1"] = "dispute.created.v1"
    data: DisputeObject


class PayoutObject(Contract):
    """Funds moved from a merchant's available balance in one currency to the merchant."""

    id: str
    merchant_id: str
    amount: int
    """The amount paid out, in minor units of ``currency``."""
    currency: str
    status: Literal["pending", "paid"]
    settlement_date: date
    """The day whose available balance this payout moves to the merchant."""
    created_at: AwareDatetime


class PayoutEvent(Message):
    """A payout was created (``pending``) or paid; keyed by merchant id."""

    type: Literal["payout.created.v1", "payout.paid.v1"]
    data: PayoutObject


PublicEvent = Annotated[
    PaymentEvent | RefundEvent | DisputeEvent | PayoutEvent, Field(discriminator="type")
]
AnyPublicEvent = PaymentEvent | RefundEvent | DisputeEvent | PayoutEvent
_event_adapter: TypeAdapter[PublicEvent] = TypeAdapter(PublicEvent)


def decode_event(raw: bytes | None) -> AnyPublicEvent:
    result: AnyPublicEvent = decode_with(_event_adapter, raw)
    return result

"""Commands on ``payments.commands``: capture, void, refund and dispute from the API, and clear
(a bank transfer's funds arrived) from the ledger's sandbox clock — keyed by payment id so that
one payment's commands are applied in order.

A command names what is wanted; the ledger decides whether the payment's state allows it and
answers the waiting API instance with a ``CommandOutcome``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from ingest.contracts.base import AmountMinor, Contract, Message, decode_with
from ingest.contracts.payments import RefundReason


class CommandData(Contract):
    payment_id: str
    reply_to: str | None = None
    """Where the API instance waiting for the outcome listens (a Redis channel)."""
    actor: str = "api"
    """Who asked: ``api`` (an API key) or ``user:<id>`` (a dashboard user), for the audit log."""


class Capture(CommandData):
    amount: AmountMinor | None = None
    """None captures everything authorized; less captures that and releases the rest."""


class Void(CommandData):
    pass


class RefundCommand(CommandData):
    refund_id: str
    amount: AmountMinor | None = None
    """None refunds what remains of the captured amount."""
    reason: RefundReason | None = None


class Clear(CommandData):
    """A bank transfer's funds arrived (sent by the ledger's own sandbox clock)."""


class DisputeCommand(CommandData):
    dispute_id: str
    reason: Annotated[str, Field(min_length=1, max_length=200)]


class CapturePayment(Message):
    type: Literal["payment.capture.v1"] = "payment.capture.v1"
    data: Capture


class VoidPayment(Message):
    type: Literal["payment.void.v1"] = "payment.void.v1"
    data: Void


class RefundPayment(Message):
    type: Literal["payment.refund.v1"] = "payment.refund.v1"
    data: RefundCommand


class DisputePayment(Message):
    type: Literal["payment.dispute.v1"] = "payment.dispute.v1"
    data: DisputeCommand


class ClearPayment(Message):
    type: Literal["payment.clear.v1"] = "payment.clear.v1"
    data: Clear


AnyCommand = CapturePayment | VoidPayment | RefundPayment | DisputePayment | ClearPayment
PaymentCommand = Annotated[AnyCommand, Field(discriminator="type")]
_command_adapter: TypeAdapter[AnyCommand] = TypeAdapter(PaymentCommand)


def decode_command(raw: bytes | None) -> AnyCommand:
    result: AnyCommand = decode_with(_command_adapter, raw)
    return result

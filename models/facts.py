"""The facts the fraud features are computed from: one payment, or one fraud label.

Both the stream worker (from ``payments.requests`` and ``dispute.created`` messages) and offline
training (from a history file, the simulator or the feature log) reduce their input to these
values, so everything downstream of them is shared code. Times are event times in seconds since
the epoch (the message's ``time``), never the clock of the process computing the features.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.contracts import DisputeEvent, PaymentRequested


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """What the features need to know about one payment request."""

    payment_id: str
    time_seconds: float
    """Event time: when the API accepted the request."""
    merchant_id: str
    amount_minor: int
    currency: str
    card: str
    """The card's keyed fingerprint (or the payment method id of a bank account)."""
    customer_id: str | None = None
    ip_address: str | None = None
    device_id: str | None = None
    country: str | None = None
    """Where the payment came from (ISO 3166 alpha-2 of the IP address), when known."""

    @property
    def customer(self) -> str | None:
        """The customer velocity is counted on. Customer ids are the merchant's own (two
        merchants may both have a ``cus_1``), so the key is the merchant's customer."""
        if self.customer_id is None:
            return None
        return f"{self.merchant_id}/{self.customer_id}"

    @property
    def origin(self) -> str | None:
        """The network origin velocity is counted on: the IP address, else the device id."""
        if self.ip_address:
            return f"ip:{self.ip_address}"
        if self.device_id:
            return f"device:{self.device_id}"
        return None


@dataclass(frozen=True, slots=True)
class LabelFacts:
    """A fraud label (a dispute): known from ``time_seconds`` on, about an older payment."""

    payment_id: str
    time_seconds: float
    """When the label became known (the dispute's event time)."""
    merchant_id: str
    payment_time_seconds: float
    """When the labelled payment happened: the label counts against that day."""


def payment_facts(message: PaymentRequested) -> PaymentFacts:
    """The facts of a ``payment.requested`` message."""
    request = message.data
    method = request.payment_method
    card = method.card.fingerprint if method.card is not None else f"pm:{method.id}"
    return PaymentFacts(
        payment_id=request.payment_id,
        time_seconds=message.time.timestamp(),
        merchant_id=message.merchant_id,
        amount_minor=request.amount,
        currency=request.currency,
        card=card,
        customer_id=request.customer_id,
        ip_address=request.ip_address,
        device_id=request.device_id,
        country=request.ip_country,
    )


def label_facts(event: DisputeEvent) -> LabelFacts:
    """The fraud label a ``dispute.created`` event carries."""
    dispute = event.data
    return LabelFacts(
        payment_id=dispute.payment_id,
        time_seconds=event.time.timestamp(),
        merchant_id=dispute.merchant_id,
        payment_time_seconds=dispute.payment_created_at.timestamp(),
    )

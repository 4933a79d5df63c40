"""Payloads about payments: the token summary, the request, the risk decision, the transaction.

No payload carries a card number or CVC: a card travels as its token summary (id, brand,
funding, last4, expiry and keyed fingerprint).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, SerializerFunctionWrapHandler, model_serializer

from ingest.contracts.base import AmountMinor, Contract, CurrencyCode

RiskLevel = Literal["low", "medium", "high"]
Outcome = Literal["approve", "review", "decline"]
PaymentStatus = Literal["pending", "authorized", "captured", "refunded", "voided", "failed"]
RefundReason = Literal["duplicate", "fraudulent", "requested_by_customer"]


class CardSummary(Contract):
    brand: str
    funding: Literal["credit", "debit", "prepaid", "unknown"]
    last4: Annotated[str, Field(pattern=r"^\d{4}$")]
    exp_month: Annotated[int, Field(ge=1, le=12)]
    exp_year: Annotated[int, Field(ge=2000, le=2100)]
    fingerprint: str
    """Keyed HMAC of the card number: the same card always has the same fingerprint."""


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
    device_id: Annotated[str, Field(max_length=200)] | None = None
    """The client device's identifier (e.g. a browser fingerprint), when the merchant sends one:
    risk counts distinct cards per device as it does per IP address."""
    ip_country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    """ISO 3166-1 alpha-2 country of ``ip_address`` (geolocated by the API), when known: risk
    flags a country the card has not been used from before."""


class Decision(Contract):
    """The risk engine's verdict on one request."""

    payment_id: str
    outcome: Outcome
    fraud_score: Annotated[int, Field(ge=0, le=100)]
    risk_level: RiskLevel
    fraud_flags: tuple[str, ...] = ()
    decline_code: str | None = None
    model_version: str
    """The fraud model version that scored the payment, or ``rules-only``."""
    features: dict[str, float] = Field(default_factory=dict)
    """The feature vector that was scored, by feature name."""
    degraded: bool = False
    """True when the model could not score and the rules alone decided."""
    reply_to: str | None = None
    """Copied from the request: where the waiting API instance listens for the outcome."""


class Customer(Contract):
    id: str | None = None
    email: str | None = None


class Refund(Contract):
    """A refund as listed on its payment."""

    id: str
    amount: int
    reason: RefundReason | None
    created_at: AwareDatetime


class Transaction(Contract):
    """A payment as committed in the ledger: the object the API answers with and events carry.

    The database's ``transactions`` view has exactly these columns.
    """

    id: str
    merchant_id: str
    amount: int
    """The amount of the payment, in minor units of ``currency`` (cents; yen for JPY)."""
    currency: str
    """ISO 4217 code, upper case."""
    captured_amount: int
    refunded_amount: int
    status: PaymentStatus
    fraud_score: int | None
    """From 0 to 100; null while the payment is pending."""
    risk_level: RiskLevel | None
    fraud_flags: tuple[str, ...]
    decline_code: str | None
    processor_ref: str | None
    payment_method: PaymentMethodSummary
    description: str | None
    customer: Customer | None
    metadata: dict[str, str]
    refunds: tuple[Refund, ...] = ()
    disputed_amount: int = 0
    created_at: AwareDatetime
    updated_at: AwareDatetime

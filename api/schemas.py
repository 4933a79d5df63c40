"""Request and response shapes of the merchant API.

Inputs reject unknown fields and coercion (``"1000"``, ``1000.0`` and ``true`` are not amounts);
outputs reuse the contracts in ``ingest`` so the API, events and webhooks show one object.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from ingest.contracts import PaymentMethodSummary, Transaction
from ingest.money import CURRENCY_EXPONENTS, MAX_AMOUNT_MINOR, normalize_currency

AmountIn = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT_MINOR,
                                      description="Integer minor units (cents; yen for JPY)")]
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CardIn(Input):
    number: Annotated[str, Field(min_length=12, max_length=23, examples=["4242424242424242"])]
    exp_month: Annotated[StrictInt, Field(examples=[12])]
    exp_year: Annotated[StrictInt, Field(examples=[2030])]
    cvc: Annotated[str, Field(min_length=3, max_length=4, examples=["123"])]


class BankAccountIn(Input):
    routing_number: Annotated[str, Field(pattern=r"^\d{9}$")]
    account_number: Annotated[str, Field(pattern=r"^\d{4,17}$")]
    account_holder_name: Annotated[str, Field(min_length=1, max_length=200)]


class PaymentMethodIn(Input):
    type: Literal["card", "bank_transfer"]
    card: CardIn | None = None
    bank_account: BankAccountIn | None = None

    @model_validator(mode="after")
    def _details_match_type(self) -> PaymentMethodIn:
        if self.type == "card" and (self.card is None or self.bank_account is not None):
            raise ValueError("a card payment method needs `card` and no `bank_account`")
        if self.type == "bank_transfer" and (self.bank_account is None or self.card is not None):
            raise ValueError("a bank_transfer payment method needs `bank_account` and no `card`")
        return self


class CustomerIn(Input):
    id: Annotated[str | None, Field(max_length=255)] = None
    email: Annotated[str | None, Field(max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")] = None
    ip_address: IPvAnyAddress | None = Field(
        None, description="The customer's IP address as the merchant saw it (risk signals)")
    device_id: Annotated[str | None, Field(max_length=200)] = Field(
        None, description="A stable identifier of the customer's device (risk signals)")


def check_metadata(metadata: dict[str, str]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValueError(f"metadata holds at most {MAX_METADATA_KEYS} keys")
    for key, value in metadata.items():
        if not 1 <= len(key) <= MAX_METADATA_KEY_LENGTH:
            raise ValueError(f"metadata keys are 1 to {MAX_METADATA_KEY_LENGTH} characters")
        if len(value) > MAX_METADATA_VALUE_LENGTH:
            raise ValueError(f"metadata values are at most {MAX_METADATA_VALUE_LENGTH} characters")
    return metadata


class PaymentCreate(Input):
    amount: AmountIn
    currency: Annotated[str, Field(
        min_length=3, max_length=3, examples=["usd"],
        description="ISO 4217 code, any case",
        json_schema_extra={"enum": sorted([*CURRENCY_EXPONENTS, *map(str.lower,
                                                                     CURRENCY_EXPONENTS)])},
    )]
    payment_method_id: Annotated[str | None, Field(max_length=64)] = None
    payment_method: PaymentMethodIn | None = None
    capture: StrictBool = True
    description: Annotated[str | None, Field(max_length=1000)] = None
    customer: CustomerIn | None = None
    metadata: dict[str, Annotated[str, Field(strict=True)]] = Field(default_factory=dict)

    @field_validator("currency")
    @classmethod
    def _supported_currency(cls, value: str) -> str:
        return normalize_currency(value)

    @field_validator("metadata")
    @classmethod
    def _bounded_metadata(cls, value: dict[str, str]) -> dict[str, str]:
        return check_metadata(value)

    @model_validator(mode="after")
    def _one_payment_method(self) -> PaymentCreate:
        if (self.payment_method_id is None) == (self.payment_method is None):
            raise ValueError("give exactly one of `payment_method_id` and `payment_method`")
        return self


class PaymentResult(BaseModel):
    """The answer to a create: 201 when decided within the time budget, else 202 ``pending``."""

    transaction: Transaction
    fraud_score: int | None
    warnings: list[str]


class PaymentList(BaseModel):
    data: list[Transaction]
    total: int
    page: int
    limit: int
    has_more: bool


__all__ = [
    "PaymentCreate",
    "PaymentList",
    "PaymentMethodIn",
    "PaymentMethodSummary",
    "PaymentResult",
]


class CaptureIn(Input):
    amount: AmountIn | None = None
    """Omit to capture the whole authorization; less captures that and releases the rest."""


class RefundIn(Input):
    amount: AmountIn | None = None
    """Omit to refund what remains of the captured amount."""
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None


class DisputeIn(Input):
    reason: Annotated[str, Field(min_length=1, max_length=200, examples=["fraudulent"])]


class EmptyIn(Input):
    """A command without parameters (void); an empty JSON object or no body."""

"""The payment list's query parameters: validated, then normalized for the repository.

Dates take ISO 8601 dates or date-times (a date means its midnight UTC; a date-time without an
offset is UTC); ``start_date`` is inclusive, ``end_date`` exclusive; amounts are inclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.errors import ApiError
from ingest.money import MAX_AMOUNT_MINOR, normalize_currency

Status = Literal["pending", "authorized", "captured", "refunded", "voided", "failed"]


class PaymentFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    limit: Annotated[int, Field(ge=1, le=100)] = 25
    status: Status | None = None
    currency: Annotated[str | None, Field(min_length=3, max_length=3)] = None
    search: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    start_date: date | datetime | None = None
    end_date: date | datetime | None = None
    min_amount: Annotated[int | None, Field(ge=0, le=MAX_AMOUNT_MINOR)] = None
    max_amount: Annotated[int | None, Field(ge=0, le=MAX_AMOUNT_MINOR)] = None
    starting_after: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    """Cursor paging for API clients: the last id of the previous page."""

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return normalize_currency(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class ParsedFilters:
    limit: int
    offset: int
    status: str | None = None
    currency: str | None = None
    search: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    min_amount: int | None = None
    max_amount: int | None = None
    starting_after: str | None = None


def _instant(value: date | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


def parse_filters(filters: PaymentFilters) -> ParsedFilters:
    if (filters.min_amount is not None and filters.max_amount is not None
            and filters.min_amount > filters.max_amount):
        raise ApiError(400, "parameter_invalid", "min_amount is above max_amount",
                       param="min_amount")
    start, end = _instant(filters.start_date), _instant(filters.end_date)
    if start and end and start >= end:
        raise ApiError(400, "parameter_invalid", "start_date must be before end_date",
                       param="start_date")
    if filters.starting_after is not None and filters.page != 1:
        raise ApiError(400, "parameter_invalid", "use either page or starting_after",
                       param="starting_after")
    return ParsedFilters(
        limit=filters.limit, offset=(filters.page - 1) * filters.limit, status=filters.status,
        currency=filters.currency, search=filters.search, start=start, end=end,
        min_amount=filters.min_amount, max_amount=filters.max_amount,
        starting_after=filters.starting_after,
    )

"""Request and response shapes of the webhook endpoints and deliveries API.

Inputs reject unknown fields; ``enabled_events`` is checked against the public event types.
The URL's acceptability depends on the deployment (https and SSRF rules in production), so it
is checked by ``api.webhooks.endpoints``, not here. Secrets appear only in ``EndpointWithSecret``,
the answer to a create or a rotation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from api.webhooks.events import ALL_EVENTS, EVENT_TYPES, check_enabled_events
from api.webhooks.urls import MAX_URL_LENGTH

ID_PATTERN = r"^[A-Za-z0-9_]+$"
Url = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH,
                           pattern=r"^[^\x00-\x20\x7f]+$",  # no spaces, no control characters
                           examples=["https://example.com/webhooks/payflow"])]
ObjectId = Annotated[str, Field(min_length=1, max_length=64, pattern=ID_PATTERN)]
"""An id as payflow makes them (``we_...``, ``msg_...``); anything else cannot exist."""
IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
EnabledEvents = Annotated[
    list[Annotated[str, Field(max_length=100)]],
    Field(min_length=1, max_length=len(EVENT_TYPES) + 1,
          description=f"event types ({', '.join(EVENT_TYPES)}) or ['*'] for all"),
]
Description = Annotated[str | None, Field(max_length=500, pattern=r"^[^\x00]*$")]
Moment = Annotated[datetime, AfterValidator(lambda value: value.astimezone(UTC))]
"""A timestamp, shown in UTC with a ``Z``."""
DeliveryStatus = Literal["pending", "succeeded", "failed", "canceled"]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointCreate(Input):
    url: Url
    enabled_events: EnabledEvents = Field(default_factory=lambda: [ALL_EVENTS])
    description: Description = None

    @field_validator("enabled_events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        return check_enabled_events(value)


class EndpointUpdate(Input):
    url: Url | None = None
    enabled_events: EnabledEvents | None = None
    description: Description = None
    disabled: StrictBool | None = None
    """true pauses deliveries; false re-enables (also after an automatic disable)."""

    @field_validator("enabled_events")
    @classmethod
    def _known_events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_enabled_events(value)


class PrimaryEndpointSet(EndpointCreate):
    """``PUT /api/webhooks/endpoint``: the dashboard's one endpoint, created or replaced."""

    disabled: StrictBool = False


class SecretRotate(Input):
    overlap_seconds: Annotated[StrictInt | None, Field(ge=0, le=7 * 24 * 3600)] = None
    """How long the old secret keeps signing (default PAYFLOW_WEBHOOKS_SECRET_OVERLAP_SECONDS)."""


class NoParameters(Input):
    """What a POST without a body asks: nothing (its Idempotency-Key fingerprint)."""


class SendTestRequest(Input):
    endpoint_id: ObjectId | None = None
    """Which endpoint to test; default the dashboard's (primary) endpoint."""


class EndpointPublic(BaseModel):
    id: str
    url: str
    description: str | None
    enabled_events: list[str]
    status: Literal["enabled", "disabled"]
    disabled_reason: Literal["manual", "failing"] | None
    """``failing``: disabled automatically after failing continuously (see the README)."""
    disabled_at: Moment | None
    primary: bool
    failing_since: Moment | None
    consecutive_failures: int
    last_success_at: Moment | None
    secret_rotation_ends_at: Moment | None
    """While set, the previous secret still signs too (rotation overlap)."""
    created_at: Moment
    updated_at: Moment


class EndpointWithSecret(EndpointPublic):
    secret: str
    """``whsec_...``: shown only now; store it to verify signatures."""


class EndpointList(BaseModel):
    data: list[EndpointPublic]
    total: int
    page: int
    limit: int
    has_more: bool


class EndpointDeleted(BaseModel):
    id: str
    deleted: Literal[True] = True


class AttemptPublic(BaseModel):
    attempt: int
    url: str
    status_code: int | None
    latency_ms: int
    response_body: str | None
    error: str | None
    next_attempt_at: Moment | None
    attempted_at: Moment


class DeliveryPublic(BaseModel):
    id: str
    """Also the ``webhook-id`` header of every attempt."""
    endpoint_id: str
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: Moment | None
    last_attempt_at: Moment | None
    last_status_code: int | None
    last_error: str | None
    created_at: Moment


class DeliveryDetail(DeliveryPublic):
    attempts: list[AttemptPublic]


class DeliveryList(BaseModel):
    data: list[DeliveryPublic]
    total: int
    page: int
    limit: int
    has_more: bool


class SendTestResult(BaseModel):
    delivery_id: str
    endpoint_id: str
    url: str
    success: bool
    status_code: int | None
    latency_ms: int
    response_body: str | None
    error: str | None

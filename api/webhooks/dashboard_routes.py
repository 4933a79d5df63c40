"""``/api/webhooks``: the dashboard's webhook settings, delivery log, resend and test send.

The merchant comes from ``MerchantId`` (today the API key; the dashboard's session cookie once
the auth middleware accepts it). Another merchant's endpoint or delivery is 404.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse, Response

from api.deps import IdempotencyKey, MerchantId, ServicesDep
from api.errors import ApiError, not_found
from api.idempotency import run_idempotent
from api.webhooks import endpoints, repository
from api.webhooks.audit import Actor
from api.webhooks.events import EVENT_TYPES, TEST_EVENT_TYPE
from api.webhooks.schemas import (
    ID_PATTERN,
    DeliveryDetail,
    DeliveryList,
    DeliveryPublic,
    DeliveryStatus,
    EndpointPublic,
    EndpointWithSecret,
    IdPath,
    NoParameters,
    PrimaryEndpointSet,
    SendTestRequest,
    SendTestResult,
)

router = APIRouter(prefix="/api/webhooks", tags=["dashboard webhooks"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed request or query parameter"},
    401: {"description": "Not logged in"},
    404: {"description": "No such endpoint or delivery for this merchant"},
    409: {"description": "The delivery's endpoint is disabled or deleted"},
    422: {"description": "Invalid parameters (a URL refused by the SSRF rules: url_invalid)"},
}


@router.get("/endpoint", response_model=EndpointPublic, responses=ERRORS)
async def get_primary(merchant_id: MerchantId, services: ServicesDep) -> EndpointPublic:
    """The dashboard's endpoint, with its status (``disabled_reason: failing`` when automatic)."""
    async with services.pool.connection() as conn:
        row = await repository.get_primary_endpoint(conn, merchant_id)
    if row is None:
        raise not_found("webhook endpoint", "primary")
    return endpoints.public(row)


@router.put("/endpoint", response_model=EndpointPublic, responses={
    201: {"model": EndpointWithSecret, "description": "Created; holds the secret, shown once"},
    **ERRORS,
})
async def put_primary(body: PrimaryEndpointSet, merchant_id: MerchantId,
                      services: ServicesDep, actor: Actor) -> JSONResponse:
    """Set the dashboard's endpoint: 201 with its secret when new, else 200."""
    status, endpoint = await endpoints.set_primary(services, merchant_id, body, actor=actor)
    return JSONResponse(endpoint.model_dump(mode="json"), status_code=status)


def _moment(value: datetime | date | None) -> datetime | None:
    """A date means its midnight; a date-time without an offset is taken as UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        return datetime.combine(value, time.min, tzinfo=UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@router.get("/deliveries", response_model=DeliveryList, responses=ERRORS)
async def list_deliveries(
    merchant_id: MerchantId, services: ServicesDep,
    status: DeliveryStatus | None = None,
    event_type: Annotated[str | None, Query(max_length=100)] = None,
    endpoint_id: Annotated[str | None, Query(max_length=64, pattern=ID_PATTERN)] = None,
    start_date: Annotated[datetime | date | None, Query(description="inclusive")] = None,
    end_date: Annotated[datetime | date | None, Query(description="exclusive")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> DeliveryList:
    """Deliveries, newest first, filtered by status, event type, endpoint and date range."""
    if event_type is not None and event_type not in (*EVENT_TYPES, TEST_EVENT_TYPE):
        raise ApiError(400, "parameter_invalid", f"unknown event type {event_type!r}",
                       param="event_type")
    filters = repository.DeliveryFilters(
        status=status, event_type=event_type, endpoint_id=endpoint_id,
        start=_moment(start_date), end=_moment(end_date),
    )
    async with services.pool.connection() as conn:
        rows, total = await repository.list_deliveries(
            conn, merchant_id, filters, limit=limit, offset=(page - 1) * limit
        )
    return DeliveryList(data=[DeliveryPublic.model_validate(r) for r in rows], total=total,
                        page=page, limit=limit, has_more=page * limit < total)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryDetail, responses=ERRORS)
async def get_delivery(delivery_id: IdPath, merchant_id: MerchantId,
                       services: ServicesDep) -> DeliveryDetail:
    """One delivery with every attempt: status, latency, response start, next retry."""
    async with services.pool.connection() as conn:
        row = await repository.get_delivery(conn, merchant_id, delivery_id)
        if row is None:
            raise not_found("webhook delivery", delivery_id)
        attempts = await repository.list_attempts(conn, delivery_id)
    return DeliveryDetail.model_validate({**row, "attempts": attempts})


@router.post("/deliveries/{delivery_id}/resend", status_code=202, response_model=DeliveryPublic,
             responses=ERRORS)
async def resend(delivery_id: IdPath, merchant_id: MerchantId, services: ServicesDep,
                 actor: Actor, key: IdempotencyKey = None) -> Response:
    """Send this delivery again now (same ``webhook-id`` and body, fresh signature)."""
    async def action(_: str) -> tuple[int, DeliveryPublic]:
        return 202, await endpoints.resend_delivery(services, merchant_id, delivery_id,
                                                    actor=actor)

    return await run_idempotent(
        services, merchant_id, key, "POST", f"/api/webhooks/deliveries/{delivery_id}/resend",
        NoParameters(), lambda: delivery_id, action,
    )


@router.post("/test", response_model=SendTestResult, responses=ERRORS)
async def send_test(merchant_id: MerchantId, services: ServicesDep, actor: Actor,
                    body: Annotated[SendTestRequest | None, Body()] = None) -> SendTestResult:
    """Send a signed ``webhook.test`` event to the endpoint now; status code and latency."""
    request = body or SendTestRequest()
    return await endpoints.send_test(services, merchant_id, request.endpoint_id, actor=actor)

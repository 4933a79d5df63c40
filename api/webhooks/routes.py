"""``/v1/webhook_endpoints``: merchants manage their webhook endpoints with an API key.

Thin handlers around ``api.webhooks.endpoints``. The signing secret is in the answer to a create
and to ``rotate_secret`` only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response

from api.deps import IdempotencyKey, MerchantId, ServicesDep
from api.errors import not_found
from api.idempotency import run_idempotent
from api.ids import new_id
from api.webhooks import endpoints, repository
from api.webhooks.audit import Actor
from api.webhooks.schemas import (
    EndpointCreate,
    EndpointDeleted,
    EndpointList,
    EndpointPublic,
    EndpointUpdate,
    EndpointWithSecret,
    IdPath,
    SecretRotate,
)

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["webhooks"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed request, or too many endpoints"},
    401: {"description": "Missing or invalid API key"},
    404: {"description": "No such endpoint for this merchant"},
    422: {"description": "Invalid parameters (a URL refused by the SSRF rules: url_invalid)"},
}


@router.post("", status_code=201, response_model=EndpointWithSecret, responses=ERRORS)
async def create(
    body: EndpointCreate, merchant_id: MerchantId, services: ServicesDep, actor: Actor,
    key: IdempotencyKey = None,
) -> Response:
    """Add an endpoint; the answer holds its signing secret, shown this once."""
    async def action(endpoint_id: str) -> tuple[int, EndpointWithSecret]:
        return 201, await endpoints.create_endpoint(services, merchant_id, body, endpoint_id,
                                                    actor=actor)

    return await run_idempotent(services, merchant_id, key, "POST", "/v1/webhook_endpoints",
                                body, lambda: new_id("we"), action)


@router.get("", response_model=EndpointList, responses=ERRORS)
async def list_all(
    merchant_id: MerchantId, services: ServicesDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> EndpointList:
    """The merchant's endpoints, newest first."""
    async with services.pool.connection() as conn:
        rows, total = await repository.list_endpoints(
            conn, merchant_id, limit=limit, offset=(page - 1) * limit
        )
    return EndpointList(data=[endpoints.public(row) for row in rows], total=total, page=page,
                        limit=limit, has_more=page * limit < total)


@router.get("/{endpoint_id}", response_model=EndpointPublic, responses=ERRORS)
async def get_one(endpoint_id: IdPath, merchant_id: MerchantId,
                  services: ServicesDep) -> EndpointPublic:
    async with services.pool.connection() as conn:
        row = await repository.get_endpoint(conn, merchant_id, endpoint_id)
    if row is None:
        raise not_found("webhook endpoint", endpoint_id)
    return endpoints.public(row)


@router.patch("/{endpoint_id}", response_model=EndpointPublic, responses=ERRORS)
async def update(endpoint_id: IdPath, body: EndpointUpdate, merchant_id: MerchantId,
                 services: ServicesDep, actor: Actor) -> EndpointPublic:
    """Change the URL, events or description; ``disabled`` pauses or resumes deliveries."""
    return await endpoints.update_endpoint(services, merchant_id, endpoint_id, body, actor=actor)


@router.delete("/{endpoint_id}", response_model=EndpointDeleted, responses=ERRORS)
async def delete(endpoint_id: IdPath, merchant_id: MerchantId, services: ServicesDep,
                 actor: Actor) -> EndpointDeleted:
    """Remove the endpoint; its pending deliveries are canceled, its log is kept."""
    await endpoints.delete_endpoint(services, merchant_id, endpoint_id, actor=actor)
    return EndpointDeleted(id=endpoint_id)


@router.post("/{endpoint_id}/rotate_secret", response_model=EndpointWithSecret,
             responses=ERRORS)
async def rotate_secret(
    endpoint_id: IdPath, merchant_id: MerchantId, services: ServicesDep, actor: Actor,
    body: Annotated[SecretRotate | None, Body()] = None, key: IdempotencyKey = None,
) -> Response:
    """A new secret, shown once; the old one also signs until ``secret_rotation_ends_at``."""
    request = body or SecretRotate()

    async def action(_: str) -> tuple[int, EndpointWithSecret]:
        return 200, await endpoints.rotate_secret(services, merchant_id, endpoint_id,
                                                  request.overlap_seconds, actor=actor)

    return await run_idempotent(
        services, merchant_id, key, "POST", f"/v1/webhook_endpoints/{endpoint_id}/rotate_secret",
        request, lambda: endpoint_id, action,
    )

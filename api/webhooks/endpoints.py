"""What the webhook routes do, between HTTP and SQL: endpoints with checked URLs and sealed
secrets, rotation, the dashboard's primary endpoint and the signed test send.

Each function takes the services and the merchant and raises ``ApiError`` for expected failures:
a URL refused by the SSRF rules is 422 ``url_invalid``, another merchant's endpoint is 404.
"""

from __future__ import annotations

from datetime import UTC, datetime

from api.errors import ApiError, not_found
from api.ids import new_id
from api.services import Services
from api.webhooks import audit, repository
from api.webhooks.events import TEST_EVENT_TYPE, PlannedDelivery, probe_body
from api.webhooks.guard import guarded_client, vet_url
from api.webhooks.repository import Row
from api.webhooks.schemas import (
    DeliveryPublic,
    EndpointCreate,
    EndpointPublic,
    EndpointUpdate,
    EndpointWithSecret,
    PrimaryEndpointSet,
    SendTestResult,
)
from api.webhooks.sender import store
from api.webhooks.sender.attempt import send
from api.webhooks.signing_secrets import new_secret, open_secret, seal_secret
from api.webhooks.urls import UrlPolicy, UrlRefused


class PrimaryExists(Exception):
    """The merchant already has a primary endpoint (a concurrent create won)."""


async def check_url(services: Services, url: str) -> None:
    try:
        await vet_url(url, UrlPolicy.from_settings(services.settings))
    except UrlRefused as refused:
        raise ApiError(422, "url_invalid", f"This webhook URL is not accepted: {refused}.",
                       param="url") from refused


def public(row: Row) -> EndpointPublic:
    return EndpointPublic.model_validate(row)


async def create_endpoint(
    services: Services, merchant_id: str, body: EndpointCreate, endpoint_id: str, *,
    actor: str, primary: bool = False, disabled: bool = False,
) -> EndpointWithSecret:
    await check_url(services, body.url)
    secret = new_secret()
    new = repository.NewEndpoint(
        id=endpoint_id, url=body.url, enabled_events=body.enabled_events,
        description=body.description, primary=primary, disabled=disabled,
        secret_ciphertext=seal_secret(services.vault, endpoint_id, secret),
    )
    async with services.pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (merchant_id,))
        if primary and await repository.get_primary_endpoint(conn, merchant_id):
            raise PrimaryExists(merchant_id)
        if await repository.count_endpoints(conn, merchant_id) >= \
                repository.MAX_ENDPOINTS_PER_MERCHANT:
            raise ApiError(400, "endpoint_limit_reached",
                           f"A merchant has at most {repository.MAX_ENDPOINTS_PER_MERCHANT} "
                           "webhook endpoints; delete one first.")
        row = await repository.insert_endpoint(conn, merchant_id, new)
        await audit.record(conn, actor, merchant_id, endpoint_id, "webhook_endpoint.created", {
            "url": body.url, "enabled_events": body.enabled_events, "primary": primary,
            "disabled": disabled})
    return EndpointWithSecret.model_validate({**row, "secret": secret})


async def update_endpoint(
    services: Services, merchant_id: str, endpoint_id: str, body: EndpointUpdate, *, actor: str
) -> EndpointPublic:
    if body.url is not None:
        await check_url(services, body.url)
    async with services.pool.connection() as conn:
        row = await repository.update_endpoint(
            conn, merchant_id, endpoint_id, url=body.url, enabled_events=body.enabled_events,
            description=body.description, set_description="description" in body.model_fields_set,
            disabled=body.disabled,
        )
        if row is not None:
            await audit.record(conn, actor, merchant_id, endpoint_id, "webhook_endpoint.updated",
                               body.model_dump(exclude_unset=True))
    if row is None:
        raise not_found("webhook endpoint", endpoint_id)
    return public(row)


async def delete_endpoint(
    services: Services, merchant_id: str, endpoint_id: str, *, actor: str
) -> None:
    async with services.pool.connection() as conn, conn.transaction():
        if not await repository.delete_endpoint(conn, merchant_id, endpoint_id):
            raise not_found("webhook endpoint", endpoint_id)
        await audit.record(conn, actor, merchant_id, endpoint_id, "webhook_endpoint.deleted", {})


async def rotate_secret(
    services: Services, merchant_id: str, endpoint_id: str, overlap_seconds: int | None, *,
    actor: str,
) -> EndpointWithSecret:
    overlap = (services.settings.webhooks_secret_overlap_seconds
               if overlap_seconds is None else overlap_seconds)
    secret = new_secret()
    sealed = seal_secret(services.vault, endpoint_id, secret)
    async with services.pool.connection() as conn:
        row = await repository.rotate_secret(conn, merchant_id, endpoint_id, sealed, overlap)
        if row is not None:
            await audit.record(conn, actor, merchant_id, endpoint_id,
                               "webhook_endpoint.secret_rotated", {"overlap_seconds": overlap})
    if row is None:
        raise not_found("webhook endpoint", endpoint_id)
    return EndpointWithSecret.model_validate({**row, "secret": secret})


async def set_primary(
    services: Services, merchant_id: str, body: PrimaryEndpointSet, *, actor: str
) -> tuple[int, EndpointPublic]:
    """Replace the primary endpoint's settings (200), or create it with a secret (201)."""
    async with services.pool.connection() as conn:
        existing = await repository.get_primary_endpoint(conn, merchant_id)
    if existing is None:
        try:
            created = await create_endpoint(services, merchant_id, body, new_id("we"),
                                            actor=actor, primary=True, disabled=body.disabled)
            return 201, created
        except PrimaryExists:  # a concurrent PUT created it first: replace that one
            async with services.pool.connection() as conn:
                existing = await repository.get_primary_endpoint(conn, merchant_id)
            assert existing is not None
    update = EndpointUpdate(url=body.url, enabled_events=body.enabled_events,
                            description=body.description, disabled=body.disabled)
    return 200, await update_endpoint(services, merchant_id, existing["id"], update, actor=actor)


async def send_test(
    services: Services, merchant_id: str, endpoint_id: str | None, *, actor: str
) -> SendTestResult:
    """Send a signed ``webhook.test`` event now and log it as a one-attempt delivery."""
    async with services.pool.connection() as conn:
        endpoint = (await repository.get_endpoint(conn, merchant_id, endpoint_id)
                    if endpoint_id else await repository.get_primary_endpoint(conn, merchant_id))
        if endpoint is None:
            raise not_found("webhook endpoint", endpoint_id or "primary")
        sealed = await repository.signing_ciphertexts(conn, endpoint["id"])
    secrets = [open_secret(services.vault, endpoint["id"], s) for s in sealed]
    now = datetime.now(UTC)
    event_id, delivery_id = new_id("evt_test"), new_id("msg")
    planned = PlannedDelivery(endpoint["id"], merchant_id, event_id, TEST_EVENT_TYPE, now,
                              probe_body(event_id, merchant_id, now))
    settings = services.settings
    async with guarded_client(UrlPolicy.from_settings(settings), max_connections=1) as client:
        result = await send(client, endpoint["url"], delivery_id, planned.payload, secrets,
                            settings.webhooks_timeout_seconds)
    async with services.pool.connection() as conn, conn.transaction():
        await store.record_probe(conn, planned, delivery_id, endpoint["url"], result)
        await audit.record(conn, actor, merchant_id, endpoint["id"], "webhook_endpoint.tested",
                           {"delivery_id": delivery_id, "status_code": result.status_code})
    return SendTestResult(
        delivery_id=delivery_id, endpoint_id=endpoint["id"], url=endpoint["url"],
        success=result.success, status_code=result.status_code, latency_ms=result.latency_ms,
        response_body=result.response_body, error=result.error,
    )


async def resend_delivery(
    services: Services, merchant_id: str, delivery_id: str, *, actor: str
) -> DeliveryPublic:
    """Make the delivery due now (same ``webhook-id`` and body); 409 if its endpoint is off."""
    async with services.pool.connection() as conn, conn.transaction():
        row = await repository.schedule_resend(conn, merchant_id, delivery_id)
        if row is None:
            if await repository.get_delivery(conn, merchant_id, delivery_id):
                raise ApiError(409, "invalid_state", "The delivery's endpoint is disabled or "
                               "deleted; enable it first.")
            raise not_found("webhook delivery", delivery_id)
        await audit.record(conn, actor, merchant_id, delivery_id, "webhook_delivery.resent",
                           {"endpoint_id": row["endpoint_id"]}, entity_type="webhook_delivery")
    return DeliveryPublic.model_validate(row)

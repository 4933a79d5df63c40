"""Idempotency-Key handling for POST routes, as the leading payment APIs do it.

The first request with a key claims it in PostgreSQL (with the object id it will create, its
recovery point) and, once answered, stores the status and exact body bytes. Then:

- same key, same request → the stored answer, byte for byte, same status;
- same key, different request → 422 ``idempotency_key_reused``;
- same key while the first is still running → 409 ``request_in_progress``;
- same key after the first attempt crashed (claimed, unanswered, older than ``STALE_SECONDS``)
  → this request takes the claim over and resumes with the same object id, so a crash in the
  middle never creates a second payment.

Requests rejected by validation never get here, so they do not consume the key. Expected
failures (4xx from ``ApiError``) are stored like successes; an unexpected exception releases
the key so the client can retry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from fastapi.responses import Response
from pydantic import BaseModel

from api import repository
from api.errors import ApiError
from api.services import Services

STALE_SECONDS = 60.0

Action = Callable[[str], Awaitable[tuple[int, BaseModel]]]


def request_hash(method: str, path: str, body: BaseModel) -> bytes:
    """Fingerprint of a request's meaning: equal parameters hash equal, whatever the spacing."""
    canonical = body.model_dump_json(exclude_unset=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).digest()


async def run_idempotent(
    services: Services,
    merchant_id: str,
    key: str | None,
    method: str,
    path: str,
    body: BaseModel,
    new_resource_id: Callable[[], str],
    action: Action,
) -> Response:
    """Run ``action(resource_id)`` at most once per key; answer as described above."""
    if key is None:
        return await _answer(action, new_resource_id())
    fingerprint = request_hash(method, path, body)
    resource_id = new_resource_id()
    async with services.autocommit() as conn:
        existing = await repository.claim_idempotency_key(
            conn, merchant_id, key, fingerprint, method, path, resource_id
        )
        if existing is not None:
            if existing.request_hash != fingerprint:
                raise ApiError(
                    422, "idempotency_key_reused",
                    "This Idempotency-Key was used with a different request.",
                    type="idempotency_error", param=None,
                )
            if existing.response_status is not None and existing.response_body is not None:
                return Response(existing.response_body, existing.response_status,
                                media_type="application/json",
                                headers={"Idempotent-Replayed": "true"})
            taken_over = (
                existing.age_seconds >= STALE_SECONDS
                and await repository.take_over_idempotency_key(
                    conn, merchant_id, key, STALE_SECONDS
                )
            )
            if not taken_over:
                raise ApiError(
                    409, "request_in_progress",
                    "A request with this Idempotency-Key is still in progress; retry later.",
                    type="idempotency_error", headers={"Retry-After": "1"},
                )
            resource_id = existing.resource_id or resource_id
    try:
        response = await _answer(action, resource_id)
    except BaseException:
        async with services.autocommit() as conn:
            await repository.release_idempotency_key(conn, merchant_id, key)
        raise
    async with services.autocommit() as conn:
        await repository.complete_idempotency_key(
            conn, merchant_id, key, response.status_code, bytes(response.body)
        )
    return response


async def _answer(action: Action, resource_id: str) -> Response:
    try:
        status, model = await action(resource_id)
    except ApiError as error:
        return error.response()
    return Response(model.model_dump_json().encode(), status, media_type="application/json")

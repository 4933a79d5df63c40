"""Idempotency-Key handling for POST routes, as the leading payment APIs do it.

The first request with a key claims it in PostgreSQL (with the object id it will create, its
recovery point) and, once answered, stores the status and exact body bytes. Then:

- same key, same request → the stored answer, byte for byte, same status;
- same key, different request → 422 ``idempotency_key_reused``;
- same key while the first is still running → 409 ``request_in_progress``;
- same key after the first attempt crashed (claimed, unanswered, older than the decision budget
  plus ``STALE_MARGIN_SECONDS``) → this request takes the claim over and resumes with the same
  object id, so a crash in the middle never creates a second payment.

Requests rejected by validation never get here, so they do not consume the key. Expected
failures (4xx from ``ApiError``) are stored like successes. A 5xx answer (a dependency down:
"retry shortly") or an exception is not an answer to keep: the key is released for the
client's retry, but keeps its object id, so the retry resumes the same payment or command
(one that was created before the failure is not created twice; a command sent twice under one
id is applied once by the ledger).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Awaitable, Callable

import psycopg
from fastapi.responses import Response
from psycopg_pool import PoolTimeout
from pydantic import BaseModel

from api import repository
from api.errors import ApiError
from api.services import Services

STALE_MARGIN_SECONDS = 15.0
"""An attempt lasts its decision budget plus a few bounded waits (for a PostgreSQL connection,
for the Kafka send); an unanswered claim older than the budget plus this margin was left by an
attempt that died, or that could not release it because PostgreSQL was down."""
RELEASE_TIMEOUT_SECONDS = 0.5
"""Releasing a key after a failure is worth a short wait only: when PostgreSQL is what failed,
the claim goes stale by itself."""

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
    stale_seconds = services.settings.decision_budget_seconds + STALE_MARGIN_SECONDS
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
                existing.age_seconds >= stale_seconds
                and await repository.take_over_idempotency_key(
                    conn, merchant_id, key, stale_seconds
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
        # The failure itself is what the client must hear about, not a failed release.
        with contextlib.suppress(psycopg.Error, PoolTimeout):
            await _release(services, merchant_id, key, stale_seconds)
        raise
    if response.status_code >= 500:
        await _release(services, merchant_id, key, stale_seconds)
        return response
    async with services.autocommit() as conn:
        await repository.complete_idempotency_key(
            conn, merchant_id, key, response.status_code, bytes(response.body)
        )
    return response


async def _release(services: Services, merchant_id: str, key: str,
                   stale_seconds: float) -> None:
    async with services.autocommit(wait_seconds=RELEASE_TIMEOUT_SECONDS) as conn:
        await repository.release_idempotency_key(conn, merchant_id, key, stale_seconds)


async def _answer(action: Action, resource_id: str) -> Response:
    try:
        status, model = await action(resource_id)
    except ApiError as error:
        return error.response()
    return Response(model.model_dump_json().encode(), status, media_type="application/json")

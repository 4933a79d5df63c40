"""One delivery attempt over HTTP: sign, POST, time it, keep the start of the answer.

Used by the sender for every attempt and by ``POST /api/webhooks/test``. The whole exchange —
connecting, sending and reading the answer — has one deadline (``PAYFLOW_WEBHOOKS_TIMEOUT_
SECONDS``, 10 s by default); only a 2xx answer within it is a success. At most
``RESPONSE_BODY_MAX_CHARS`` of the answer are read and kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from api.webhooks.urls import UrlRefused
from ingest.webhook_signature import signature_headers

RESPONSE_BODY_MAX_CHARS = 1000
_READ_LIMIT_BYTES = 4 * RESPONSE_BODY_MAX_CHARS


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status_code: int | None
    """None: no HTTP answer (timeout, connection refused, blocked address)."""
    latency_ms: int
    response_body: str | None
    error: str | None
    """Why this is not a success; None for a 2xx."""

    @property
    def success(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def request_headers(
    secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Every header of one attempt: content type and both signature schemes."""
    return {"Content-Type": "application/json",
            **signature_headers(secrets, webhook_id, timestamp, body)}


async def send(
    client: httpx.AsyncClient,
    url: str,
    webhook_id: str,
    body: bytes,
    secrets: Sequence[str],
    timeout_seconds: float,
) -> AttemptResult:
    """POST ``body`` to ``url`` signed with ``secrets`` (newest first), with a fresh timestamp."""
    headers = request_headers(secrets, webhook_id, int(time.time()), body)
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        async with asyncio.timeout(timeout_seconds):
            async with client.stream("POST", url, content=body, headers=headers,
                                     timeout=timeout_seconds) as response:
                text = await _read_start(response)
    except UrlRefused as refused:
        return AttemptResult(None, elapsed_ms(), None, f"blocked: {refused}")
    except (TimeoutError, httpx.TimeoutException):
        return AttemptResult(None, elapsed_ms(), None, f"timeout after {timeout_seconds:g} s")
    except httpx.HTTPError as error:
        return AttemptResult(None, elapsed_ms(), None, _describe(error))
    status = response.status_code
    error_text = None if 200 <= status < 300 else f"HTTP {status}"
    return AttemptResult(status, elapsed_ms(), text, error_text)


async def _read_start(response: httpx.Response) -> str:
    """The first characters of the answer, without reading an endless body."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _READ_LIMIT_BYTES:
            break
    return b"".join(chunks).decode("utf-8", "replace")[:RESPONSE_BODY_MAX_CHARS]


def _describe(error: httpx.HTTPError) -> str:
    detail = str(error) or type(error).__name__
    return f"{type(error).__name__}: {detail}"[:500]

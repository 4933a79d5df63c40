"""``/healthz`` (the process is up) and ``/readyz`` (Kafka, PostgreSQL and Redis answer)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    checks = {
        "postgres": _check_postgres(services),
        "redis": services.redis.ping(),
        "kafka": services.producer.client.fetch_all_metadata(),
        }
    results = await asyncio.gather(
        *(asyncio.wait_for(check, timeout=2) for check in checks.values()),
        return_exceptions=True,
    )
    status = {
        name: "ok" if not isinstance(result, BaseException) else f"unavailable: {result!r}"[:200]
        for name, result in zip(checks, results, strict=True)
    }
    ready = all(value == "ok" for value in status.values())
    return JSONResponse({"ready": ready, "checks": status}, status_code=200 if ready else 503,
                        headers=None if ready else {"Retry-After": "5"})


async def _check_postgres(services: ServicesDep) -> None:
    async with services.pool.connection(timeout=2) as conn:
        await conn.execute("SELECT 1")

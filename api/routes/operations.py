"""Operational views: the ledger's last reconciliation (for the dashboard) and ``/metrics``
(Prometheus text format, for scraping on the private network).

A merchant sees whether the last reconciliation passed; the problem list, which names other
merchants' payments and accounts, is shown only to the ``admin`` and ``analyst`` roles.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from api.deps import ServicesDep

router = APIRouter(tags=["operations"])
STAFF_ROLES = frozenset({"admin", "analyst"})


class Reconciliation(BaseModel):
    ran_at: datetime | None
    ok: bool | None
    checks: int
    problem_count: int
    problems: list[str] | None
    """Only for staff; null for merchants."""


async def _last_run(services: ServicesDep) -> dict[str, Any] | None:
    async with services.pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT finished_at, ok, checks, problems FROM reconciliation_runs "
            "ORDER BY id DESC LIMIT 1")
        row = await cursor.fetchone()
    if row is None:
        return None
    return {"ran_at": row[0], "ok": row[1], "checks": row[2], "problems": row[3]}


@router.get("/api/ledger/reconciliation", response_model=Reconciliation)
async def reconciliation(request: Request, services: ServicesDep) -> Reconciliation:
    """The last ``payflow reconcile`` run: when, whether everything tied, how many problems."""
    last = await _last_run(services)
    if last is None:
        return Reconciliation(ran_at=None, ok=None, checks=0, problem_count=0, problems=None)
    session = getattr(request.state, "session", None)
    staff = session is not None and getattr(session, "role", None) in STAFF_ROLES
    return Reconciliation(ran_at=last["ran_at"], ok=last["ok"], checks=last["checks"],
                          problem_count=len(last["problems"]),
                          problems=last["problems"] if staff else None)


@router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> str:
    last = await _last_run(services)
    shedding = getattr(request.app.state, "shedding", None)
    lines = [
        "# HELP payflow_reconciliation_ok 1 if the last reconciliation found no problem.",
        "# TYPE payflow_reconciliation_ok gauge",
        f"payflow_reconciliation_ok {int(bool(last and last['ok']))}",
        "# HELP payflow_reconciliation_problems Problems found by the last reconciliation.",
        "# TYPE payflow_reconciliation_problems gauge",
        f"payflow_reconciliation_problems {len(last['problems']) if last else 0}",
    ]
    if shedding is not None:
        lines += [
            "# HELP payflow_api_in_flight Requests being served by this API process.",
            "# TYPE payflow_api_in_flight gauge",
            f"payflow_api_in_flight {shedding.in_flight}",
            "# HELP payflow_api_shed_total Requests refused with 503 for lack of capacity.",
            "# TYPE payflow_api_shed_total counter",
            f"payflow_api_shed_total {shedding.shed}",
            "# HELP payflow_api_in_flight_limit The adaptive bound of in-flight requests.",
            "# TYPE payflow_api_in_flight_limit gauge",
            f"payflow_api_in_flight_limit {shedding.limit:.1f}",
            "# HELP payflow_api_latency_share The share of the latency target the adaptive "
            "bound lets the mean wait take.",
            "# TYPE payflow_api_latency_share gauge",
            f"payflow_api_latency_share {shedding.share:.3f}",
            "# HELP payflow_api_event_loop_lag_seconds How late the API's event loop ran a timer "
            "in the last second (what a request waits before it is seen).",
            "# TYPE payflow_api_event_loop_lag_seconds gauge",
            f"payflow_api_event_loop_lag_seconds {shedding.loop_lag:.4f}",
        ]
    return "\n".join(lines) + "\n"

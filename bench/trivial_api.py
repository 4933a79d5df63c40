"""The API benchmark's reference: a trivial FastAPI endpoint served exactly as ``payflow api``
is (uvicorn with ``payflow.cli.processes.UVICORN_OPTIONS``), so the difference between the two
figures is what payflow's ``POST /v1/payments`` does beyond parsing JSON and answering.

    .venv/bin/python -m bench.trivial_api PORT
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from fastapi import FastAPI

from payflow.cli.processes import UVICORN_OPTIONS

app = FastAPI(title="trivial reference")


@app.get("/healthz")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/payments", status_code=202)
async def create(body: dict[str, Any]) -> dict[str, Any]:
    """Parse the body as JSON, answer a small JSON object: no auth, storage or Kafka."""
    return {"id": "pay_trivial", "status": "pending", "amount": body.get("amount")}


def main() -> None:
    port = int(sys.argv[1])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", **UVICORN_OPTIONS)


if __name__ == "__main__":
    main()

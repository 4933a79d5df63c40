"""payflow's deployables as child processes inside a benchmark's sandbox, as ``payflow demo``
and the test harness run them: start, wait until the API answers ``/readyz``, warm up with one
payment decided end to end, and point at every process for CPU and memory figures.

Benchmark settings (environment of every child): WARNING logs; the per-merchant rate limit
lifted (one benchmark merchant sends everything, and the benchmark measures capacity, not the
limiter's policy; the limiter still runs on every request).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson

from bench import procstat
from bench.http_load import Client, HttpError
from bench.sandbox import Sandbox
from payflow.merchants import create_or_add_key
from payflow.settings import Settings
from payflow.supervisor import Child

BENCH_ENV = {
    "PAYFLOW_RATE_LIMIT_PER_SECOND": "1000000",
    "PAYFLOW_RATE_LIMIT_BURST": "1000000",
}
TEST_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


class StackError(RuntimeError):
    """A process of the benchmark's stack exited or never became ready."""


def prepare(box: Sandbox, model: bool = True) -> str:
    """A bootstrapped fraud model (optional) and a merchant; returns its API key."""
    if model:
        from payflow.cli.model import bootstrap_model  # scikit-learn: only when it is needed

        bootstrap_model(box.settings)
    merchant = asyncio.run(create_or_add_key(box.settings.database_url, "Bench Merchant",
                                             "bench@payflow.test"))
    return merchant.api_key


def start(box: Sandbox, names: tuple[str, ...], timeout_seconds: float = 90) -> dict[str, Child]:
    """Start ``payflow <name>`` for each name; wait for the API's ``/readyz`` if one is among
    them. The children are stopped by the sandbox on the way out."""
    children = {name: box.start(name, name) for name in names}
    if "api" in names:
        wait_ready(box, f"{box.api_base_url}/readyz", timeout_seconds)
    return children


def wait_ready(box: Sandbox, url: str, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        check_alive(box)
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise StackError(f"{url} was not ready within {timeout_seconds:.0f} s; logs in "
                     f"{box.supervisor.log_dir}")


def check_alive(box: Sandbox) -> None:
    if dead := box.supervisor.dead():
        child = dead[0]
        raise StackError(f"{child.name} exited ({child.process.returncode}): "
                         f"{_tail(child.log_path)}")


def payment_body() -> bytes:
    return orjson.dumps({"amount": 2500, "currency": "usd",
                         "payment_method": {"type": "card", "card": TEST_CARD}})


async def warm_up(box: Sandbox, key: str, timeout_seconds: float = 90) -> None:
    """One payment through the whole pipeline: consumers have joined their groups and own
    their partitions, so the measurement starts at steady state."""
    client = Client("127.0.0.1", box.settings.api_port)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    try:
        answer = await client.request("POST", "/v1/payments", headers, payment_body())
        if answer.status not in (201, 202):
            raise StackError(f"warm-up payment answered {answer.status}: {answer.body[:300]!r}")
        payment_id = orjson.loads(answer.body)["transaction"]["id"]
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            check_alive(box)
            found = await client.request("GET", f"/v1/payments/{payment_id}", headers)
            if orjson.loads(found.body).get("status") != "pending":
                return
            await asyncio.sleep(0.3)
    except HttpError as error:
        raise StackError(f"warm-up failed: {error}") from error
    finally:
        client.close()
    raise StackError(f"the pipeline decided nothing within {timeout_seconds:.0f} s; logs in "
                     f"{box.supervisor.log_dir}")


def service_pids(settings: Settings) -> dict[str, list[int]]:
    """The shared services' processes: the local broker and Redis, from this checkout's pid
    files, else the processes listening on their configured ports (services that another
    checkout started: without this their CPU per payment read 0.00)."""
    kafka_port = int(settings.kafka_bootstrap.split(",")[0].rpartition(":")[2])
    redis_port = urlsplit(settings.redis_url).port or 6379
    found = {}
    for name, pid_file, port in (("kafka", settings.home / "kafka" / "kafka.pid", kafka_port),
                                 ("redis", settings.home / "redis" / "redis.pid", redis_port)):
        try:
            found[name] = [int(pid_file.read_text().strip())]
        except (OSError, ValueError):
            if pids := procstat.pids_listening(port):
                found[name] = pids
    return found


def _tail(path: Path, size: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return "(no log)"

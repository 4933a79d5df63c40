"""``payflow demo``: the whole stack in one command, with a trickle of payments.

Services up, migrations, topics, a demo merchant with a fresh API key, then the API, stream
worker, ledger consumer and dashboard as child processes, and simulated payments with a live
one-line status until Ctrl-C (or ``--duration``), which stops every child cleanly. A child
that exits on its own (a stuck worker exits on purpose) is restarted with backoff; the demo
ends when one keeps dying (``payflow.supervisor.RestartPolicy``).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import Counter, deque
from collections.abc import Callable

import httpx
import typer
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from ingest.simulator import TrafficSimulator
from ingest.topics import PAYMENT_DECISIONS, PAYMENT_REQUESTS
from payflow.cli.model import bootstrap_model
from payflow.cli.user import ensure_user
from payflow.db.migrate import migrate
from payflow.lag import group_lag
from payflow.merchants import create_or_add_key
from payflow.services import ServiceError, all_services
from payflow.services.base import port_open
from payflow.settings import Settings, get_settings
from payflow.supervisor import RestartPolicy, Supervisor
from payflow.topics import create_topics

DEMO_EMAIL = "demo@payflow.test"
DEMO_PASSWORD = "payflow-demo-password"  # DEV ONLY: the demo's dashboard login, printed on start


def demo(
    rate: float = typer.Option(2.0, min=0.0, max=200.0, help="Simulated payments per second"),
    duration: float = typer.Option(0.0, min=0.0, help="Stop after this many seconds (0: Ctrl-C)"),
    dashboard: bool = typer.Option(True, help="Also start the Streamlit dashboard"),
) -> None:
    """Start everything and send simulated payments, with a live status line."""
    _stop_on_interrupt_or_terminate()
    settings = get_settings()
    _prepare(settings)
    merchant = asyncio.run(create_or_add_key(settings.database_url, "Demo Merchant", DEMO_EMAIL))
    key = merchant.api_key
    asyncio.run(ensure_user(settings.database_url, DEMO_EMAIL, DEMO_PASSWORD, "merchant",
                            merchant.merchant_id))
    supervisor = Supervisor(settings.home / "logs", restart=RestartPolicy())
    try:
        _start_children(settings, supervisor, key, dashboard)
        _wait_decided(settings, supervisor, key)
        _introduce(settings, key, dashboard)
        asyncio.run(_trickle(settings, supervisor, key, rate, duration))
    except KeyboardInterrupt:
        pass
    finally:
        typer.echo("\ndemo: stopping the API, worker, feature-log writer, ledger, analytics and "
                   "dashboard ...")
        supervisor.stop_all()
        typer.echo("demo: stopped. Services keep running; `payflow services down` stops them.")


def _stop_on_interrupt_or_terminate() -> None:
    """Ctrl-C and SIGTERM both end the demo through its clean-up (stopping every child).

    SIGINT is reset to Python's handler because a shell starting the demo in the background
    leaves it ignored; SIGTERM (``kill``, a supervisor) would otherwise end the process without
    stopping its children.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def _step(text: str) -> None:
    typer.secho(f"demo: {text}", fg=typer.colors.CYAN)


def _prepare(settings: Settings) -> None:
    _step("starting Kafka, PostgreSQL and Redis")
    try:
        for service in all_services(settings):
            service.start()
    except ServiceError as error:
        typer.secho(f"demo: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from error
    _step("applying migrations and creating topics")
    migrate(settings.database_url)
    asyncio.run(create_topics(settings))
    if bootstrap_model(settings) is not None:
        _step("no fraud model was promoted: trained and promoted a first one on synthetic data")


def _start_children(settings: Settings, supervisor: Supervisor, key: str, dashboard: bool) -> None:
    ports = [("API", settings.api_port)] + ([("dashboard", settings.dashboard_port)] * dashboard)
    for what, port in ports:
        if port_open(settings.api_host, port):
            typer.secho(f"demo: port {port} for the {what} is taken (another demo running?)",
                        fg=typer.colors.RED, err=True)
            raise typer.Exit(2)
    _step("starting the stream worker, feature-log writer, ledger consumer, analytics consumer "
          "and API")
    supervisor.start("worker", "worker")
    supervisor.start("feature-log", "feature-log")
    supervisor.start("ledger", "ledger")
    supervisor.start("webhooks", "webhooks")
    supervisor.start("analytics", "analytics")
    supervisor.start("api", "api")
    if dashboard:
        supervisor.start("dashboard", "dashboard")
    _wait_ready(supervisor, "API", f"http://{settings.api_host}:{settings.api_port}/readyz")
    if dashboard:
        _wait_ready(supervisor, "dashboard",
                    f"http://{settings.api_host}:{settings.dashboard_port}/_stcore/health")


def _wait_ready(supervisor: Supervisor, what: str, url: str) -> None:
    _until(supervisor, lambda: httpx.get(url, timeout=2).status_code == 200,
           f"the {what} was not ready")


def _wait_decided(settings: Settings, supervisor: Supervisor, key: str) -> None:
    """Send one payment and wait until it is decided: the worker and the consumers have joined
    their groups and own their partitions, so the trickle meets a stack that answers (before,
    the first seconds' payments were shed with 503 or answered ``pending``)."""
    _step("waiting for the stream worker to decide a first payment")
    base = f"http://{settings.api_host}:{settings.api_port}"
    headers = {"Authorization": f"Bearer {key}"}
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    payment_id: str | None = None

    def decided() -> bool:
        nonlocal payment_id
        if payment_id is None:
            response = httpx.post(f"{base}/v1/payments", headers=headers, timeout=10, json={
                "amount": 100, "currency": "usd", "description": "demo warm-up",
                "payment_method": {"type": "card", "card": card}})
            if response.status_code in (201, 202):
                payment_id = response.json()["transaction"]["id"]
            return False
        response = httpx.get(f"{base}/v1/payments/{payment_id}", headers=headers, timeout=10)
        return bool(response.json()["status"] != "pending")

    _until(supervisor, decided, "no payment was decided")


def _until(supervisor: Supervisor, done: Callable[[], bool], failure: str,
           timeout_seconds: float = 90) -> None:
    """Call ``done`` every half second until it says so (an HTTP error counts as not yet); end
    the demo if a child has died, or with ``failure`` after ``timeout_seconds``."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if dead := supervisor.dead():
            raise typer.Exit(_report_dead(dead))
        try:
            if done():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    typer.secho(f"demo: {failure} in {timeout_seconds:.0f} s; see {supervisor.log_dir}",
                fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _report_dead(dead: list) -> int:  # type: ignore[type-arg]
    for child in dead:
        typer.secho(f"demo: {child.name} exited ({child.process.returncode}) after "
                    f"{child.restarts} restarts; log: {child.log_path}",
                    fg=typer.colors.RED, err=True)
    return 2


def _introduce(settings: Settings, key: str, dashboard: bool) -> None:
    base = f"http://{settings.api_host}:{settings.api_port}"
    typer.echo("")
    typer.secho(f"  API:        {base}  (OpenAPI docs at {base}/docs)", bold=True)
    if dashboard:
        dashboard_url = f"http://{settings.api_host}:{settings.dashboard_port}"
        typer.secho(f"  Dashboard:  {dashboard_url}", bold=True)
        typer.secho(f"  Login:      {DEMO_EMAIL} / {DEMO_PASSWORD}  (DEV ONLY demo password)",
                    bold=True)
    typer.secho(f"  API key:    {key}", bold=True)
    typer.echo(f"  Logs:       {settings.home / 'logs'}")
    typer.echo("\n  Try it:")
    typer.echo(f"""    curl -s {base}/v1/payments -H 'Authorization: Bearer {key}' \\
      -H 'Content-Type: application/json' -H "Idempotency-Key: $(uuidgen || date +%s%N)" \\
      -d '{{"amount": 2500, "currency": "usd", "payment_method": {{"type": "card",
           "card": {{"number": "4242424242424242", "exp_month": 12, "exp_year": 2030,
                    "cvc": "123"}}}}}}'
""")
    typer.echo("  Press Ctrl-C to stop.\n")


async def _trickle(
    settings: Settings, supervisor: Supervisor, key: str, rate: float, duration: float
) -> None:
    base = f"http://{settings.api_host}:{settings.api_port}"
    simulator = TrafficSimulator()
    statuses: Counter[str] = Counter()
    latencies_ms: deque[float] = deque(maxlen=200)
    sent_times: deque[float] = deque(maxlen=1000)
    started = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()

    async def send_one(client: httpx.AsyncClient) -> None:
        t0 = time.monotonic()
        try:
            response = await client.post("/v1/payments", json=simulator.next_payment())
            body = response.json()
            status = body.get("transaction", {}).get("status") or f"http {response.status_code}"
        except httpx.HTTPError as error:
            status = type(error).__name__
        statuses[status] += 1
        latencies_ms.append((time.monotonic() - t0) * 1000)

    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as client, _LagProbe(settings) as lag:
        next_send = time.monotonic()
        last_status = 0.0
        while duration <= 0 or time.monotonic() - started < duration:
            now = time.monotonic()
            if rate > 0 and now >= next_send and len(tasks) < 100:
                task = asyncio.create_task(send_one(client))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent_times.append(now)
                next_send += 1.0 / rate
            if now - last_status >= 1.0:
                if dead := supervisor.dead():
                    raise typer.Exit(_report_dead(dead))
                _print_status(now - started, sent_times, statuses, latencies_ms, await lag.read())
                last_status = now
            await asyncio.sleep(min(0.05, max(0.0, next_send - time.monotonic())))
        if tasks:
            await asyncio.wait(tasks, timeout=15)
    _print_status(time.monotonic() - started, sent_times, statuses, latencies_ms, await lag.read())


def _print_status(elapsed: float, sent: deque[float], statuses: Counter[str],
                  latencies_ms: deque[float], lags: dict[str, int]) -> None:
    now = time.monotonic()
    recent = sum(1 for t in sent if now - t <= 5.0) / 5.0
    ordered = sorted(latencies_ms)
    p50 = ordered[len(ordered) // 2] if ordered else 0.0
    outcome = " ".join(f"{name}={count}" for name, count in statuses.most_common())
    lag_text = " ".join(f"{name}={value}" for name, value in lags.items())
    line = (f"[{elapsed:6.0f}s] {recent:5.1f}/s  total={sum(statuses.values())}  {outcome}  "
            f"p50={p50:.0f}ms  lag: {lag_text}")
    end = "\r" if sys.stdout.isatty() else "\n"
    sys.stdout.write(line.ljust(110)[:160] + end)
    sys.stdout.flush()


class _LagProbe:
    """Reads the stream worker's and ledger's consumer lag for the status line."""

    def __init__(self, settings: Settings) -> None:
        from streams.side_consumers import ROUTE_GROUP  # the streams package: not at every
        # payflow command's start

        self.settings = settings
        self.route_group = f"{settings.topic_prefix}{ROUTE_GROUP}"
        self.admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)

    async def __aenter__(self) -> _LagProbe:
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def read(self) -> dict[str, int]:
        prefix = self.settings.topic_prefix
        try:
            return {
                "streams": await group_lag(self.admin, self.consumer, self.route_group,
                                           PAYMENT_REQUESTS.name_for(prefix)),
                "ledger": await group_lag(self.admin, self.consumer, f"{prefix}payflow-ledger",
                                          PAYMENT_DECISIONS.name_for(prefix)),
            }
        except Exception:
            return {}

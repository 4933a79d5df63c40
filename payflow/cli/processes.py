"""The deployables, one command each: ``payflow api | worker | feature-log | ledger | analytics |
webhooks | dashboard``.

Each is a composition root: it reads the settings once and builds its adapters; SIGTERM and
Ctrl-C stop it cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import typer

from payflow.logs import configure_logging
from payflow.settings import REPO_ROOT, get_settings

UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "uvloop", "http": "httptools", "access_log": False, "timeout_graceful_shutdown": 10,
}
"""How ``payflow api`` is served; the API benchmark serves its trivial reference endpoint with
the same options, so the two figures differ only by what payflow's endpoint does."""


def api(
    port: int = typer.Option(None, help="Port to bind (default PAYFLOW_API_PORT)"),
) -> None:
    """Serve the merchant API with uvicorn."""
    import uvicorn

    settings = get_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=settings.api_host,
        port=port or settings.api_port,
        log_level=settings.log_level.lower(),
        **UVICORN_OPTIONS,
    )


def worker() -> None:
    """Run the Faust stream worker (risk features, scoring, decisions)."""
    import faust

    from streams.agents import register_agents
    from streams.app import create_app, quiet_garbage_collector

    settings = get_settings()
    app = create_app(settings)
    register_agents(app, settings)
    quiet_garbage_collector()
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


def ledger() -> None:
    """Run the ledger consumer: apply decisions to PostgreSQL, publish payment events."""
    from ledger.consumer import LedgerConsumer

    settings = get_settings()
    configure_logging(settings.log_level)

    async def main() -> None:
        consumer = LedgerConsumer(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, consumer.stop)
        await consumer.run()

    asyncio.run(main())


def feature_log() -> None:
    """Run the feature-log writer: every decision's features into PostgreSQL, for training."""
    from payflow.watchdog import Watchdog
    from streams.side_consumers import materialize_feature_log

    settings = get_settings()
    configure_logging(settings.log_level)

    async def main() -> None:
        watchdog = Watchdog(settings)
        writing = asyncio.create_task(materialize_feature_log(settings, watchdog))
        liveness = asyncio.create_task(watchdog.run(), name="liveness")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, writing.cancel)
        try:
            await writing
        except asyncio.CancelledError:  # stopped: the consumer committed what it wrote
            pass
        finally:
            liveness.cancel()

    asyncio.run(main())


def analytics() -> None:
    """Run the analytics consumer: keep the dashboard's rollups current from the public events."""
    from streams.rollups.consumer import AnalyticsConsumer

    settings = get_settings()
    configure_logging(settings.log_level)

    async def main() -> None:
        consumer = AnalyticsConsumer(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, consumer.stop)
        await consumer.run()

    asyncio.run(main())


def webhooks() -> None:
    """Run the webhook sender: deliver payment events to merchants' endpoints, with retries."""
    from api.webhooks.sender.process import WebhookSender

    settings = get_settings()
    configure_logging(settings.log_level)
    problems = settings.check_production()
    if problems:
        raise SystemExit("refusing to start in production: " + "; ".join(problems))

    async def main() -> None:
        sender = WebhookSender(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, sender.stop)
        await sender.run()

    asyncio.run(main())


def dashboard(
    port: int = typer.Option(None, help="Port to bind (default PAYFLOW_DASHBOARD_PORT)"),
) -> None:
    """Serve the Streamlit dashboard (it talks to the API only)."""
    settings = get_settings()
    command = [
        sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "dashboard" / "app.py"),
        "--server.port", str(port or settings.dashboard_port),
        "--server.address", settings.api_host,
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]
    os.execv(sys.executable, command)

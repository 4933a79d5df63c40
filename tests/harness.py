"""The integration test harness: real services, isolated per test session.

Where the services come from, in order:

1. already reachable at the addresses in the settings (``PAYFLOW_KAFKA_BOOTSTRAP``,
   ``PAYFLOW_DATABASE_URL``, ``PAYFLOW_REDIS_URL``) — CI and ``make test`` start them first;
2. a Docker engine answers → throwaway containers via testcontainers;
3. otherwise the project's own scripts start them (``payflow services up`` does the same).

If none works the session fails with the reason; integration tests never skip.

Isolation: a database ``payflow_test_<run>`` created and migrated for the session and dropped
after, and a topic prefix ``test.<run>.`` on the shared broker (topics deleted after).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from payflow.db.databases import drop_database
from payflow.db.migrate import migrate
from payflow.merchants import CreatedMerchant, create_or_add_key
from payflow.services import ServiceError, all_services
from payflow.services.base import port_open
from payflow.settings import Settings
from payflow.supervisor import RestartPolicy, Supervisor, free_port
from payflow.topics import create_topics, delete_topics
from tests.webhooks_support import STACK_WEBHOOKS_ENV

RUN_ID = uuid.uuid4().hex[:8]


@dataclass
class IsolatedEnvironment:
    settings: Settings
    """Settings pointing at this session's database and topic prefix."""
    admin_database_url: str
    env: dict[str, str]
    """The same settings as environment variables, for child processes."""
    cleanups: list[Any] = field(default_factory=list)

    def teardown(self) -> None:
        for cleanup in reversed(self.cleanups):
            cleanup()

    def create_merchant(self, name: str = "Test Merchant") -> CreatedMerchant:
        email = f"{name.lower().replace(' ', '-')}-{uuid.uuid4().hex[:8]}@example.test"
        return asyncio.run(create_or_add_key(self.settings.database_url, name, email))


def prepare_environment(services: Settings | None = None) -> IsolatedEnvironment:
    """``services``: settings naming a Kafka, PostgreSQL and Redis the caller runs itself
    (``tests/faults/private_services.py``), used as they are; their ``home`` becomes the
    processes' home too."""
    base = services or Settings()
    env = dict(os.environ)
    if services is None and not _reachable(base):
        env.update(_start_services(base))
        base = Settings(**_settings_overrides(env))
    database = f"payflow_test_{RUN_ID}"
    database_url = _with_database(base.database_url, database)
    overrides = {
        "PAYFLOW_DATABASE_URL": database_url,
        "PAYFLOW_TOPIC_PREFIX": f"test.{RUN_ID}.",
        "PAYFLOW_KAFKA_BOOTSTRAP": base.kafka_bootstrap,
        "PAYFLOW_REDIS_URL": base.redis_url,
        "PAYFLOW_ENVIRONMENT": "test",
        "PAYFLOW_LOG_LEVEL": "INFO",
        # Tests check outcomes, not speed (benchmarks measure that): a generous budget keeps
        # a loaded CI machine from turning a synchronous answer into 202 pending.
        "PAYFLOW_DECISION_BUDGET_SECONDS": "10",
        # ... and a burst of up to 50 concurrent requests (the idempotency race) is always
        # admitted, however slow the machine: tests check outcomes, not the shedding policy,
        # which tests/faults/test_overload.py exercises with a floor of its own.
        "PAYFLOW_API_MIN_IN_FLIGHT": "64",
        # The sandbox's clocks, short enough to watch in a test.
        "PAYFLOW_BANK_TRANSFER_CLEARING_SECONDS": "1",
        "PAYFLOW_SANDBOX_DISPUTE_SECONDS": "1",
    }
    if services is not None:
        overrides["PAYFLOW_HOME"] = str(services.home)
    env.update(overrides)
    settings = Settings(**_settings_overrides(overrides), home=base.home)
    test_env = IsolatedEnvironment(settings, base.database_url, env)
    _create_database(base.database_url, database)
    test_env.cleanups.append(lambda: drop_database(base.database_url, database))
    migrate(database_url)
    asyncio.run(create_topics(settings))
    test_env.cleanups.append(lambda: asyncio.run(delete_topics(settings)))
    return test_env


def derived_environment(base: IsolatedEnvironment, name: str) -> IsolatedEnvironment:
    """A database and topic prefix of their own beside the session's, on the same services:
    for tests whose messages must not reach the session's topics (poison, for example).
    Its ``teardown`` drops both."""
    database = f"payflow_test_{RUN_ID}_{name}"
    database_url = _with_database(base.settings.database_url, database)
    prefix = f"{base.settings.topic_prefix}{name}."
    settings = base.settings.model_copy(update={"database_url": database_url,
                                                "topic_prefix": prefix})
    env = {**base.env, "PAYFLOW_DATABASE_URL": database_url, "PAYFLOW_TOPIC_PREFIX": prefix}
    derived = IsolatedEnvironment(settings, base.admin_database_url, env)
    _create_database(base.admin_database_url, database)
    derived.cleanups.append(lambda: drop_database(base.admin_database_url, database))
    migrate(database_url)
    asyncio.run(create_topics(settings))
    derived.cleanups.append(lambda: asyncio.run(delete_topics(settings)))
    return derived


def _settings_overrides(env: dict[str, str]) -> dict[str, Any]:
    mapping = {"PAYFLOW_DATABASE_URL": "database_url", "PAYFLOW_TOPIC_PREFIX": "topic_prefix",
               "PAYFLOW_KAFKA_BOOTSTRAP": "kafka_bootstrap", "PAYFLOW_REDIS_URL": "redis_url",
               "PAYFLOW_ENVIRONMENT": "environment", "PAYFLOW_LOG_LEVEL": "log_level"}
    return {mapping[k]: v for k, v in env.items() if k in mapping}


def _reachable(settings: Settings) -> bool:
    kafka_host, _, kafka_port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    pg = urlsplit(settings.database_url)
    redis = urlsplit(settings.redis_url)
    return (
        port_open(kafka_host, int(kafka_port))
        and port_open(pg.hostname or "127.0.0.1", pg.port or 5432)
        and port_open(redis.hostname or "127.0.0.1", redis.port or 6379)
    )


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    result = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=20)
    return result.returncode == 0


def _start_services(settings: Settings) -> dict[str, str]:
    """Start the services; return environment overrides that point at them."""
    if _docker_engine():
        return _start_containers()
    try:
        for service in all_services(settings):
            service.start()
    except ServiceError as error:
        pytest.fail(f"Kafka, PostgreSQL and Redis are not reachable and could not be started: "
                    f"{error}. Run `payflow services up` and see its message.", pytrace=False)
    return {}


def _start_containers() -> dict[str, str]:  # pragma: no cover - needs a Docker engine
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    kafka = KafkaContainer("apache/kafka:4.1.1").with_kraft().start()
    postgres = PostgresContainer("postgres:15", username="payflow", password="payflow",
                                 dbname="payflow").start()
    redis = RedisContainer("redis:7").start()
    pg_url = postgres.get_connection_url().replace("postgresql+psycopg2://", "postgresql://")
    return {
        "PAYFLOW_KAFKA_BOOTSTRAP": kafka.get_bootstrap_server(),
        "PAYFLOW_DATABASE_URL": pg_url,
        "PAYFLOW_REDIS_URL": f"redis://{redis.get_container_host_ip()}:"
                             f"{redis.get_exposed_port(6379)}/0",
    }


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _create_database(admin_url: str, database: str) -> None:
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')  # type: ignore[arg-type]
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL at {admin_url} refused the test database: {error}",
                    pytrace=False)


@dataclass
class RunningStack:
    environment: IsolatedEnvironment
    supervisor: Supervisor
    base_url: str

    @classmethod
    def start(cls, environment: IsolatedEnvironment,
              restart: RestartPolicy | None = None) -> RunningStack:
        """Start the processes; with ``restart``, the supervisor restarts one that exits (the
        default, none: fault tests kill and start processes themselves)."""
        port = free_port()
        env = {**environment.env, "PAYFLOW_API_PORT": str(port),
               "PAYFLOW_WORKER_WEB_PORT": str(free_port())}
        run = environment.settings.topic_prefix.strip(".").replace(".", "-")  # test-<run>...
        log_dir = environment.settings.home / "logs" / run
        supervisor = Supervisor(log_dir, env=env, restart=restart)
        supervisor.start("worker", "worker")
        supervisor.start("feature-log", "feature-log")
        supervisor.start("ledger", "ledger")
        supervisor.start("webhooks", "webhooks", extra_env=STACK_WEBHOOKS_ENV)
        supervisor.start("analytics", "analytics")
        supervisor.start("api", "api")
        stack = cls(environment, supervisor, f"http://127.0.0.1:{port}")
        try:
            stack.wait_ready(timeout_seconds=90)
            stack.warm_up(timeout_seconds=90)
        except BaseException:
            supervisor.stop_all()
            raise
        return stack

    def wait_ready(self, timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if dead := self.supervisor.dead():
                pytest.fail(f"{dead[0].name} exited: {_tail(dead[0].log_path)}", pytrace=False)
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        pytest.fail(f"the API was not ready within {timeout_seconds}s", pytrace=False)

    def warm_up(self, timeout_seconds: float) -> None:
        """Send one payment and wait until it is decided: consumers have joined their groups
        and own their partitions, so tests see steady-state latency from the first request."""
        key = self.environment.create_merchant("Warm-up Merchant").api_key
        headers = {"Authorization": f"Bearer {key}"}
        card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
        created = httpx.post(f"{self.base_url}/v1/payments", headers=headers, timeout=10, json={
            "amount": 100, "currency": "usd", "payment_method": {"type": "card", "card": card}})
        assert created.status_code in (201, 202), created.text
        payment_id = created.json()["transaction"]["id"]
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            status = httpx.get(f"{self.base_url}/v1/payments/{payment_id}", headers=headers,
                               timeout=10).json()["status"]
            if status != "pending":
                return
            time.sleep(0.3)
        pytest.fail(f"the pipeline did not decide a payment within {timeout_seconds}s; logs in "
                    f"{self.supervisor.log_dir}", pytrace=False)

    def stop(self) -> None:
        self.supervisor.stop_all()

    def log(self, name: str) -> str:
        return _tail(self.supervisor.log_dir / f"{name}.log", 100_000)


def _tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return "(no log)"

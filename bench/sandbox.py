"""A benchmark's own corner of the shared services, removed afterwards even on Ctrl-C.

``sandbox()`` gives a benchmark a database ``payflow_bench_<run>`` (created and migrated), a
topic prefix ``bench.<run>.`` (the catalog's topics created), free ports for an API and a
worker, a worker name of its own, WARNING-level logs, and a ``Supervisor`` for child processes.
On the way out (normal end, an exception, Ctrl-C or SIGTERM) it stops the children, deletes
the prefix's topics and consumer groups, drops the database, removes the worker's local table
state and the prefix's Redis keys; Ctrl-C is ignored while it cleans up so a second one cannot
leave half of it behind (SIGTERM likewise). Everything is on 127.0.0.1 (the configured services).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis

from payflow.db.databases import create_database, drop_database
from payflow.db.migrate import migrate
from payflow.settings import REPO_ROOT, Settings
from payflow.supervisor import Child, Supervisor, free_port
from payflow.topics import create_topics, delete_consumer_groups, delete_topics

log = logging.getLogger("bench")
STOP_GRACE_SECONDS = 5.0
"""How long a benchmark's child gets to stop on SIGTERM before SIGKILL: its data is thrown away
with the sandbox, so there is nothing to flush, and a quick run has minutes, not hours."""


@dataclass
class Sandbox:
    run_id: str
    settings: Settings
    """Settings pointing at the sandbox's database, topic prefix and ports."""
    env: dict[str, str]
    """The same as environment variables, for child processes."""
    admin_database_url: str
    supervisor: Supervisor

    @property
    def database(self) -> str:
        return urlsplit(self.settings.database_url).path.lstrip("/")

    @property
    def api_base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    def start(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> Child:
        """Start ``payflow <args>`` as a child process with the sandbox's environment."""
        return self.supervisor.start(name, *args, extra_env=extra_env)

    def start_python(self, name: str, *args: str) -> Child:
        """Start ``python <args>`` (e.g. ``-m bench.trivial_api``) as a child process that the
        sandbox stops like the others, logging to ``<log dir>/<name>.log``."""
        self.supervisor.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.supervisor.log_dir / f"{name}.log"
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen([sys.executable, *args], stdout=log_file,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=self.env, cwd=REPO_ROOT, start_new_session=True)
        child = Child(name, process, log_path)
        self.supervisor.children.append(child)
        return child


def with_database(url: str, database: str) -> str:
    return urlsplit(url)._replace(path=f"/{database}").geturl()


@contextlib.contextmanager
def sandbox(label: str, overrides: dict[str, str] | None = None) -> Iterator[Sandbox]:
    """A fresh database and topic prefix for benchmark ``label``, cleaned up on the way out.

    ``overrides`` are extra ``PAYFLOW_*`` variables for child processes (and the in-process
    settings when they name a settings field)."""
    base = Settings()
    run_id = uuid.uuid4().hex[:8]
    database = f"payflow_bench_{run_id}"
    variables = {
        "PAYFLOW_DATABASE_URL": with_database(base.database_url, database),
        "PAYFLOW_TOPIC_PREFIX": f"bench.{run_id}.",
        "PAYFLOW_LOG_LEVEL": "WARNING",
        "PAYFLOW_API_HOST": "127.0.0.1",
        "PAYFLOW_API_PORT": str(free_port()),
        "PAYFLOW_WORKER_WEB_PORT": str(free_port()),
        "PAYFLOW_WORKER_NAME": "bench",
        **(overrides or {}),
    }
    settings = Settings(**_fields(variables))
    supervisor = Supervisor(base.home / "logs" / f"bench-{label}-{run_id}",
                            env={**os.environ, **variables})
    box = Sandbox(run_id, settings, supervisor.env, base.database_url, supervisor)
    # In this order; each step is also safe when there is nothing to remove yet.
    cleanups: list[tuple[str, Callable[[], object]]] = [
        ("stop child processes", lambda: supervisor.stop_all(grace_seconds=STOP_GRACE_SECONDS)),
        ("delete topics and groups", lambda: asyncio.run(_delete_kafka(settings))),
        ("delete Redis keys", lambda: _delete_redis_keys(settings)),
        ("remove local table state", lambda: _remove_table_state(settings)),
        ("drop the database", lambda: drop_database(base.database_url, database)),
    ]
    try:
        create_database(base.database_url, database)
        migrate(settings.database_url)
        asyncio.run(create_topics(settings))
        yield box
    finally:
        _clean_up(cleanups)


def _fields(variables: dict[str, str]) -> dict[str, Any]:
    names = set(Settings.model_fields)
    fields = {}
    for variable, value in variables.items():
        name = variable.removeprefix("PAYFLOW_").lower()
        if name in names:
            fields[name] = value
    return fields


def stop_on_terminate() -> None:
    """SIGTERM ends a benchmark through its clean-up, as Ctrl-C does (KeyboardInterrupt); a
    shell starting it in the background leaves SIGINT ignored, so that is restored too."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def _clean_up(steps: list[tuple[str, Callable[[], object]]]) -> None:
    """Every step, even when one fails; Ctrl-C and SIGTERM wait until they are done."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT,
                                                                    signal.SIGTERM)}
    try:
        for what, step in steps:
            try:
                step()
            except Exception as error:  # one failed step must not skip the others
                log.warning("bench clean-up: could not %s: %s", what, error)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _delete_kafka(settings: Settings) -> None:
    await delete_topics(settings)
    await delete_consumer_groups(settings)


def _remove_table_state(settings: Settings) -> None:
    """The stream worker's RocksDB directories under ``home/streams/<prefix>*``."""
    assert settings.topic_prefix.startswith("bench."), settings.topic_prefix
    for path in (settings.home / "streams").glob(f"{settings.topic_prefix}*"):
        shutil.rmtree(path, ignore_errors=True)


def _delete_redis_keys(settings: Settings) -> None:
    """Keys the API and sessions namespaced with the prefix (rate limits, sessions)."""
    prefix = settings.topic_prefix
    assert prefix.startswith("bench."), prefix
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    try:
        for pattern in (f"{prefix}payflow:*", f"payflow:{prefix}*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)
    finally:
        client.close()

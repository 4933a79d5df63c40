"""The conditions a benchmark ran under: machine, load, versions, commit.

Every figure is only as good as the machine it was measured on, so each run records the cores,
the memory, the load average at its start and end (the machine is shared), the Python, Kafka,
PostgreSQL and Redis versions, and the git commit (and whether the tree had changes).
"""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Any

import psycopg
import redis

from payflow.settings import REPO_ROOT, Settings


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def machine() -> dict[str, Any]:
    """Cores, memory, load average now, Python and the platform: no service needed."""
    return {
        "cores": os.cpu_count(),
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "load_average_start": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **_git(),
    }


def versions(settings: Settings) -> dict[str, str | None]:
    """Kafka (from the jars the local broker runs), PostgreSQL and Redis (asked)."""
    return {"kafka": _kafka_version(settings), "postgresql": _postgres_version(settings),
            "redis": _redis_version(settings)}


def _git() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True,
                                  text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": git("rev-parse", "HEAD"),
            "git_dirty": bool(status) if status is not None else None}


def _kafka_version(settings: Settings) -> str | None:
    jars = sorted((settings.home / "kafka" / "libs").glob("kafka-clients-*.jar"))
    if jars:
        return jars[-1].name.removeprefix("kafka-clients-").removesuffix(".jar")
    return None


def _postgres_version(settings: Settings) -> str | None:
    try:
        with psycopg.connect(settings.database_url, connect_timeout=5) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else None
    except psycopg.Error:
        return None


def _redis_version(settings: Settings) -> str | None:
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
        try:
            return str(client.info("server").get("redis_version"))
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return None

"""Redis from Debian's packages, on 127.0.0.1, with its data under ``$PAYFLOW_HOME/redis``.

Append-only persistence is on: dashboard sessions and rate-limit buckets should survive a
restart of Redis, though nothing of the ledger's lives there.
"""

from __future__ import annotations

import shutil
import subprocess
from urllib.parse import urlsplit

from payflow.services.base import (
    ServiceError,
    ServiceStatus,
    apt_install,
    port_open,
    read_pid,
    run,
    terminate,
    wait_until,
)
from payflow.settings import Settings


class Redis:
    name = "redis"

    def __init__(self, settings: Settings) -> None:
        url = urlsplit(settings.redis_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 6379
        self.root = settings.home / "redis"
        self.logs = settings.home / "logs"
        self.pid_file = self.root / "redis.pid"

    def install(self) -> None:
        if shutil.which("redis-server") is None:
            apt_install(["redis-server"])

    def start(self) -> None:
        if read_pid(self.pid_file) is not None:
            return
        if port_open(self.host, self.port):
            if self._pings():
                return  # a Redis someone else runs on this address serves us just as well
            raise ServiceError(f"{self.host}:{self.port} is taken by something that is not Redis")
        self.install()
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        run(
            [
                "redis-server",
                "--daemonize", "yes",
                "--bind", self.host,
                "--port", str(self.port),
                "--dir", str(self.root),
                "--pidfile", str(self.pid_file),
                "--logfile", str(self.logs / "redis.log"),
                "--appendonly", "yes",
                "--save", "",
            ],
            what="starting Redis",
        )
        wait_until(self._pings, timeout_seconds=20, what=f"Redis on {self.host}:{self.port}")

    def stop(self) -> None:
        pid = read_pid(self.pid_file)
        if pid is None:
            return
        subprocess.run(
            ["redis-cli", "-h", self.host, "-p", str(self.port), "shutdown"],
            capture_output=True,
            check=False,
        )
        try:
            wait_until(lambda: read_pid(self.pid_file) is None, timeout_seconds=20,
                       what="Redis to exit")
        except ServiceError:
            terminate(pid, timeout_seconds=5, what="Redis")
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> ServiceStatus:
        running = self._pings()
        pid = read_pid(self.pid_file)
        return ServiceStatus(
            self.name, running, f"{self.host}:{self.port}", f"pid {pid}" if pid else ""
        )

    def _pings(self) -> bool:
        if not port_open(self.host, self.port):
            return False
        result = subprocess.run(
            ["redis-cli", "-h", self.host, "-p", str(self.port), "ping"],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() == "PONG"

"""Kafka, PostgreSQL and Redis of a test's own, on free ports, for tests that stop them.

The shared services (Kafka 9092, PostgreSQL 5432, Redis 6379) serve every test session on the
machine; a test that kills a dependency must never touch them. ``private_services()`` starts one
broker, one PostgreSQL cluster and one Redis under a home directory of their own
(``<home>/faults/<run>``), yields them, and on the way out — whatever happened — kills each one
and deletes its data (the logs stay, for the failure's post-mortem).

- Kafka and Redis are payflow's own service classes (``payflow.services``) given other ports
  and that home; Kafka reuses the jars already resolved into the shared home (a link), so
  nothing is downloaded.
- PostgreSQL is a throwaway cluster made with ``initdb`` and run with ``pg_ctl``; as root (CI)
  both run as the ``postgres`` user, as Debian's packaged cluster does. ``fsync`` is off: every
  stop here is a process crash, never a machine crash, so the page cache keeps what committed.

Each service can be killed abruptly (``kill``: SIGKILL; for PostgreSQL an immediate shutdown,
which skips the checkpoint exactly like a crash, and needs crash recovery at the next start) and
started again on the same data (``start``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psycopg

from payflow.services.base import ServiceError, is_root, port_open, read_pid, run, wait_until
from payflow.services.kafka import JVM_FLAGS, Kafka
from payflow.services.postgres import Postgres
from payflow.services.redis import Redis
from payflow.settings import Settings
from payflow.supervisor import free_port

QUICK_START_JVM_FLAGS = [*JVM_FLAGS, "-XX:TieredStopAtLevel=1"]
"""C1 only: about half the CPU to start the broker (measured on the StorageTool: 1.3 s user
against 2.6 s), so a restart under a loaded machine's load takes seconds less; a test's few
payments per second never need the C2 compiler's peak speed."""
EXTRA_KAFKA_START_SECONDS = 120.0
SOCKET_DIR = Path("/var/run/postgresql")
"""Where the packaged cluster's socket lives; the ``postgres`` user may write there."""


class PrivateService(Protocol):
    name: str

    def start(self) -> None: ...

    def kill(self) -> None: ...

    def destroy(self) -> None: ...


@dataclass
class PrivateServices:
    settings: Settings
    """Settings naming these services (and their home); hand them to ``prepare_environment``."""
    kafka: PrivateKafka
    postgres: PrivatePostgres
    redis: PrivateRedis

    def by_name(self, name: str) -> PrivateService:
        services: dict[str, PrivateService] = {
            "kafka": self.kafka, "postgres": self.postgres, "redis": self.redis}
        return services[name]


@contextlib.contextmanager
def private_services(shared_home: Path, run_id: str) -> Iterator[PrivateServices]:
    """Start the three services; kill them and delete their data when the block ends."""
    home = shared_home / "faults" / run_id
    home.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        home=home,
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        kafka_controller_port=free_port(),
        database_url=f"postgresql://payflow:payflow@127.0.0.1:{free_port()}/payflow",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    services = PrivateServices(settings, PrivateKafka(settings, shared_home),
                               PrivatePostgres(settings), PrivateRedis(settings))
    started: list[PrivateService] = []
    order: tuple[PrivateService, ...] = (services.postgres, services.redis, services.kafka)
    try:
        for service in order:
            started.append(service)
            service.start()
        yield services
    finally:
        problems = []
        for service in reversed(started):
            try:
                service.destroy()
            except (OSError, ServiceError, subprocess.SubprocessError) as error:
                problems.append(f"{service.name}: {error}")
        if problems:
            raise ServiceError("private services not torn down: " + "; ".join(problems))


class PrivateKafka:
    name = "kafka"

    def __init__(self, settings: Settings, shared_home: Path) -> None:
        self.service = Kafka(settings, jvm_flags=QUICK_START_JVM_FLAGS)
        shared_libs = Kafka(Settings(home=shared_home)).libs
        self.service.root.mkdir(parents=True, exist_ok=True)
        if not self.service.libs.exists():
            self.service.libs.symlink_to(shared_libs, target_is_directory=True)

    def start(self) -> None:
        """Start the broker; on a loaded machine a restart (log recovery, a JVM warming up)
        can outlast the service's own 90 s wait, so a broker still starting gets longer."""
        try:
            self.service.start()
        except ServiceError:
            if read_pid(self.service.pid_file) is None:
                raise
            wait_until(lambda: port_open(self.service.host, self.service.port),
                       timeout_seconds=EXTRA_KAFKA_START_SECONDS,
                       what=f"the private Kafka on port {self.service.port}")

    def kill(self) -> None:
        _kill_group(read_pid(self.service.pid_file), "Kafka",
                    ports=(self.service.port, self.service.controller_port))
        self.service.pid_file.unlink(missing_ok=True)

    def destroy(self) -> None:
        self.kill()
        shutil.rmtree(self.service.data, ignore_errors=True)


class PrivateRedis:
    name = "redis"

    def __init__(self, settings: Settings) -> None:
        self.service = Redis(settings)

    def start(self) -> None:
        self.service.start()

    def kill(self) -> None:
        _kill_group(read_pid(self.service.pid_file), "Redis", ports=(self.service.port,))
        self.service.pid_file.unlink(missing_ok=True)

    def destroy(self) -> None:
        self.kill()
        shutil.rmtree(self.service.root, ignore_errors=True)


class PrivatePostgres:
    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        self.packaged = Postgres(settings)  # for its binaries
        self.port = self.packaged.port
        self.root = settings.home / "postgres"
        self.data = self.root / "data"
        self.socket_dir = SOCKET_DIR if is_root() else self.root
        self.database_url = settings.database_url

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.socket_dir} "
                   "-c fsync=off -c full_page_writes=off -c max_connections=200")
        self._as_owner([self._tool("pg_ctl"), "-D", str(self.data), "-l",
                        str(self.root / "postgres.log"), "-o", options, "-w", "-t", "60",
                        "start"], "starting the private PostgreSQL")
        wait_until(lambda: port_open("127.0.0.1", self.port), timeout_seconds=30,
                   what=f"private PostgreSQL on port {self.port}")

    def kill(self) -> None:
        """Immediate shutdown: the server exits at once without a checkpoint, as in a crash."""
        if self._postmaster_pid() is None:
            return
        self._as_owner([self._tool("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                        "-t", "30", "stop"], "stopping the private PostgreSQL")

    def destroy(self) -> None:
        try:
            self.kill()
        finally:
            _kill_group(self._postmaster_pid(), "PostgreSQL", ports=(self.port,))
            shutil.rmtree(self.data, ignore_errors=True)

    def _initdb(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if is_root():
            shutil.chown(self.root, "postgres", "postgres")
        self._as_owner([self._tool("initdb"), "-D", str(self.data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--no-sync"], "initdb")
        self._create_role_and_database()

    def _create_role_and_database(self) -> None:
        """The role and database the settings name, created on the fresh cluster."""
        self._as_owner([self._tool("pg_ctl"), "-D", str(self.data), "-l",
                        str(self.root / "postgres.log"), "-o",
                        f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.socket_dir}",
                        "-w", "start"], "first start of the private PostgreSQL")
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE ROLE payflow LOGIN CREATEDB PASSWORD 'payflow'")
            conn.execute("CREATE DATABASE payflow OWNER payflow")
        self._as_owner([self._tool("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                       "stopping the private PostgreSQL")

    def _postmaster_pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def _tool(self, name: str) -> str:
        bindir = self.packaged._bindir()  # the binaries the project installs
        if bindir is None:
            raise ServiceError("PostgreSQL is not installed: run `payflow services install`")
        return str(bindir / name)

    def _as_owner(self, command: list[str], what: str) -> None:
        if is_root():
            command = ["runuser", "-u", "postgres", "--", *command]
        run(command, what=what)


def _kill_group(pid: int | None, what: str, ports: tuple[int, ...]) -> None:
    """SIGKILL a service's process group; wait until its leader is gone and its ports are
    closed (a dying JVM's threads still hold its sockets after the leader turned zombie)."""
    if pid is not None:
        _kill_and_reap(pid, what)
    wait_until(lambda: not any(port_open("127.0.0.1", port) for port in ports),
               timeout_seconds=30, what=f"{what}'s ports {ports} to close")


def _kill_and_reap(pid: int, what: str) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # our own child (Kafka): reap it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{pid}/stat").exists() and _zombie(pid):
            return
        time.sleep(0.05)
    raise ServiceError(f"{what} (pid {pid}) survived SIGKILL")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return False

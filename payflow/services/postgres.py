"""PostgreSQL from Debian's packages, on 127.0.0.1, with the project's role and database.

As root (CI, containers) the packaged cluster is used: ``pg_ctlcluster`` runs it as the
``postgres`` user, which is how Debian means it to run. As an ordinary user payflow keeps its own
cluster under ``$PAYFLOW_HOME/postgres``, made with ``initdb`` and run with ``pg_ctl``. Either way
the role and database named in ``PAYFLOW_DATABASE_URL`` are created (the role may create
databases: the test suite makes one per run).
"""

from __future__ import annotations

import glob
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

from payflow.services.base import (
    ServiceError,
    ServiceStatus,
    apt_install,
    is_root,
    port_open,
    run,
    wait_until,
)
from payflow.settings import Settings


class Postgres:
    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        url = urlsplit(settings.database_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 5432
        self.user = unquote(url.username or "payflow")
        self.password = unquote(url.password or "")
        self.database = url.path.lstrip("/") or "payflow"
        self.own_root = settings.home / "postgres"
        self.logs = settings.home / "logs"

    # --- install

    def install(self) -> None:
        if self._bindir() is None:
            apt_install(["postgresql"])
        if self._bindir() is None:
            raise ServiceError("PostgreSQL binaries not found after installing 'postgresql'")

    # --- lifecycle

    def start(self) -> None:
        self.install()
        if not port_open(self.host, self.port):
            if is_root():
                self._start_packaged_cluster()
            else:
                self._start_own_cluster()
        wait_until(self._ready, timeout_seconds=60, what=f"PostgreSQL on {self.host}:{self.port}")
        self._ensure_role_and_database()

    def stop(self) -> None:
        if is_root():
            cluster = self._packaged_cluster()
            if cluster and port_open(self.host, self.port):
                version, name = cluster
                run(
                    ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "stop"],
                    what="stopping PostgreSQL",
                )
        elif (self.own_root / "data" / "postmaster.pid").exists():
            run(
                [self._tool("pg_ctl"), "-D", str(self.own_root / "data"), "-m", "fast", "stop"],
                what="stopping PostgreSQL",
            )

    def status(self) -> ServiceStatus:
        running = port_open(self.host, self.port) and self._ready()
        return ServiceStatus(
            self.name, running, f"{self.host}:{self.port}", f"database {self.database}"
        )

    # --- packaged cluster (root)

    def _packaged_cluster(self) -> tuple[str, str] | None:
        out = run(["pg_lsclusters", "--no-header"], what="listing PostgreSQL clusters")
        for line in out.splitlines():
            version, name, port, *_ = line.split()
            if int(port) == self.port:
                return version, name
        return None

    def _start_packaged_cluster(self) -> None:
        cluster = self._packaged_cluster()
        if cluster is None:
            raise ServiceError(
                f"no packaged PostgreSQL cluster listens on port {self.port}; "
                "create one with pg_createcluster or change PAYFLOW_DATABASE_URL"
            )
        version, name = cluster
        # Loopback only, whatever the packaged default says: Debian's postgresql.conf includes
        # conf.d/, so our settings stay in a file of our own.
        conf_d = Path("/etc/postgresql") / version / name / "conf.d"
        conf_d.mkdir(parents=True, exist_ok=True)
        (conf_d / "payflow.conf").write_text(
            f"# Written by payflow services up.\nlisten_addresses = '{self.host}'\n"
        )
        run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start"],
            what="starting PostgreSQL",
        )

    # --- own cluster (ordinary user)

    def _start_own_cluster(self) -> None:
        data = self.own_root / "data"
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            run(
                [self._tool("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E",
                 "UTF8"],
                what="initdb",
            )
        self.logs.mkdir(parents=True, exist_ok=True)
        options = f"-p {self.port} -c listen_addresses={self.host} -k {self.own_root}"
        run(
            [self._tool("pg_ctl"), "-D", str(data), "-l", str(self.logs / "postgres.log"),
             "-o", options, "-w", "start"],
            what="starting PostgreSQL",
        )

    # --- shared

    def _bindir(self) -> Path | None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
        if candidates:
            return Path(candidates[0]).parent
        found = shutil.which("pg_ctl")
        return Path(found).parent if found else None

    def _tool(self, name: str) -> str:
        bindir = self._bindir()
        if bindir is None:
            raise ServiceError("PostgreSQL is not installed")
        return str(bindir / name)

    def _ready(self) -> bool:
        result = run_quiet([self._tool("pg_isready"), "-h", self.host, "-p", str(self.port)])
        return result == 0

    def _superuser_psql(self, sql: str) -> str:
        command = [self._tool("psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                   "-h", self.host, "-p", str(self.port), "-U", "postgres", "-d", "postgres"]
        if is_root():
            # Peer authentication on the packaged cluster's socket.
            command = ["runuser", "-u", "postgres", "--", self._tool("psql"), "-X", "-q", "-t",
                       "-A", "-v", "ON_ERROR_STOP=1", "-p", str(self.port), "-d", "postgres"]
        return run(command, what="psql as the PostgreSQL superuser", input_text=sql)

    def _ensure_role_and_database(self) -> None:
        role = _ident(self.user)
        password = self.password.replace("'", "''")
        self._superuser_psql(
            f"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{self.user}') THEN
                CREATE ROLE {role} LOGIN CREATEDB PASSWORD '{password}';
              END IF;
            END $$;
            """
        )
        exists = self._superuser_psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';"
        ).strip()
        if exists != "1":
            self._superuser_psql(f"CREATE DATABASE {_ident(self.database)} OWNER {role};")


def run_quiet(command: list[str]) -> int:
    return subprocess.run(command, capture_output=True, check=False).returncode


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ServiceError(f"refusing an unusual PostgreSQL identifier: {name!r}")
    return f'"{name}"'

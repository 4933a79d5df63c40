"""Apache Kafka 4.x in KRaft mode, from its jars on Maven Central, on 127.0.0.1.

``infra/kafka/pom.xml`` resolves ``kafka_2.13`` and ``kafka-tools`` with their runtime
dependencies into ``$PAYFLOW_HOME/kafka/libs``; this module formats the storage once, starts one
combined broker/controller in its own process group, waits until it answers metadata requests,
and stops it with SIGTERM (a controlled shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from payflow.services.base import (
    ServiceError,
    ServiceStatus,
    port_open,
    read_pid,
    run,
    terminate,
    wait_until,
)
from payflow.settings import REPO_ROOT, Settings

POM = REPO_ROOT / "infra" / "kafka" / "pom.xml"
JVM_FLAGS = [
    "-Xms512m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
]


class Kafka:
    name = "kafka"

    def __init__(self, settings: Settings, jvm_flags: Sequence[str] = JVM_FLAGS) -> None:
        """``jvm_flags``: a throwaway broker (a fault test's) may trade peak speed for a
        quicker start."""
        self.jvm_flags = list(jvm_flags)
        host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
        self.host = host or "127.0.0.1"
        self.port = int(port)
        self.controller_port = settings.kafka_controller_port
        self.root = settings.home / "kafka"
        self.libs = self.root / "libs"
        self.data = self.root / "data"
        self.logs = settings.home / "logs" / "kafka"
        self.pid_file = self.root / "kafka.pid"

    # --- install

    def install(self) -> None:
        if shutil.which("java") is None:
            raise ServiceError("Kafka needs Java 17+: apt-get install -y openjdk-17-jre-headless")
        stamp = self.libs / ".pom-sha"
        pom_digest = _digest(POM)
        if stamp.exists() and stamp.read_text() == pom_digest:
            return
        if shutil.which("mvn") is None:
            raise ServiceError("resolving Kafka's jars needs Maven: apt-get install -y maven")
        if self.libs.exists():
            shutil.rmtree(self.libs)
        self.libs.mkdir(parents=True)
        run(
            ["mvn", "-q", "-B", "-f", str(POM), "package", f"-Dkafka.libs.dir={self.libs}"],
            what="resolving Kafka's jars from Maven Central",
        )
        stamp.write_text(pom_digest)

    # --- lifecycle

    def start(self) -> None:
        if read_pid(self.pid_file) is not None:
            return
        if port_open(self.host, self.port):
            if _answers_as_kafka(f"{self.host}:{self.port}"):
                return  # a broker someone else runs (another checkout) serves us just as well
            raise ServiceError(
                f"{self.host}:{self.port} is taken by something that is not Kafka; "
                "stop it or set PAYFLOW_KAFKA_BOOTSTRAP"
            )
        self.install()
        config = self._render_config()
        self._format_storage(config)
        self.logs.mkdir(parents=True, exist_ok=True)
        server_log = self.logs / "server.log"
        log_offset = server_log.stat().st_size if server_log.exists() else 0
        with open(self.logs / "stdout.log", "ab") as out:
            process = subprocess.Popen(
                self._java("kafka.Kafka", str(config)),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        try:
            wait_until(
                lambda: process.poll() is None and self._started(log_offset),
                timeout_seconds=90,
                what=f"Kafka on {self.host}:{self.port} (log: {self.logs}/server.log)",
            )
        except ServiceError:
            if process.poll() is not None:
                raise ServiceError(
                    f"Kafka exited with {process.returncode}; see {self.logs}/stdout.log "
                    f"and {self.logs}/server.log"
                ) from None
            raise

    def stop(self) -> None:
        pid = read_pid(self.pid_file)
        if pid is not None:
            terminate(pid, timeout_seconds=60, what="Kafka")
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> ServiceStatus:
        pid = read_pid(self.pid_file)
        running = port_open(self.host, self.port) and (
            pid is not None or _answers_as_kafka(f"{self.host}:{self.port}"))
        detail = f"pid {pid}, data {self.data}" if pid else "not started by this checkout"
        return ServiceStatus(self.name, running, f"{self.host}:{self.port}", detail)

    # --- helpers

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [
            "java",
            *self.jvm_flags,
            f"-Dkafka.logs.dir={self.logs}",
            f"-Dlog4j2.configurationFile={self.root / 'log4j2.properties'}",
            "-cp",
            f"{self.libs}/*",
            main_class,
            *args,
        ]

    def _render_config(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        templates = resources.files("payflow.services") / "templates"
        config = self.root / "server.properties"
        config.write_text(
            (templates / "server.properties")
            .read_text()
            .format(
                broker_port=self.port,
                controller_port=self.controller_port,
                data_dir=self.data,
            )
        )
        (self.root / "log4j2.properties").write_text(
            (templates / "log4j2.properties").read_text()
        )
        return config

    def _format_storage(self, config: Path) -> None:
        if (self.data / "meta.properties").exists():
            return
        cluster_id = run(
            self._java("kafka.tools.StorageTool", "random-uuid"), what="generating a cluster id"
        ).strip().splitlines()[-1]
        run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)),
            what="formatting Kafka storage",
        )

    def _started(self, log_offset: int) -> bool:
        """True once this run of the broker logged that it serves requests."""
        if not port_open(self.host, self.port):
            return False
        try:
            with open(self.logs / "server.log", "rb") as handle:
                handle.seek(log_offset)
                return b"Kafka Server started" in handle.read()
        except OSError:
            return False


def _answers_as_kafka(bootstrap: str) -> bool:
    """True if a Kafka broker answers a metadata request at ``bootstrap`` within seconds."""

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await asyncio.wait_for(admin.start(), timeout=8)
            await asyncio.wait_for(admin.list_topics(), timeout=5)
            return True
        except (KafkaError, OSError, TimeoutError):
            return False
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    return asyncio.run(probe())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

"""What every locally managed service offers, and the process helpers they share.

payflow runs real Kafka, PostgreSQL and Redis on 127.0.0.1 without Docker. Each service knows
how to install itself (from Maven Central or Debian's packages), start idempotently, stop
cleanly and report where it listens.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class ServiceError(RuntimeError):
    """A service could not be installed, started or stopped; the message says what to do."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    address: str
    detail: str = ""

    def line(self) -> str:
        state = "running" if self.running else "stopped"
        detail = f"  {self.detail}" if self.detail else ""
        return f"{self.name:<10} {state:<8} {self.address}{detail}"


class Service(Protocol):
    name: str

    def install(self) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def status(self) -> ServiceStatus: ...


def port_open(host: str, port: int, timeout_seconds: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_seconds):
            return True
    except OSError:
        return False


def wait_until(
    check: Callable[[], bool], *, timeout_seconds: float, what: str, interval: float = 0.2
) -> None:
    """Poll ``check`` until it is true; raise ServiceError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise ServiceError(f"timed out after {timeout_seconds:.0f}s waiting for {what}")


def run(
    command: Sequence[str], *, what: str, env: dict[str, str] | None = None, input_text: str = ""
) -> str:
    """Run a command to completion; raise ServiceError with its output when it fails."""
    result = subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        env=env,
        input=input_text or None,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-2000:]
        raise ServiceError(f"{what} failed (exit {result.returncode}): {output}")
    return result.stdout


def is_root() -> bool:
    return os.geteuid() == 0


def apt_install(packages: Sequence[str]) -> None:
    """Install Debian packages; only root can, so others get the command to run."""
    if shutil.which("apt-get") is None:
        raise ServiceError(f"install {' '.join(packages)} with your system's package manager")
    if not is_root():
        raise ServiceError(f"run as root: apt-get install -y {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], what="apt-get update", env=env)
    run(["apt-get", "install", "-y", "-qq", *packages], what="apt-get install", env=env)


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive, else None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    # A zombie (exited, not yet reaped by its parent) is not running.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return pid
    return None if state == "Z" else pid


def terminate(pid: int, *, timeout_seconds: float, what: str) -> None:
    """SIGTERM a process group leader, wait for it, SIGKILL if it does not exit in time."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not _alive(pid), timeout_seconds=timeout_seconds, what=f"{what} exit")
    except ServiceError:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_until(lambda: not _alive(pid), timeout_seconds=10, what=f"{what} to be killed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    if state == "Z":
        # Our own child: reap it so it does not linger as a zombie.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True

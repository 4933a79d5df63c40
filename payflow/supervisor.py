"""Run payflow's processes as children, each in its own process group with its own log file,
and stop them all cleanly (SIGTERM, then SIGKILL after a grace period)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now (for a child process to listen on)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Supervisor:
    log_dir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> Child:
        """Start ``payflow <args>`` as child ``name``, logging to ``<log_dir>/<name>.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "payflow", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**self.env, **(extra_env or {})},
                start_new_session=True,
            )
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def dead(self) -> list[Child]:
        return [child for child in self.children if not child.alive]

    def stop_all(self, grace_seconds: float = 15.0) -> None:
        """SIGTERM every child's group, wait up to ``grace_seconds``, SIGKILL what remains."""
        for child in reversed(self.children):
            _signal_group(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for child in self.children:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                _signal_group(child.process.pid, signal.SIGKILL)
                child.process.wait(timeout=10)
        # Grandchildren (e.g. Streamlit's) share the group: make sure none outlives us.
        for child in self.children:
            _signal_group(child.process.pid, signal.SIGKILL)
        self.children.clear()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)

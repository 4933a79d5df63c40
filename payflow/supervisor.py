"""Run payflow's processes as children, each in its own process group with its own log file,
and stop them all cleanly (SIGTERM, then SIGKILL after a grace period).

With a ``RestartPolicy`` (``payflow demo`` uses one) a child that exits on its own is started
again by a monitor thread: after 1 s, doubling to 30 s while it keeps dying soon after each
start, back to 1 s once it has run five minutes; after eight quick exits in a row the supervisor
gives up on it and ``dead()`` reports it. A stuck stream worker exits on purpose
(``payflow.liveness``) so that this brings it back. Without a policy (the default, and the test
stacks', whose fault tests kill and start children themselves) nothing is restarted and
``dead()`` reports every child that exited.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)
MONITOR_INTERVAL_SECONDS = 0.25


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now (for a child process to listen on)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class RestartPolicy:
    """When a child that exited on its own is started again."""

    first_delay_seconds: float = 1.0
    max_delay_seconds: float = 30.0
    healthy_after_seconds: float = 300.0
    """A child that ran this long before exiting starts its count of quick exits afresh. Longer
    than a worker takes to start and be found stuck (the liveness limit, 60 s by default): one
    that is stuck every time it starts is given up on rather than restarted every minute."""
    max_quick_exits: int = 8
    """Exits in a row, each sooner than ``healthy_after_seconds`` after its start, before the
    supervisor gives up on the child."""

    def __post_init__(self) -> None:
        assert 0 < self.first_delay_seconds <= self.max_delay_seconds, self
        assert self.max_quick_exits >= 1, self

    def quick_exits(self, before: int, ran_seconds: float) -> int:
        """The count of quick exits in a row, ``before`` this exit, after a run of
        ``ran_seconds``."""
        return 1 if ran_seconds >= self.healthy_after_seconds else before + 1

    def delay_seconds(self, quick_exits: int) -> float | None:
        """How long to wait before the restart after the ``quick_exits``-th quick exit in a row
        (1, 2, ...); None when the supervisor gives up."""
        assert quick_exits >= 1, quick_exits
        if quick_exits > self.max_quick_exits:
            return None
        return min(self.max_delay_seconds,
                   self.first_delay_seconds * 2.0 ** min(quick_exits - 1, 32))


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    args: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0
    """How many times the supervisor has started this child again."""
    quick_exits: int = 0
    restart_at: float | None = None
    """When the supervisor will start it again (monotonic time), while it waits to."""
    gave_up: bool = False

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Supervisor:
    log_dir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    children: list[Child] = field(default_factory=list)
    restart: RestartPolicy | None = None
    """Restart children that exit on their own; None (the default): never."""
    program: tuple[str, ...] = (sys.executable, "-m", "payflow")
    """What a child runs, before its own arguments."""
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False,
                                       repr=False)
    _monitor: threading.Thread | None = field(default=None, init=False, repr=False)

    def start(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> Child:
        """Start ``payflow <args>`` (``program <args>``) as child ``name``, logging to
        ``<log_dir>/<name>.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        extra = dict(extra_env or {})
        with self._lock:
            child = Child(name, self._spawn(log_path, args, extra), log_path, args, extra)
            self.children.append(child)
        if self.restart is not None and self._monitor is None:
            self._stopping.clear()
            self._monitor = threading.Thread(target=self._watch, name="supervisor",
                                             daemon=True)
            self._monitor.start()
        return child

    def dead(self) -> list[Child]:
        """Children that exited and will not be started again."""
        with self._lock:
            return [child for child in self.children if not child.alive
                    and (self.restart is None or child.gave_up)]

    def stop_all(self, grace_seconds: float = 15.0) -> None:
        """SIGTERM every child's group, wait up to ``grace_seconds``, SIGKILL what remains."""
        self._stopping.set()
        if self._monitor is not None:
            self._monitor.join(timeout=10)
            self._monitor = None
        with self._lock:
            self._stop_children(grace_seconds)

    def _stop_children(self, grace_seconds: float) -> None:
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

    def _spawn(self, log_path: Path, args: tuple[str, ...],
               extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as log_file:
            return subprocess.Popen(
                [*self.program, *args],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**self.env, **extra_env},
                start_new_session=True,
            )

    def _watch(self) -> None:
        while not self._stopping.wait(MONITOR_INTERVAL_SECONDS):
            with self._lock:
                if self._stopping.is_set():
                    return
                for child in self.children:
                    try:
                        self._tend(child, time.monotonic())
                    except Exception:  # the monitor must outlive one bad restart
                        log.exception("supervisor: restarting %s failed", child.name)

    def _tend(self, child: Child, now: float) -> None:
        assert self.restart is not None
        if child.gave_up or child.alive:
            return
        if child.restart_at is None:
            self._note_exit(child, now)
        elif now >= child.restart_at:
            # Grandchildren of the old group (Streamlit's) must not hold its port.
            _signal_group(child.process.pid, signal.SIGKILL)
            child.process = self._spawn(child.log_path, child.args, child.extra_env)
            child.started_at, child.restart_at = now, None
            child.restarts += 1

    def _note_exit(self, child: Child, now: float) -> None:
        assert self.restart is not None
        ran_seconds = now - child.started_at
        child.quick_exits = self.restart.quick_exits(child.quick_exits, ran_seconds)
        delay = self.restart.delay_seconds(child.quick_exits)
        status = child.process.returncode
        if delay is None:
            child.gave_up = True
            self._report(child, logging.ERROR, f"{child.name} exited with status {status} "
                         f"after {ran_seconds:.1f} s, {child.quick_exits} times in a row within "
                         f"{self.restart.healthy_after_seconds:.0f} s of a start: giving up on "
                         f"it after {child.restarts} restarts")
            return
        child.restart_at = now + delay
        self._report(child, logging.WARNING, f"{child.name} exited with status {status} after "
                     f"{ran_seconds:.1f} s; restarting it in {delay:g} s "
                     f"(restart {child.restarts + 1})")

    @staticmethod
    def _report(child: Child, level: int, text: str) -> None:
        """Log ``text``, and append it to the child's own log, where its last words are."""
        log.log(level, "supervisor: %s", text)
        with contextlib.suppress(OSError), open(child.log_path, "a") as log_file:
            log_file.write(f"supervisor: {text}\n")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)

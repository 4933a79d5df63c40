"""The supervisor restarts a child that exits on its own, with backoff, gives up on one that
keeps dying and says so; without a restart policy, or once stopped, it restarts nothing.

Real child processes, but small ones: a Python one-liner instead of ``payflow`` (whose import
takes seconds), exiting with the status it is given or sleeping."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from payflow.supervisor import RestartPolicy, Supervisor

QUICK = RestartPolicy(first_delay_seconds=0.2, max_delay_seconds=0.4, max_quick_exits=3)
EXIT = (sys.executable, "-c", "import sys; sys.exit(int(sys.argv[1]))")
SLEEP = (sys.executable, "-c", "import time; time.sleep(60)")


def _wait_until_dead(supervisor: Supervisor, timeout_seconds: float = 30) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not supervisor.dead() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_child_that_keeps_dying_is_restarted_with_backoff_then_given_up_on(
    tmp_path: Path,
) -> None:
    supervisor = Supervisor(tmp_path, restart=QUICK, program=EXIT)
    try:
        child = supervisor.start("broken", "3")
        _wait_until_dead(supervisor)

        assert supervisor.dead() == [child]
        assert child.restarts == 3 and child.gave_up
        log = child.log_path.read_text()
        assert log.count("supervisor: broken exited with status 3 after") == 4, log
        assert "restarting it in 0.2 s (restart 1)" in log
        assert "restarting it in 0.4 s (restart 2)" in log
        assert "restarting it in 0.4 s (restart 3)" in log
        assert "4 times in a row within 300 s of a start: giving up on it after 3 restarts" in log
    finally:
        supervisor.stop_all()


def test_without_a_policy_a_child_that_exits_stays_down(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, program=EXIT)
    try:
        child = supervisor.start("broken", "3")
        _wait_until_dead(supervisor)
        time.sleep(0.5)  # longer than a restart would have taken

        assert supervisor.dead() == [child]
        assert child.restarts == 0 and child.process.returncode == 3
        assert "supervisor:" not in child.log_path.read_text()
    finally:
        supervisor.stop_all()


def test_a_child_the_supervisor_stops_is_not_restarted(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, restart=QUICK, program=SLEEP)
    child = supervisor.start("sleeper")
    time.sleep(0.5)  # the monitor is watching it
    assert child.alive

    supervisor.stop_all(grace_seconds=5)
    time.sleep(0.5)

    assert child.process.returncode == -15
    assert child.restarts == 0 and not supervisor.children
    assert "supervisor:" not in child.log_path.read_text()

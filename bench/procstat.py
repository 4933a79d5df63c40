"""Per-process CPU time and peak memory from Linux's /proc, and the machine's CPU time.

CPU seconds come from ``/proc/<pid>/stat`` (user + system time of the process and of children
it has waited for), peak resident memory from ``VmHWM`` in ``/proc/<pid>/status`` (the high
water mark since the process started), the machine's busy time from ``/proc/stat``. The
parsers are pure; the readers return None for a process that is gone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parse_cpu_seconds(stat_text: str, ticks_per_second: int = CLOCK_TICKS) -> float:
    """utime + stime + cutime + cstime of a ``/proc/<pid>/stat`` line, in seconds.

    The command name (field 2) may hold spaces and parentheses, so the fields are counted from
    the last ``)``."""
    fields = stat_text.rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / ticks_per_second


def parse_status_bytes(status_text: str, field: str) -> int | None:
    """A memory ``field`` (``VmRSS``, ``VmHWM`` ...) of a ``/proc/<pid>/status`` text, in bytes
    (None if absent, e.g. a zombie)."""
    for line in status_text.splitlines():
        if line.startswith(f"{field}:"):
            value, unit = line.split()[1:3]
            assert unit == "kB", line
            return int(value) * 1024
    return None


def parse_peak_rss_bytes(status_text: str) -> int | None:
    """``VmHWM`` of a ``/proc/<pid>/status`` text, in bytes (None if absent, e.g. a zombie)."""
    return parse_status_bytes(status_text, "VmHWM")


def parse_machine_cpu_seconds(proc_stat_text: str,
                              ticks_per_second: int = CLOCK_TICKS) -> tuple[float, float]:
    """(busy, total) CPU seconds over all cores from ``/proc/stat``'s first line; idle and
    iowait count as not busy."""
    first = proc_stat_text.splitlines()[0].split()
    assert first[0] == "cpu", first
    values = [int(value) for value in first[1:9]]
    idle = values[3] + values[4]
    total = sum(values)
    return (total - idle) / ticks_per_second, total / ticks_per_second


def cpu_seconds(pid: int) -> float | None:
    try:
        return parse_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, IndexError, ValueError):
        return None


def peak_rss_bytes(pid: int) -> int | None:
    try:
        return parse_peak_rss_bytes(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None


def machine_cpu_seconds() -> tuple[float, float]:
    return parse_machine_cpu_seconds(Path("/proc/stat").read_text())


def pids_named(name: str) -> list[int]:
    """Processes whose command name (``/proc/<pid>/comm``) is ``name``, e.g. ``postgres``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def parse_listening_inodes(tcp_table: str, port: int) -> set[int]:
    """Inodes of the sockets listening on ``port`` in a ``/proc/net/tcp`` or ``tcp6`` table
    (state ``0A`` is LISTEN; addresses are ``hex-ip:hex-port``; the inode is field 10)."""
    inodes = set()
    for line in tcp_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(int(fields[9]))
    return inodes


def pids_listening(port: int) -> list[int]:
    """Processes holding a socket that listens on TCP ``port`` (any address): a service that
    another checkout, or the system, started, whose pid file this checkout does not have."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            inodes |= parse_listening_inodes(Path(table).read_text(), port)
        except OSError:
            continue
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found = []
    for entry in Path("/proc").iterdir() if wanted else ():
        if entry.name.isdigit():
            try:
                if any(os.readlink(fd) in wanted for fd in (entry / "fd").iterdir()):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds of each pid of each named process, and the machine's busy seconds."""

    per_process: dict[str, dict[int, float]]
    machine_busy_seconds: float


def sample(processes: Mapping[str, Iterable[int]]) -> CpuSample:
    per_process = {
        name: {pid: value for pid in pids if (value := cpu_seconds(pid)) is not None}
        for name, pids in processes.items()}
    return CpuSample(per_process, machine_cpu_seconds()[0])


def cpu_between(before: CpuSample, after: CpuSample) -> dict[str, float]:
    """CPU seconds each named process spent between two samples, plus ``machine`` (every
    core, every process on the machine).

    A process sampled as several pids (PostgreSQL's backends) counts each pid alive at the
    second sample from the first sample, or in full if it started in between; a pid that ended
    in between is lost, so that figure is a lower bound."""
    spent = {}
    for name, pids in after.per_process.items():
        earlier = before.per_process.get(name, {})
        spent[name] = sum(max(0.0, value - earlier.get(pid, 0.0)) for pid, value in pids.items())
    spent["machine"] = after.machine_busy_seconds - before.machine_busy_seconds
    return spent

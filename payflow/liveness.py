"""Whether a consumer is stuck: records wait on a partition it owns and it has not moved past
them for a while, although the broker answers and no dependency is away.

A known failure of Faust (robinhood/faust#596 and its successors in faust-streaming): after a
broker restart a worker can stay alive with its partitions assigned and stop processing them for
good ("Stream has not started processing"). Nothing inside the process notices, so
``payflow.watchdog`` feeds a ``ProgressWatch`` the offsets it reads from the broker, and a
worker the watch calls stuck exits for its supervisor to restart it. Pure: offsets and a clock
in, a verdict out.

What does not count as stuck: a partition with nothing waiting (idle), a consumer whose
committed offset moves however slowly (busy), and time while the broker cannot be asked or the
consumer is waiting out an outage of PostgreSQL, Redis or Kafka (``pause``): its clock starts
again from the next observation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Offsets:
    """One partition as its consumer group and the broker see it, read at the same time."""

    committed: int
    """The next offset the group has yet to finish: its committed offset (or, if it never
    committed on the partition, the partition's first offset)."""
    end: int
    """The offset the next record written to the partition will get."""

    @property
    def waiting(self) -> int:
        return max(0, self.end - self.committed)


@dataclass(frozen=True)
class Stall:
    """A partition on which records wait and the consumer has not moved."""

    partition: str
    offset: int
    waiting: int
    seconds: float

    def describe(self) -> str:
        records = "record" if self.waiting == 1 else "records"
        return (f"partition {self.partition}: {self.waiting} {records} waiting at offset "
                f"{self.offset}, no progress for {self.seconds:.0f} s")


class ProgressWatch:
    """Remembers, per partition, the committed offset last seen and since when it has not
    moved while records were waiting; ``observe`` reports the longest such stall once it
    reaches ``stall_seconds``."""

    def __init__(self, stall_seconds: float) -> None:
        assert stall_seconds > 0, stall_seconds
        self.stall_seconds = stall_seconds
        self._since: dict[str, tuple[int, float]] = {}
        """partition -> (committed offset, when it was first seen there with records waiting)"""

    def observe(self, now: float, partitions: Mapping[str, Offsets]) -> Stall | None:
        """Note the offsets of the partitions the consumer owns right now (read from the
        broker at ``now``); the longest stall of at least ``stall_seconds``, if any."""
        self._since = {name: since for name, since in self._since.items() if name in partitions}
        worst: Stall | None = None
        for name, offsets in partitions.items():
            previous = self._since.get(name)
            if offsets.waiting == 0:
                self._since.pop(name, None)
                continue
            if previous is None or previous[0] != offsets.committed:
                self._since[name] = (offsets.committed, now)
                continue
            stalled = now - previous[1]
            if stalled >= self.stall_seconds and (worst is None or stalled > worst.seconds):
                worst = Stall(name, offsets.committed, offsets.waiting, stalled)
        return worst

    def pause(self) -> None:
        """The broker could not be asked, or the consumer is waiting out an outage: forget
        every partition's clock (the next observation starts them again)."""
        self._since.clear()


class Excuse:
    """A state that excuses a consumer's stall for at most ``limit_seconds`` at a stretch.

    Faust's rebalance and table recovery stop the agents on purpose, and a recovery from a long
    changelog can take minutes: exiting then would restart the recovery, again and again. A
    worker that stays in that state past the limit is not recovering but hung (some of Faust's
    hangs after a broker restart leave it "rebalancing" for good), and the stall counts again.
    Pure: the state and a clock in, whether the stall is excused out."""

    def __init__(self, limit_seconds: float) -> None:
        assert limit_seconds >= 0, limit_seconds
        self.limit_seconds = limit_seconds
        self._since: float | None = None

    def excused(self, active: bool, now: float) -> bool:
        if not active:
            self._since = None
            return False
        if self._since is None:
            self._since = now
        return now - self._since < self.limit_seconds

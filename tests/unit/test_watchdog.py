"""The watchdog ends a process whose consumer is stuck, and only then: not while the consumer
waits out an outage, nor while the broker cannot be asked. Offsets come from a fake reader (the
watchdog's own port); the real one is exercised by tests/integration/test_worker_liveness.py."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from payflow.liveness import Offsets
from payflow.settings import Settings
from payflow.watchdog import Watchdog

STALLED = Offsets(committed=7, end=9)


class Reader:
    """Answers every read with ``STALLED`` for each partition, or raises while ``away``."""

    def __init__(self) -> None:
        self.away = False
        self.reads: list[tuple[str, list[TopicPartition]]] = []

    async def read(self, group: str, partitions: list[TopicPartition]) -> dict[str, Offsets]:
        self.reads.append((group, partitions))
        if self.away:
            raise ConnectionError("broker away")
        return {f"{tp.topic}-{tp.partition}": STALLED for tp in partitions}


class Scene:
    def __init__(self, waiting: bool = False) -> None:
        self.now = 0.0
        self.lines: list[str] = []
        self.waiting = waiting
        self.reader = Reader()
        self.watchdog = Watchdog(Settings(liveness_stall_seconds=60), on_stuck=self.lines.append,
                                 clock=lambda: self.now)
        self.watchdog.add("the ledger consumer", "payflow-ledger", lambda: [("decisions", 2)],
                          lambda: self.waiting)

    def check_at(self, now: float) -> bool:
        self.now = now
        return asyncio.run(self.watchdog._check(self.reader))


def test_a_consumer_stalled_past_the_limit_is_reported_with_its_partition() -> None:
    scene = Scene()
    scene.check_at(0.0)
    scene.check_at(59.0)
    assert scene.lines == []

    scene.check_at(60.0)

    assert scene.lines == [
        "liveness: the ledger consumer is stuck (partition decisions-2: 2 records waiting at "
        "offset 7, no progress for 60 s; limit PAYFLOW_LIVENESS_STALL_SECONDS=60): exiting "
        "with status 75 to be restarted"]
    assert scene.reader.reads[-1] == ("payflow-ledger", [TopicPartition("decisions", 2)])


def test_a_consumer_waiting_out_an_outage_is_never_reported_nor_asked_about() -> None:
    scene = Scene(waiting=True)
    for now in range(0, 600, 5):
        scene.check_at(float(now))

    assert scene.lines == []
    assert scene.reader.reads == []


def test_the_time_the_broker_cannot_be_asked_does_not_count() -> None:
    scene = Scene()
    scene.check_at(0.0)
    scene.reader.away = True
    assert scene.check_at(50.0) is False
    scene.reader.away = False

    scene.check_at(100.0)
    scene.check_at(159.0)
    assert scene.lines == []
    scene.check_at(160.0)
    assert len(scene.lines) == 1


def test_the_line_adds_what_the_consumer_says_of_its_state() -> None:
    scene = Scene()
    scene.watchdog.watched[0].detail = lambda: "Faust rebalancing: False"
    scene.check_at(0.0)
    scene.check_at(60.0)

    assert scene.lines[0].endswith("limit PAYFLOW_LIVENESS_STALL_SECONDS=60; Faust "
                                   "rebalancing: False): exiting with status 75 to be restarted")


def test_the_check_is_off_at_a_limit_of_zero() -> None:
    watchdog = Watchdog(Settings(liveness_stall_seconds=0))

    assert watchdog.add("x", "g", lambda: [("t", 0)]) is None
    assert watchdog.watched == []
    asyncio.run(asyncio.wait_for(watchdog.run(), timeout=1))  # returns at once

"""The liveness check's I/O: reads, for each consumer a process registers, the committed and
end offsets of the partitions it owns from the broker, feeds them to its
``payflow.liveness.ProgressWatch``, and ends the process when one is stuck.

The offsets come from clients of the watchdog's own (an admin client and a consumer in no
group), so a consumer that has stopped fetching cannot make its own check look fine. When they
cannot be read (the broker is away) or the consumer is waiting out an outage, nothing is
counted. A stuck process logs one line saying why and exits at once with ``STUCK_EXIT_STATUS``:
a graceful stop could hang on the very thing that is stuck, and nothing is lost, since every
consumer commits offsets only after their effects (at-least-once, idempotent effects).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from payflow.failures import Outage
from payflow.liveness import Offsets, ProgressWatch, Stall
from payflow.settings import Settings
from payflow.tasks import running

log = logging.getLogger(__name__)
STUCK_EXIT_STATUS = 75
"""EX_TEMPFAIL: the process gave up on purpose, and a restart is the remedy."""


@dataclass
class Watched:
    """One consumer under the watchdog."""

    name: str
    group: str
    """Its consumer group id, as given to Kafka (prefixed)."""
    assignment: Callable[[], Iterable[tuple[str, int]]]
    """The (topic, partition) pairs it owns right now (the ones it should be processing)."""
    waiting: Callable[[], bool]
    """True while it is waiting out a dependency's outage (not stuck)."""
    watch: ProgressWatch
    detail: Callable[[], str] = lambda: ""
    """What else the stuck line should say about the consumer's state (Faust's, say)."""


@dataclass
class Watchdog:
    settings: Settings
    watched: list[Watched] = field(default_factory=list)
    on_stuck: Callable[[str], None] = field(default=lambda line: _exit_stuck(line))
    """Given the line saying why; by default logs it and ends the process."""
    clock: Callable[[], float] = time.monotonic

    def add(self, name: str, group: str, assignment: Callable[[], Iterable[tuple[str, int]]],
            waiting: Callable[[], bool] = lambda: False,
            detail: Callable[[], str] = lambda: "") -> Watched | None:
        """Watch a consumer (until ``remove``); None when the check is off."""
        if self.settings.liveness_stall_seconds <= 0:
            return None
        watched = Watched(name, group, assignment, waiting,
                          ProgressWatch(self.settings.liveness_stall_seconds), detail)
        self.watched.append(watched)
        log.info("liveness: watching %s (limit %g s)", name, self.settings.liveness_stall_seconds)
        return watched

    def remove(self, watched: Watched | None) -> None:
        if watched in self.watched:
            self.watched.remove(watched)

    async def run(self) -> None:
        """Check every ``liveness_check_seconds`` until cancelled (returns at once when the
        check is off)."""
        if self.settings.liveness_stall_seconds <= 0:
            return
        probe: _Probe | None = None
        try:
            while True:
                await asyncio.sleep(self.settings.liveness_check_seconds)
                if probe is None:
                    probe = await _Probe.open(self.settings)
                if probe is not None and not await self._check(probe):
                    await probe.close()  # the next round connects afresh
                    probe = None
        finally:
            if probe is not None:
                await probe.close()

    async def _check(self, probe: OffsetReader) -> bool:
        """One round over every consumer; False if the broker could not be asked."""
        for watched in list(self.watched):
            if watched.waiting():
                watched.watch.pause()
                continue
            partitions = sorted({TopicPartition(t, p) for t, p in watched.assignment()})
            try:
                offsets = await asyncio.wait_for(probe.read(watched.group, partitions),
                                                 timeout=self.settings.liveness_check_seconds)
            except Exception as error:  # the broker is away or slow: nothing to judge by
                log.debug("liveness: offsets of %s unreadable: %r", watched.name, error)
                for each in self.watched:
                    each.watch.pause()
                return False
            stall = watched.watch.observe(self.clock(), offsets)
            if stall is not None and not watched.waiting():
                self.on_stuck(stuck_line(watched.name, stall, self.settings.liveness_stall_seconds,
                                         watched.detail()))
        return True


@contextlib.asynccontextmanager
async def watching(settings: Settings, name: str, consumer: AIOKafkaConsumer, group: str,
                   *outages: Outage) -> AsyncIterator[None]:
    """Within the block, a watchdog of its own ends the process if ``consumer`` (of ``group``)
    gets stuck while none of its ``outages`` is ongoing: the plain consumers' one line."""
    watchdog = Watchdog(settings)
    watchdog.add(name, group, consumer.assignment,
                 lambda: any(outage.ongoing for outage in outages))
    async with running(watchdog.run(), name="liveness"):
        yield


def stuck_line(name: str, stall: Stall, limit_seconds: float, detail: str = "") -> str:
    return (f"liveness: {name} is stuck ({stall.describe()}; limit "
            f"PAYFLOW_LIVENESS_STALL_SECONDS={limit_seconds:g}{'; ' + detail if detail else ''})"
            f": exiting with status {STUCK_EXIT_STATUS} to be restarted")


def _exit_stuck(line: str) -> None:
    log.error("%s", line)
    for handler in [*logging.getLogger().handlers, *log.handlers]:
        with contextlib.suppress(Exception):
            handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(STUCK_EXIT_STATUS)


class OffsetReader(Protocol):
    async def read(self, group: str, partitions: list[TopicPartition]) -> dict[str, Offsets]:
        """The ``partitions``' committed offsets for ``group`` and end offsets, from the
        broker."""


class _Probe:
    """The watchdog's own view of the broker: end offsets and a group's committed offsets."""

    def __init__(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> None:
        self.admin = admin
        self.consumer = consumer

    @classmethod
    async def open(cls, settings: Settings) -> _Probe | None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap,
                                    request_timeout_ms=5000)
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                    request_timeout_ms=5000, enable_auto_commit=False)
        probe = cls(admin, consumer)
        try:
            await asyncio.wait_for(asyncio.gather(admin.start(), consumer.start()),
                                   timeout=settings.liveness_check_seconds)
        except Exception as error:
            log.debug("liveness: cannot reach the broker: %r", error)
            await probe.close()
            return None
        return probe

    async def read(self, group: str, partitions: list[TopicPartition]) -> dict[str, Offsets]:
        if not partitions:
            return {}
        ends = await self.consumer.end_offsets(partitions)
        committed = await self.admin.list_consumer_group_offsets(group, partitions=partitions)
        never = [tp for tp in partitions if (meta := committed.get(tp)) is None or meta.offset < 0]
        firsts = await self.consumer.beginning_offsets(never) if never else {}
        offsets = {}
        for tp in partitions:
            meta = committed.get(tp)
            start = firsts.get(tp, meta.offset if meta is not None else 0)
            offsets[f"{tp.topic}-{tp.partition}"] = Offsets(committed=start, end=ends[tp])
        return offsets

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.consumer.stop()
        with contextlib.suppress(Exception):
            await self.admin.close()

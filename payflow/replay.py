"""``payflow replay``'s machinery: a throwaway deployment of the stream worker, fed the history.

Isolation. Replayed payments are history, not money: they must not reach a live merchant's
ledger balance, a webhook, the live worker's velocity tables or the dashboard's rollups. So a
replay runs in a deployment of its own — a fresh topic prefix (``<live prefix>replay.<run>.``,
``Settings.topic_prefix``) with the catalog's topics created under it, and its own stream
worker(s) started on that prefix. Nothing else consumes those topics: the ledger, webhook
sender and analytics read the live prefix only, so no posting, webhook or rollup can follow,
and the worker's tables start empty, so features are computed from the history alone. The
worker is the real one (``payflow worker``, the same code and settings as live), and a
feature-log writer of the deployment's own (``payflow feature-log``) writes every decision's
features into the ``feature_log`` table of the configured database, which is what training
reads (``models.retraining.read_feature_log``). When the replay ends, the processes stop and
the prefix's topics and local table state are deleted.

Labels travel as live ones do: each fraud label is a ``dispute.created`` event on the
deployment's ``payments.events``, which the worker's label consumer forwards to the merchant
stage. The schedule (``ingest.replay_schedule``) learns that a payment finished from its
decision on ``payments.decisions`` and that a label did from its arrival on ``risk.merchants``.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ingest.contracts import DisputeEvent, UndecodableMessage, decode_decision
from ingest.replay import LABEL, ReplayItem
from ingest.replay_schedule import Access, ReplaySchedule
from ingest.topics import PAYMENT_DECISIONS, PAYMENT_EVENTS, PAYMENT_REQUESTS, RISK_MERCHANTS
from models.facts import LabelFacts, label_facts, payment_facts
from models.features import DAY, LABEL_DELAY_DAYS
from payflow.settings import Settings
from payflow.supervisor import Supervisor
from payflow.topics import create_topics, delete_consumer_groups, delete_topics
from streams.cases import decode_bundle

LABEL_MARKER = b'"label"'
"""A label's tag on risk.merchants (``streams.cases``), looked for before decoding, since every
payment crosses that topic too."""
POLL_SECONDS = 0.2


class ReplayFailed(RuntimeError):
    """The replay could not finish: a worker died, or nothing progressed for too long."""


def accesses(item: ReplayItem) -> list[Access]:
    """The feature entities an item reads or changes, as ``models.features`` keys them.

    Card, origin and customer features depend on every earlier payment of the entity: their
    access is exclusive. A merchant's features count only its payments of 7 to 35 days before
    (``LABEL_DELAY_DAYS``, by UTC day) and the labels of those payments: its payments of one day
    commute (any order gives the same features), so they share that day's segment; so does a
    label of a payment less than ``LABEL_DELAY_DAYS`` days older than the label, which no
    payment of that day counts. Other labels are exclusive. (The unit tests play every order
    this allows through the feature code.)
    """
    assert LABEL_DELAY_DAYS >= 1, "a merchant's same-day payments no longer commute"
    message = item.message
    if isinstance(message, DisputeEvent):
        label = label_facts(message)
        day = int(label.time_seconds // DAY)
        recent = int(label.payment_time_seconds // DAY) >= day - LABEL_DELAY_DAYS
        return [(f"merchant:{label.merchant_id}", f"day:{day}" if recent else None)]
    facts = payment_facts(message)
    day_group = f"day:{int(facts.time_seconds // DAY)}"
    found: list[Access] = [(f"card:{facts.card}", None),
                           (f"merchant:{facts.merchant_id}", day_group)]
    if facts.origin is not None:
        found.append((f"origin:{facts.origin}", None))
    if facts.customer is not None:
        found.append((f"customer:{facts.customer}", None))
    return found


@dataclass
class ReplayDeployment:
    """A topic prefix of the replay's own, its topics, and the workers running on it."""

    settings: Settings
    supervisor: Supervisor
    worker_names: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, live: Settings, env: dict[str, str], workers: int = 1) -> ReplayDeployment:
        run = uuid.uuid4().hex[:8]
        prefix = f"{live.topic_prefix}replay.{run}."
        settings = live.model_copy(update={"topic_prefix": prefix})
        asyncio.run(create_topics(settings))
        child_env = {**env, "PAYFLOW_TOPIC_PREFIX": prefix,
                     "PAYFLOW_DATABASE_URL": live.database_url,
                     "PAYFLOW_KAFKA_BOOTSTRAP": live.kafka_bootstrap,
                     "PAYFLOW_HOME": str(live.home)}
        deployment = cls(settings, Supervisor(live.home / "logs" / f"replay-{run}", env=child_env))
        deployment.supervisor.start("feature-log", "feature-log")
        for index in range(1, workers + 1):
            name = f"replay-{index}"
            deployment.supervisor.start(name, "worker", extra_env={"PAYFLOW_WORKER_NAME": name})
            deployment.worker_names.append(name)
        return deployment

    def failure(self) -> str | None:
        """Why a process stopped (its log's tail), or None while all run."""
        for child in self.supervisor.dead():
            log = child.log_path.read_text(errors="replace")[-2000:]
            return f"{child.name} exited with {child.process.returncode}:\n{log}"
        return None

    def remove(self) -> None:
        """Stop the processes; delete the prefix's topics, consumer groups and the workers' table
        state."""
        self.supervisor.stop_all()
        asyncio.run(delete_topics(self.settings))
        asyncio.run(delete_consumer_groups(self.settings))
        for name in self.worker_names:
            shutil.rmtree(self.settings.home / "streams" / f"{self.settings.topic_prefix}{name}",
                          ignore_errors=True)


@dataclass
class ReplayStats:
    payments: int = 0
    labels: int = 0
    seconds: float = 0.0
    first_decision_seconds: float | None = None
    """From the first send to the first decision: mostly the workers' start-up."""
    round_trips_ms: list[float] = field(default_factory=list)
    """Send to decision (or label delivery) of the first ``MAX_SAMPLES`` items."""

    @property
    def payments_per_second(self) -> float:
        """After the first decision (start-up excluded)."""
        busy = self.seconds - (self.first_decision_seconds or 0.0)
        return self.payments / busy if busy > 0 else 0.0

    def round_trip_ms(self, share: float) -> float:
        """A percentile of the round trips after start-up (0 without any)."""
        skip = len(self.round_trips_ms) // 10  # the first items waited for the worker to start
        ordered = sorted(self.round_trips_ms[skip:])
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


MAX_SAMPLES = 100_000
Progress = Callable[[ReplayStats], None]
Finished = asyncio.Queue[tuple[str, float]]
"""(item id, monotonic time it was seen) of each decision or delivered label."""


async def run(settings: Settings, schedule: ReplaySchedule, *, stall_seconds: float,
              failure: Callable[[], str | None], progress: Progress) -> ReplayStats:
    """Send what the schedule releases, feed it what finished, until it is done."""
    prefix = settings.topic_prefix
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap,
                                enable_idempotence=True, linger_ms=5)
    finished: Finished = asyncio.Queue()
    readers = [_Reader(settings, PAYMENT_DECISIONS.name_for(prefix), _decided),
               _Reader(settings, RISK_MERCHANTS.name_for(prefix), labels_in)]
    await producer.start()
    tasks = [asyncio.create_task(reader.run(finished)) for reader in readers]

    def failed() -> str | None:
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                return f"reading decisions and labels failed: {task.exception()!r}"
        return failure()

    try:
        for reader in readers:
            await reader.started.wait()
        driver = _Driver(producer, prefix, schedule, finished)
        return await driver.run(stall_seconds, failed, progress)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await producer.stop()


@dataclass
class _Driver:
    producer: AIOKafkaProducer
    prefix: str
    schedule: ReplaySchedule
    finished: Finished
    stats: ReplayStats = field(default_factory=ReplayStats)
    start: float = field(default_factory=time.monotonic)
    sent_at: dict[str, float] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)

    async def run(self, stall_seconds: float, failure: Callable[[], str | None],
                  progress: Progress) -> ReplayStats:
        schedule, stats = self.schedule, self.stats
        last_change = self.start
        while not schedule.done:
            await self._send(schedule.due(time.monotonic() - self.start))
            before = schedule.finished
            await self._collect()
            now = time.monotonic()
            if schedule.finished != before or schedule.in_flight == 0:
                last_change = now  # progress, or nothing in flight (a scaled replay waits)
            if schedule.finished != before and stats.first_decision_seconds is None:
                stats.first_decision_seconds = now - self.start
            stats.seconds = now - self.start
            progress(stats)
            if reason := failure():
                raise ReplayFailed(reason)
            if now - last_change > stall_seconds:
                raise ReplayFailed(f"no decision or label arrived for {stall_seconds:g} s with "
                                   f"{schedule.in_flight} in flight")
        await self.producer.flush()
        return stats

    async def _send(self, items: list[ReplayItem]) -> None:
        requests = PAYMENT_REQUESTS.name_for(self.prefix)
        events = PAYMENT_EVENTS.name_for(self.prefix)
        for item in items:
            label = item.id.startswith(LABEL)
            sent = await self.producer.send(events if label else requests,
                                            item.message.encode(), key=item.message.key())
            sent.add_done_callback(functools.partial(_note_failure, self.errors))
            self.sent_at[item.id] = time.monotonic()
            self.stats.labels += label
            self.stats.payments += not label
        if self.errors:
            raise ReplayFailed(f"Kafka refused a message: {self.errors[0]!r}")

    async def _collect(self) -> None:
        """Wait (a little) for something to finish; hand the schedule all that did."""
        try:
            found = [await asyncio.wait_for(self.finished.get(), self._wait_seconds())]
        except TimeoutError:
            return
        while not self.finished.empty():
            found.append(self.finished.get_nowait())
        for item_id, seen_at in found:
            sent_at = self.sent_at.pop(item_id, None)
            if sent_at is not None and len(self.stats.round_trips_ms) < MAX_SAMPLES:
                self.stats.round_trips_ms.append((seen_at - sent_at) * 1000)
            self.schedule.finish(item_id)

    def _wait_seconds(self) -> float:
        due = self.schedule.next_due_seconds()
        if due is None:
            return POLL_SECONDS
        return min(POLL_SECONDS, max(0.0, due - (time.monotonic() - self.start)))


def _note_failure(errors: list[BaseException], sent: asyncio.Future[Any]) -> None:
    if not sent.cancelled() and sent.exception() is not None:
        errors.append(sent.exception() or RuntimeError("send failed"))


def _decided(value: bytes) -> list[str]:
    try:
        return [decode_decision(value).subject]
    except UndecodableMessage:
        return []


def labels_in(value: bytes) -> list[str]:
    """Item ids of the labels in a ``risk.merchants`` message (a stage item or a bundle)."""
    if LABEL_MARKER not in value:
        return []
    try:
        items = decode_bundle(value)
    except ValueError:
        return []  # not a stage message: the worker dead-letters it
    return [LABEL + item.payment_id for item in items if isinstance(item, LabelFacts)]


@dataclass
class _Reader:
    """Reads a topic of the deployment from its start; ``finished`` gets the item ids found."""

    settings: Settings
    topic: str
    item_ids: Callable[[bytes], list[str]]
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, finished: Finished) -> None:
        consumer: Any = AIOKafkaConsumer(
            self.topic, bootstrap_servers=self.settings.kafka_bootstrap, group_id=None,
            auto_offset_reset="earliest", fetch_max_wait_ms=50, max_poll_records=5000)
        await consumer.start()
        self.started.set()
        try:
            while True:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    seen_at = time.monotonic()
                    for record in batch:
                        for item_id in self.item_ids(record.value) if record.value else ():
                            finished.put_nowait((item_id, seen_at))
        finally:
            await consumer.stop()


def wait_for_feature_log(count: Callable[[], int], expected: int, timeout_seconds: float,
                         failure: Callable[[], str | None]) -> int:
    """Poll ``count`` (feature-log rows of imported payments) until it reaches ``expected``;
    ReplayFailed after ``timeout_seconds`` or when a worker dies. The rows found."""
    deadline = time.monotonic() + timeout_seconds
    while (found := count()) < expected:
        if reason := failure():
            raise ReplayFailed(reason)
        if time.monotonic() > deadline:
            raise ReplayFailed(f"the feature log holds {found} of {expected} replayed payments "
                               f"after {timeout_seconds:g} s")
        time.sleep(0.5)
    return found

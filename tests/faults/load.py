"""Open-loop payment traffic, process memory and the nothing-lost checks shared by the fault
tests (the soak, overload, outage and restart tests).

Traffic is the benchmark's: simulator payments (``bench.endtoend.simulated_bodies``: a bounded
population of cards, customers and devices, so the worker's state reaches a steady size) sent
by its lean open-loop client (``bench.http_load``): request ``i`` leaves at ``i / rate`` seconds
whatever earlier ones are doing, and its latency runs from that scheduled time.

Memory is each supervised process's resident set (``VmRSS``, summed over its process group, so
a child a deployable spawns counts with it), sampled while the load runs.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.endtoend import group_lags
from bench.http_load import Answer, Client, Outcome, open_loop
from bench.procstat import parse_status_bytes
from bench.stack import BENCH_ENV
from bench.stats import arrival_schedule
from ingest.topics import DEAD_LETTERS
from payflow.settings import Settings
from tests.cards import fresh_card_number
from tests.harness import IsolatedEnvironment, RunningStack, derived_environment

RATE_LIMIT_LIFTED = BENCH_ENV
"""One test merchant sends everything: its per-merchant rate limit (a policy, 429) must not
be what refuses the load; the limiter still runs on every request."""
ACCEPTED = (201, 202)
SHED = (429, 503)
MAX_CONNECTIONS = 512
REQUEST_TIMEOUT_SECONDS = 30.0


def stack_environment(base: IsolatedEnvironment, name: str,
                      extra_env: dict[str, str]) -> IsolatedEnvironment:
    """A database and topic prefix of the test's own (its counts see only its payments), with
    ``extra_env`` for every process of its stack. The caller tears it down."""
    derived = derived_environment(base, name)
    derived.env.update(extra_env)
    return derived


async def offer(stack: RunningStack, key: str, bodies: Sequence[bytes], rate: float,
                seconds: float, max_outstanding: int) -> list[Outcome]:
    """``rate`` POST /v1/payments per second for ``seconds`` (open loop, bounded: at most
    ``max_outstanding`` in the air, ``rate * seconds`` in all, bodies reused in turn). The
    bodies of accepted answers are kept (they hold the payment ids)."""
    port = int(stack.base_url.rsplit(":", 1)[1])
    client = Client("127.0.0.1", port, MAX_CONNECTIONS, REQUEST_TIMEOUT_SECONDS)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    async def send(index: int) -> Answer:
        return await client.request("POST", "/v1/payments", headers,
                                    bodies[index % len(bodies)])

    try:
        return await open_loop(send, arrival_schedule(rate, seconds), max_outstanding,
                               keep_body=lambda status: status in ACCEPTED)
    finally:
        client.close()


def accepted_ids(outcomes: Sequence[Outcome]) -> list[str]:
    return [orjson.loads(o.body)["transaction"]["id"] for o in outcomes if o.status in ACCEPTED]


def wait_until_decided(settings: Settings, payment_ids: Sequence[str],
                       timeout_seconds: float) -> None:
    """Every one of ``payment_ids`` exists and has left ``pending`` (bounded wait)."""
    deadline = time.monotonic() + timeout_seconds
    ids = list(payment_ids)
    found = decided = 0
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*), count(*) FILTER (WHERE status <> 'pending') "
                               "FROM payments WHERE id = ANY(%s)", (ids,)).fetchone()
            assert row is not None
            found, decided = row
            if decided == len(ids):
                return
            time.sleep(1)
    pytest.fail(f"of {len(ids)} accepted payments {found} exist and {decided} were decided "
                f"within {timeout_seconds:.0f} s")


def assert_applied_once(settings: Settings, payment_ids: Sequence[str]) -> None:
    """Each accepted payment has exactly one decision event (authorized or failed; a
    capture-at-once payment also has its captured event), at most one capture entry, and no
    state change with two events (a redelivered decision was applied once)."""
    ids = list(payment_ids)
    with psycopg.connect(settings.database_url) as conn:
        decisions = conn.execute(
            """SELECT p.id, count(e.id) FROM payments p
               LEFT JOIN events e ON e.subject = p.id AND e.type IN
                 ('payment.authorized.v1', 'payment.failed.v1')
               WHERE p.id = ANY(%s) GROUP BY p.id HAVING count(e.id) <> 1""", (ids,)).fetchall()
        captures = conn.execute(
            """SELECT payment_id, count(*) FROM journal_entries
               WHERE payment_id = ANY(%s) AND kind = 'capture'
               GROUP BY payment_id HAVING count(*) > 1""", (ids,)).fetchall()
        twice = conn.execute(
            """SELECT subject, type, count(*) FROM events WHERE subject = ANY(%s)
               GROUP BY subject, type HAVING count(*) <> 1""", (ids,)).fetchall()
    assert decisions == [], f"payments without exactly one decision event: {decisions[:5]}"
    assert captures == [], f"payments captured more than once: {captures[:5]}"
    assert twice == [], f"state changes with more than one event: {twice[:5]}"


def wait_for_lag(settings: Settings, timeout_seconds: float) -> dict[str, int]:
    """Wait (bounded) until every consumer group of the prefix has caught up; its lags."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        lags = asyncio.run(group_lags(settings))
        if not any(lags.values()) or time.monotonic() >= deadline:
            return lags
        time.sleep(1)


# --- memory -----------------------------------------------------------------------------------

def parse_rss_bytes(status_text: str) -> int | None:
    """``VmRSS`` of a ``/proc/<pid>/status`` text, in bytes (None if absent: a zombie)."""
    return parse_status_bytes(status_text, "VmRSS")


def group_rss_bytes(process_group: int) -> int:
    """The summed ``VmRSS`` of every live process in ``process_group``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != process_group:
                continue
            total += parse_rss_bytes((entry / "status").read_text()) or 0
        except (OSError, IndexError, ValueError):
            continue
    return total


@dataclass
class MemorySeries:
    """RSS samples of one process: (seconds since the load began, bytes)."""

    samples: list[tuple[float, int]] = field(default_factory=list)

    def summary(self, warm_up_seconds: float) -> dict[str, float]:
        """MiB: the first sample, the median of the first third after the warm-up, the peak,
        the last sample, the median of the last third, and ``growth`` (last third's median
        minus the first third's, after the warm-up)."""
        steady = [rss for at, rss in self.samples if at >= warm_up_seconds]
        assert len(steady) >= 3, f"too few samples after the warm-up: {len(steady)}"
        third = len(steady) // 3
        first, last = statistics.median(steady[:third]), statistics.median(steady[-third:])

        def mib(value: float) -> float:
            return round(value / 2**20, 1)

        return {"start_mib": mib(self.samples[0][1]), "after_warm_up_mib": mib(first),
                "peak_mib": mib(max(rss for _, rss in self.samples)),
                "end_mib": mib(self.samples[-1][1]), "last_third_mib": mib(last),
                "growth_mib": mib(last - first)}


async def sample_memory(groups: dict[str, int], every_seconds: float,
                        stop: asyncio.Event, on_sample: Callable[[], None] = lambda: None,
                        ) -> dict[str, MemorySeries]:
    """Sample each named process group's RSS every ``every_seconds`` until ``stop`` is set."""
    series = {name: MemorySeries() for name in groups}
    start = time.monotonic()
    while True:
        at = time.monotonic() - start
        for name, group in groups.items():
            series[name].samples.append((at, await asyncio.to_thread(group_rss_bytes, group)))
        on_sample()
        try:
            await asyncio.wait_for(stop.wait(), every_seconds)
            return series
        except TimeoutError:
            continue


@dataclass(frozen=True)
class DeadLetter:
    consumer: str
    reason: str
    key: bytes | None


async def dead_letters(settings: Settings, timeout_seconds: float = 30.0) -> list[DeadLetter]:
    """Every message on the dead-letter topic of ``settings``' prefix now, from its headers."""
    topic = DEAD_LETTERS.name_for(settings.topic_prefix)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or {0})]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []
        deadline = time.monotonic() + timeout_seconds
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, f"could not read {topic} in {timeout_seconds} s"
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    headers = {k: v.decode(errors="replace") for k, v in record.headers}
                    letters.append(DeadLetter(headers.get("consumer", "?"),
                                              headers.get("reason", "?"), record.key))
        return letters
    finally:
        await consumer.stop()


def post_card_payment(stack: RunningStack, key: str, amount: int,
                      description: str | None = None) -> httpx.Response:
    """POST one card payment (a fresh card number each time) to the stack's API."""
    card = {"number": fresh_card_number(), "exp_month": 12, "exp_year": 2031, "cvc": "123"}
    body: dict[str, object] = {"amount": amount, "currency": "usd",
                               "payment_method": {"type": "card", "card": card}}
    if description is not None:
        body["description"] = description
    return httpx.post(f"{stack.base_url}/v1/payments", timeout=30,
                      headers={"Authorization": f"Bearer {key}"}, json=body)

"""Benchmark of one risk-engine worker on the real broker (not a test; run it by hand).

    .venv/bin/python -m bench.streams [--payments 20000] [--rate 1000] [--seconds 20]

1. Throughput: starts one worker (and the feature-log writer, a process of its own), builds
   ``--payments`` synthetic requests, then fills ``payments.requests`` with them as fast as it
   can and measures decisions per second from the start of the fill to the last decision, and
   the worker's CPU time per decision (the writer's beside it). The requests are built and
   encoded before the clock starts (until stop 20 they were built during the fill, beside the
   worker: pydantic's share of the load generator's CPU then counted against the worker).
2. Latency: with the worker running, sends requests at ``--rate`` per second for ``--seconds``
   and reports the request-produced -> decision-produced latency (Kafka CreateTime of each)
   p50/p99/max.

Everything runs under a topic prefix and a database of its own (``bench.sandbox``: created,
migrated, given a bootstrapped model, and removed at the end with the worker's table state, even
on Ctrl-C), on 127.0.0.1 only, bounded in count and time. ``throughput`` and ``latency`` also
return their figures, which ``python -m bench`` collects beside a raw aiokafka pass-through on
the same topic (``bench.passthrough``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.sandbox import sandbox, stop_on_terminate
from ingest.contracts import (
    CardSummary,
    PaymentMethodSummary,
    PaymentRequest,
    PaymentRequested,
)
from ingest.topics import PAYMENT_DECISIONS, PAYMENT_REQUESTS
from payflow.cli.model import bootstrap_model
from payflow.settings import Settings
from payflow.supervisor import Supervisor

MAX_PAYMENTS, MAX_SECONDS = 200_000, 120


def synthetic_request(rng: random.Random, index: int, at: float) -> PaymentRequested:
    """A request from a population of 20k cards, 5k IPs, 10k customers and 200 merchants."""
    card = f"bench_card_{rng.randrange(20_000)}"
    method = PaymentMethodSummary(id=f"pm_{index}", type="card", card=CardSummary(
        brand="visa", funding="credit", last4="4242", exp_month=12, exp_year=2030,
        fingerprint=card))
    data = PaymentRequest(
        payment_id=f"pay_bench_{index}", amount=int(rng.lognormvariate(8, 1)) + 50,
        currency="USD", payment_method=method, customer_id=f"cus_{rng.randrange(10_000)}",
        ip_address=f"10.0.{rng.randrange(20)}.{rng.randrange(250)}", ip_country="US")
    return PaymentRequested(source="bench", merchant_id=f"m_{rng.randrange(200)}",
                            subject=data.payment_id, time=datetime.fromtimestamp(at, UTC),
                            data=data)


def prepare(count: int, first_index: int = 0) -> list[tuple[bytes, bytes]]:
    """(key, value) of ``count`` synthetic requests, event times 10 ms apart ending now."""
    rng, start = random.Random(first_index), time.time() - count * 0.01
    out = []
    for index in range(first_index, first_index + count):
        message = synthetic_request(rng, index, start + (index - first_index) * 0.01)
        out.append((message.key(), message.encode()))
    return out


async def fill(settings: Settings, count: int, first_index: int = 0,
               prepared: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send ``count`` synthetic requests (``prepare``), or the ``prepared`` ones."""
    messages = prepare(count, first_index) if prepared is None else prepared
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=20,
                                max_batch_size=256 * 1024)
    await producer.start()
    try:
        topic = PAYMENT_REQUESTS.name_for(settings.topic_prefix)
        for key, value in messages:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def read_decisions(settings: Settings, count: int, timeout_seconds: float,
                         ) -> list[tuple[int, bytes]]:
    """(CreateTime ms, payment id) of the first ``count`` decisions (waits at most the timeout)."""
    consumer = AIOKafkaConsumer(
        PAYMENT_DECISIONS.name_for(settings.topic_prefix),
        bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
        group_id=None, fetch_max_wait_ms=20)
    await consumer.start()
    found: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + timeout_seconds
    try:
        while len(found) < count and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                found.extend((record.timestamp, record.key or b"") for record in batch)
    finally:
        await consumer.stop()
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


async def paced(settings: Settings, rate: float, seconds: float) -> dict[bytes, int]:
    """Send at ``rate``/s for ``seconds``; the CreateTime (ms) of each request by payment id.

    The requests are built and encoded before the clock starts, so that the load generator
    spends its CPU on sending, not on pydantic, beside the worker it measures; their event times
    are ``1 / rate`` apart from when building began (a constant offset from the sending, which
    features, reading differences of event times, do not see). The producer lingers 2 ms, as
    the API's does."""
    rng, sent = random.Random(2), {}
    count, first, built_from = int(rate * seconds), 10_000_000, time.time()
    messages = []
    for index in range(first, first + count):
        message = synthetic_request(rng, index, built_from + (index - first) / rate)
        messages.append((message.key(), message.encode()))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=2)
    await producer.start()
    topic = PAYMENT_REQUESTS.name_for(settings.topic_prefix)
    started, sending = time.monotonic(), 0
    try:
        while sending < count and time.monotonic() - started < seconds + 5:
            due = min(count, int((time.monotonic() - started) * rate) + 1)
            while sending < due:
                key, value = messages[sending]
                timestamp_ms = int(time.time() * 1000)
                await producer.send(topic, value, key=key, timestamp_ms=timestamp_ms)
                sent[key] = timestamp_ms
                sending += 1
            await asyncio.sleep(0.001)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def throughput(settings: Settings, supervisor: Supervisor, count: int) -> dict[str, Any]:
    """Start the worker and its feature-log writer on an idle topic, then fill it: from the
    first request it reads to its last decision is the time it took for ``count`` (the CPU
    times are read over the same span). Prints the THROUGHPUT line and returns its figures."""
    worker = supervisor.start("worker", "worker", extra_env={"PAYFLOW_WORKER_NAME": "bench"})
    writer = supervisor.start("feature-log", "feature-log")
    asyncio.run(fill(settings, 1, first_index=MAX_PAYMENTS))
    assert asyncio.run(read_decisions(settings, 1, 180)), "the worker decided nothing"
    prepared = prepare(count)  # built before the clock starts, as ``paced`` does
    cpu_start = cpu_seconds(worker.process.pid), cpu_seconds(writer.process.pid)
    print(f"worker ready; filling {count} requests ...", flush=True)
    filled_at = time.time()
    asyncio.run(fill(settings, count, prepared=prepared))
    found = asyncio.run(read_decisions(settings, count + 1, MAX_SECONDS))
    decided = max(len(found) - 1, 1)
    cpu = cpu_seconds(worker.process.pid) - cpu_start[0]
    writer_cpu = cpu_seconds(writer.process.pid) - cpu_start[1]
    span = found[-1][0] / 1000 - filled_at
    print(f"THROUGHPUT: {len(found) - 1} decisions {span:.2f} s after the fill started = "
          f"{(len(found) - 1) / span:,.0f}/s; worker CPU {cpu / decided * 1e6:,.0f} us per "
          f"decision (feature-log writer, same span: {writer_cpu / decided * 1e6:,.0f} us)")
    return {"payments": count, "decisions": len(found) - 1, "seconds": round(span, 3),
            "decisions_per_second": round((len(found) - 1) / span, 1),
            "worker_cpu_us_per_decision": round(cpu / decided * 1e6, 1),
            "feature_log_cpu_us_per_decision": round(writer_cpu / decided * 1e6, 1)}


def latency(settings: Settings, rate: float, seconds: float,
            supervisor: Supervisor | None = None) -> dict[str, Any]:
    """Prints the LATENCY line and returns its figures; with the ``supervisor`` that runs the
    worker, also the worker's CPU time per decision over the sending (and 0.5 s after it)."""
    print(f"sending {rate:g}/s for {seconds:g} s ...", flush=True)
    worker = None if supervisor is None else next(
        child for child in supervisor.children if child.name == "worker")
    cpu_start = None if worker is None else cpu_seconds(worker.process.pid)
    sent = asyncio.run(paced(settings, rate, seconds))
    time.sleep(0.5)
    cpu = None if worker is None or cpu_start is None else (
        cpu_seconds(worker.process.pid) - cpu_start)
    decided = asyncio.run(read_decisions(settings, 10**9, 15))
    latencies = [float(ts - sent[key]) for ts, key in decided if key in sent]
    figures: dict[str, Any] = {"rate_per_second": rate, "seconds": seconds, "sent": len(sent),
                               "decided_within_15_s": len(latencies)}
    if not latencies:
        print(f"LATENCY at {rate:g}/s: none of {len(sent)} decided within 15 s of the last send")
        return figures
    if cpu is not None:
        figures["worker_cpu_us_per_decision"] = round(cpu / len(latencies) * 1e6, 1)
    worker_cpu = ("" if cpu is None else
                  f"; worker CPU {figures['worker_cpu_us_per_decision']:,.0f} us per decision")
    print(f"LATENCY at {rate:g}/s: {len(latencies)}/{len(sent)} decided within 15 s of the last "
          f"send; request produced -> decision produced p50 {percentile(latencies, 0.5):.0f} ms,"
          f" p99 {percentile(latencies, 0.99):.0f} ms, max {max(latencies):.0f} ms{worker_cpu}")
    return {**figures, "p50_ms": percentile(latencies, 0.5),
            "p99_ms": percentile(latencies, 0.99), "max_ms": max(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--payments", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    assert 0 < args.payments <= MAX_PAYMENTS and 0 < args.seconds <= MAX_SECONDS
    stop_on_terminate()
    with sandbox("streams") as box:
        settings = box.settings
        print(f"conditions: {os.cpu_count()} cores shared with the broker, PostgreSQL and "
              f"anything else running; batch {settings.stream_batch_size} / wait "
              f"{settings.stream_batch_wait_seconds} s; {PAYMENT_REQUESTS.partitions} "
              f"partitions; RocksDB tables; model from `payflow model bootstrap`")
        bootstrap_model(settings)
        throughput(settings, box.supervisor, args.payments)
        latency(settings, args.rate, args.seconds, box.supervisor)


if __name__ == "__main__":
    main()

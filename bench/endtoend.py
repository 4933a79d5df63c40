"""End-to-end benchmark: open-loop load through the HTTP API of a whole running stack.

    .venv/bin/python -m bench.endtoend [--rates 200,500,1000,2000] [--seconds 60]

The stack is payflow's own deployables as processes (``payflow api``, ``worker``, ``ledger``,
``webhooks``; the analytics consumer is left out: it is not on the authorization path) on a
database and topic prefix of the benchmark's own, with a bootstrapped fraud model, one merchant
and its rate limit lifted. The merchant has one webhook endpoint for ``payment.authorized`` and
``payment.failed`` (one delivery per decided payment), served by ``bench.webhook_sink``, a
bare 200 on 127.0.0.1, so the sender's figures include delivering. Payments come from
the traffic simulator (``ingest.traffic``, ``api_body``: a Luhn-valid card per simulated card,
customer IP and device), pre-encoded.

For each rate the generator sends request ``i`` at ``i / rate`` seconds, whatever earlier
requests are doing (open loop; at most ``MAX_OUTSTANDING`` in the air), and measures each
request's authorization latency from its scheduled time to its answer. After the schedule it
waits for the pipeline to drain (every payment decided and every consumer group caught up,
bounded by ``--drain-seconds``). Per rate: achieved throughput, latency p50/p95/p99/max, the
share answered 201 (decided in the budget), 202 (``pending``), shed (429/503) or failed,
consumer lag at the end of the schedule, payments still undecided after the drain, the
decision → ledger lag (the decision message's Kafka CreateTime to the ledger transaction that
applied it: its outbox event's ``created_at``) and the ledger → webhook delivery lag (that
event's ``created_at`` to the first 2xx attempt's ``attempted_at``), CPU seconds
per payment of each process (from /proc, schedule start to drain end, per payment the API
created, whether or not its answer came in time) and their total, the machine's CPU per payment
(everything, other users included) and how busy its cores were, and each process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import orjson
import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench import procstat
from bench.http_load import Answer, Client, Outcome, open_loop
from bench.sandbox import Sandbox, sandbox, stop_on_terminate
from bench.stack import BENCH_ENV, check_alive, prepare, service_pids, start, warm_up
from bench.stats import arrival_schedule, highest_rate_within, latency_summary_ms, per_second_counts
from ingest.topics import PAYMENT_DECISIONS
from ingest.traffic import SimulationConfig, api_body, simulate
from payflow.services.base import port_open
from payflow.settings import Settings
from payflow.supervisor import free_port

PROCESSES = ("api", "worker", "feature-log", "ledger", "webhooks")
MAX_OUTSTANDING = 20_000
MAX_CONNECTIONS = 512
REQUEST_TIMEOUT_SECONDS = 10.0
MAX_RATE, MAX_SECONDS = 5_000.0, 600.0
SHED = (429, 503)
DECIDED_EVENTS = ("payment.authorized", "payment.failed")
"""The webhook endpoint's events: a decided payment has exactly one of them, written by the
ledger in the transaction that applies the decision."""


def simulated_bodies(count: int, seed: int = 7) -> list[bytes]:
    """``count`` simulator payments as encoded request bodies, in the history's order."""
    days = max(1, math.ceil(count / 1000))
    payments = simulate(replace(SimulationConfig(), days=days, seed=seed))
    assert len(payments) >= count, (len(payments), count)
    return [orjson.dumps(api_body(payment)) for payment in payments[:count]]


def step_figures(rate: float, seconds: float, outcomes: list[Outcome]) -> dict[str, Any]:
    """The load-side figures of one rate from its outcomes (pure)."""
    statuses = Counter(outcome.status for outcome in outcomes)
    accepted = [o for o in outcomes if o.status in (201, 202)]
    scheduled = len(outcomes)
    span = max([seconds, *(o.answered for o in accepted)])
    shed = sum(statuses[s] for s in SHED)
    other = scheduled - len(accepted) - shed - statuses[0] - statuses[-1]

    def share(count: int) -> float:
        return round(count / scheduled, 4) if scheduled else 0.0

    return {
        "rate_per_second": rate, "seconds": seconds, "scheduled": scheduled,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "achieved_per_second": round(len(accepted) / span, 1),
        "answered_share": share(len(accepted)),
        "synchronous_share": share(statuses[201]), "pending_share": share(statuses[202]),
        "shed_share": share(shed), "failed_share": share(statuses[0]),
        "not_sent_share": share(statuses[-1]), "other_share": share(other),
        "latency": latency_summary_ms([o.latency for o in accepted]),
        "latency_synchronous": latency_summary_ms([o.latency for o in outcomes
                                                   if o.status == 201]),
        "answered_per_second_series": per_second_counts([o.answered for o in accepted],
                                                        math.ceil(span)),
        "shed_or_failed_per_second_series": per_second_counts(
            [o.answered for o in outcomes if o.status in (*SHED, 0)], math.ceil(span)),
    }


def cpu_figures(spent: dict[str, float], payments: int) -> dict[str, Any]:
    """CPU seconds and ms per payment of each process, our processes' total, and the machine."""
    per_payment = {name: round(seconds / max(1, payments) * 1000, 3)
                   for name, seconds in spent.items()}
    total = sum(spent.get(name, 0.0) for name in PROCESSES)
    return {"cpu_seconds": {k: round(v, 2) for k, v in spent.items()},
            "cpu_ms_per_payment": per_payment,
            "cpu_ms_per_payment_total": round(total / max(1, payments) * 1000, 3)}


async def group_lags(settings: Settings) -> dict[str, int]:
    """Messages not yet committed, per consumer group of the sandbox (prefix stripped)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await consumer.start()
    try:
        lags = {}
        for group, *_ in await admin.list_consumer_groups():
            if not str(group).startswith(settings.topic_prefix):
                continue
            committed = await admin.list_consumer_group_offsets(str(group))
            ends = await consumer.end_offsets(list(committed)) if committed else {}
            lags[str(group).removeprefix(settings.topic_prefix)] = sum(
                max(0, ends[part] - meta.offset) for part, meta in committed.items()
                if meta.offset >= 0)
        return lags
    finally:
        await consumer.stop()
        await admin.close()


async def pending_deliveries(settings: Settings) -> int:
    async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
        cursor = await conn.execute("SELECT count(*) FROM webhook_deliveries "
                                    "WHERE status = 'pending'")
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


async def decision_times(settings: Settings, since: float) -> dict[str, int]:
    """CreateTime (ms) of each decision produced since ``since`` (epoch seconds), by payment
    id; the first one where a payment has two."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    found: dict[str, int] = {}
    try:
        topic = PAYMENT_DECISIONS.name_for(settings.topic_prefix)
        partitions = [TopicPartition(topic, p) for p in range(PAYMENT_DECISIONS.partitions)]
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.offsets_for_times({tp: int(since * 1000) for tp in partitions})
        consumer.assign(partitions)
        left = {}
        for tp in partitions:
            start = starts[tp].offset if starts[tp] is not None else ends[tp]
            consumer.seek(tp, start)
            left[tp] = ends[tp] - start
        deadline = time.monotonic() + 60
        while any(n > 0 for n in left.values()) and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500,
                                                       max_records=10_000)).items():
                for record in records[:max(0, left[tp])]:
                    found.setdefault((record.key or b"").decode(), record.timestamp)
                left[tp] -= len(records)
    finally:
        await consumer.stop()
    return found


async def pipeline_lags(settings: Settings, since: float) -> dict[str, Any]:
    """Decision → ledger and ledger → webhook delivery lags of the payments decided since
    ``since`` (epoch seconds), and how many were measured."""
    decided = await decision_times(settings, since)
    async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
        cursor = await conn.execute(
            "SELECT subject, extract(epoch FROM created_at)::float8 FROM events "
            "WHERE type = ANY(%s) AND created_at >= to_timestamp(%s)",
            ([f"{name}.v1" for name in DECIDED_EVENTS], since))
        applied = await cursor.fetchall()
        cursor = await conn.execute(
            "SELECT extract(epoch FROM (first_ok - d.event_created_at))::float8 "
            "FROM webhook_deliveries d, LATERAL (SELECT min(a.attempted_at) AS first_ok "
            "  FROM webhook_attempts a WHERE a.delivery_id = d.id "
            "  AND a.status_code BETWEEN 200 AND 299) ok "
            "WHERE d.event_created_at >= to_timestamp(%s)", (since,))
        delivered = await cursor.fetchall()
    ledger = [at - decided[payment] / 1000 for payment, at in applied if payment in decided]
    webhook = [float(lag) for (lag,) in delivered if lag is not None]
    return {"decision_to_ledger": latency_summary_ms(ledger),
            "ledger_to_webhook_delivery": latency_summary_ms(webhook),
            "decisions_read": len(decided), "ledger_events": len(applied),
            "webhook_deliveries": len(delivered),
            "webhook_deliveries_undelivered": len(delivered) - len(webhook)}


async def payment_counts(settings: Settings) -> tuple[int, int]:
    """(payments, payments still pending) in the sandbox's database. Every payment there is
    the benchmark's (cards only: nothing waits for a bank transfer to clear)."""
    async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
        cursor = await conn.execute("SELECT count(*), count(*) FILTER (WHERE status = "
                                    "'pending') FROM payments")
        row = await cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)


async def drain(box: Sandbox, timeout_seconds: float) -> tuple[float, int, dict[str, int]]:
    """Wait until every payment is decided, every group caught up and every webhook delivery
    made (bounded): (seconds
    waited, payments still pending, lags at the end of the wait)."""
    started = time.monotonic()
    while True:
        check_alive(box)
        _, pending = await payment_counts(box.settings)
        lags = await group_lags(box.settings)
        undelivered = await pending_deliveries(box.settings)
        waited = time.monotonic() - started
        if (pending == 0 and not any(lags.values()) and undelivered == 0) \
                or waited >= timeout_seconds:
            return waited, pending, lags
        await asyncio.sleep(0.5)


async def run_step(box: Sandbox, key: str, pids: dict[str, list[int]], bodies: list[bytes],
                   rate: float, seconds: float, drain_seconds: float) -> dict[str, Any]:
    """One rate: open-loop load, then the drain; every figure of that rate."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    client = Client("127.0.0.1", box.settings.api_port, MAX_CONNECTIONS,
                    REQUEST_TIMEOUT_SECONDS)

    async def send(index: int) -> Answer:
        return await client.request("POST", "/v1/payments", headers, bodies[index])

    pids = {**pids, "postgres": procstat.pids_named("postgres")}
    payments_before, _ = await payment_counts(box.settings)
    before, generator_before = procstat.sample(pids), time.process_time()
    wall_started, since = time.monotonic(), time.time()
    try:
        outcomes = await open_loop(send, arrival_schedule(rate, seconds), MAX_OUTSTANDING)
    finally:
        client.close()
    generator_cpu = time.process_time() - generator_before
    lags_at_end = await group_lags(box.settings)
    waited, pending, lags_after = await drain(box, drain_seconds)
    pids["postgres"] = procstat.pids_named("postgres")
    spent = procstat.cpu_between(before, procstat.sample(pids))
    wall = time.monotonic() - wall_started
    created = (await payment_counts(box.settings))[0] - payments_before
    lags = await pipeline_lags(box.settings, since)
    return {
        **step_figures(rate, seconds, outcomes),
        "consumer_lag_at_end": lags_at_end, "drain_seconds": round(waited, 1),
        "drained": pending == 0 and not any(lags_after.values()),
        "payments_created": created, "undecided_after_drain": pending,
        "consumer_lag_after_drain": lags_after, **lags,
        **cpu_figures(spent, created),
        "wall_seconds": round(wall, 1),
        "machine_busy_share": round(spent["machine"] / (wall * (os.cpu_count() or 1)), 3),
        "generator_cpu_ms_per_request": round(generator_cpu / max(1, len(outcomes)) * 1000, 3),
        "peak_rss_mb": {name: round((procstat.peak_rss_bytes(ps[0]) or 0) / 2**20, 1)
                        for name, ps in pids.items() if name in PROCESSES},
    }


def measure(rates: tuple[float, ...] = (200, 500, 1000, 2000), seconds: float = 60.0,
            drain_seconds: float = 60.0, pause_seconds: float = 1.0) -> dict[str, Any]:
    """Start the stack, run each rate in turn, and return every figure."""
    assert rates and all(0 < rate <= MAX_RATE for rate in rates), rates
    assert 0 < seconds <= MAX_SECONDS and 0 <= drain_seconds <= MAX_SECONDS
    counts = [round(rate * seconds) for rate in rates]
    bodies = simulated_bodies(sum(counts))
    steps = []
    with sandbox("e2e", BENCH_ENV) as box:
        key = prepare(box)
        children = start(box, PROCESSES)
        endpoint = webhook_endpoint(box, key)
        asyncio.run(warm_up(box, key))
        pids = {name: [child.process.pid] for name, child in children.items()}
        pids.update(service_pids(box.settings))
        offset = 0
        for rate, count in zip(rates, counts, strict=True):
            print(f"e2e: {rate:g}/s for {seconds:g} s ...", flush=True)
            step = asyncio.run(run_step(box, key, pids, bodies[offset:offset + count], rate,
                                        seconds, drain_seconds))
            offset += count
            steps.append(step)
            print(f"e2e: {rate:g}/s -> {step['achieved_per_second']:g}/s answered, p99 "
                  f"{step['latency']['p99_ms']} ms, {step['synchronous_share']:.1%} in the "
                  f"budget, CPU {step['cpu_ms_per_payment_total']} ms/payment; decision → "
                  f"ledger p99 {step['decision_to_ledger']['p99_ms']} ms, ledger → webhook "
                  f"p99 {step['ledger_to_webhook_delivery']['p99_ms']} ms", flush=True)
            time.sleep(pause_seconds)
    return {
        "processes": list(PROCESSES), "seconds_per_rate": seconds, "rates": list(rates),
        "drain_seconds_max": drain_seconds, "max_outstanding": MAX_OUTSTANDING,
        "max_connections": MAX_CONNECTIONS, "request_timeout_seconds": REQUEST_TIMEOUT_SECONDS,
        "decision_budget_seconds": Settings().decision_budget_seconds,
        "rate_limit": "lifted for the benchmark merchant", "webhook_endpoint": endpoint,
        "steps": steps,
        "highest_rate_p99_under_2s": highest_rate_within(steps, 2000.0),
        "highest_rate_p99_under_250ms": highest_rate_within(steps, 250.0),
    }


def webhook_endpoint(box: Sandbox, key: str, timeout_seconds: float = 30) -> dict[str, Any]:
    """Start ``bench.webhook_sink`` and register it as the merchant's endpoint for the
    decided-payment events; the endpoint's URL and events."""
    import httpx

    port = free_port()
    box.start_python("webhook-sink", "-m", "bench.webhook_sink", "--port", str(port))
    deadline = time.monotonic() + timeout_seconds
    while not port_open("127.0.0.1", port):
        check_alive(box)
        if time.monotonic() > deadline:
            raise RuntimeError(f"the webhook sink did not listen within {timeout_seconds} s")
        time.sleep(0.1)
    body = {"url": f"http://127.0.0.1:{port}/payflow", "enabled_events": list(DECIDED_EVENTS)}
    answer = httpx.post(f"{box.api_base_url}/v1/webhook_endpoints", json=body, timeout=10,
                        headers={"Authorization": f"Bearer {key}"})
    answer.raise_for_status()
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="200,500,1000,2000",
                        help="comma-separated payments per second, run in turn")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds per rate")
    parser.add_argument("--drain-seconds", type=float, default=60.0)
    args = parser.parse_args()
    stop_on_terminate()
    rates = tuple(float(rate) for rate in args.rates.split(","))
    print(json.dumps(measure(rates, args.seconds, args.drain_seconds), indent=2))


if __name__ == "__main__":
    main()

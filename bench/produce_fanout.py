"""How long the broker takes to acknowledge one produce request, by how many partitions it
spans (not a test; run it by hand).

    .venv/bin/python -m bench.produce_fanout [--rounds 60] [--messages 1]

A stream worker's batch ends with one produce request carrying its decisions, feature-log
entries and the changelog writes of four tables: with the catalog's 6 partitions a topic, up to
36 partitions in one request. aiokafka keeps one produce request in flight per broker, so that
acknowledgement is a floor under each batch's cycle. This sends ``--rounds`` requests of
``--messages`` 300-byte messages to each of 1, 6, 12, 24, 36 and 48 partitions (linger 0,
acks=all, as the worker), one request at a time, 10 ms apart, after ``WARM_UP_ROUNDS``
uncounted ones, and prints the acknowledgement
time's p50/p90/max. Topics of its own (``bench.fanout.*``, 6 partitions each), deleted at the
end; 127.0.0.1 only; bounded in count (``MAX_ROUNDS``) and time (``MAX_SECONDS`` a fan-out).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.stats import percentile
from payflow.settings import get_settings

TOPICS, PARTITIONS = 8, 6
FANOUTS = (1, 6, 12, 24, 36, 48)
MAX_ROUNDS, MAX_SECONDS = 1_000, 60.0
WARM_UP_ROUNDS = 5
"""Not counted: in one run on 27 Nov 2026 the fourth request of every fan-out was its slowest
(8-95 ms). The maxima printed still include the broker's occasional stalls (up to 192 ms seen)."""
PAYLOAD = b"x" * 300


async def measure(bootstrap: str, rounds: int, messages: int) -> list[dict[str, float]]:
    names = [f"bench.fanout.{i}" for i in range(TOPICS)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names
                                   if name not in existing])
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
        await producer.start()
        try:
            # Leaders known and every partition's log written once before the clock runs: the
            # first write to a new partition takes hundreds of milliseconds.
            await asyncio.gather(*[await producer.send(name, PAYLOAD, partition=partition)
                                   for name in names for partition in range(PARTITIONS)])
            return [await _fanout(producer, names, fanout, rounds, messages)
                    for fanout in FANOUTS]
        finally:
            await producer.stop()
    finally:
        await admin.delete_topics(names)
        await admin.close()


async def _fanout(producer: AIOKafkaProducer, names: list[str], fanout: int, rounds: int,
                  messages: int) -> dict[str, float]:
    targets = [(names[i % TOPICS], (i // TOPICS) % PARTITIONS) for i in range(fanout)]
    acknowledged: list[float] = []
    deadline = time.monotonic() + MAX_SECONDS
    while len(acknowledged) < WARM_UP_ROUNDS + rounds and time.monotonic() < deadline:
        started = time.perf_counter()
        sent = [await producer.send(topic, PAYLOAD, partition=partition)
                for topic, partition in targets for _ in range(messages)]
        await asyncio.gather(*sent)
        acknowledged.append(time.perf_counter() - started)
        await asyncio.sleep(0.01)
    acknowledged = acknowledged[WARM_UP_ROUNDS:]
    return {"partitions": fanout, "requests": len(acknowledged),
            "p50_ms": round(percentile(acknowledged, 0.5) * 1000, 1),
            "p90_ms": round(percentile(acknowledged, 0.9) * 1000, 1),
            "max_ms": round(max(acknowledged) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=60,
                        help=f"produce requests per fan-out (at most {MAX_ROUNDS})")
    parser.add_argument("--messages", type=int, default=1,
                        help="messages to each partition in one request (1-100)")
    args = parser.parse_args()
    if not 1 <= args.rounds <= MAX_ROUNDS or not 1 <= args.messages <= 100:
        parser.error(f"--rounds must be 1-{MAX_ROUNDS} and --messages 1-100")
    bootstrap = get_settings().kafka_bootstrap
    print(f"produce acknowledgement by partitions a request spans: {args.rounds} requests of "
          f"{args.messages} x {len(PAYLOAD)} B a partition, linger 0, acks=all, broker "
          f"{bootstrap}", flush=True)
    for row in asyncio.run(measure(bootstrap, args.rounds, args.messages)):
        print(f"{row['partitions']:>3} partitions: p50 {row['p50_ms']} ms, p90 "
              f"{row['p90_ms']} ms, max {row['max_ms']} ms ({row['requests']} requests)")


if __name__ == "__main__":
    main()

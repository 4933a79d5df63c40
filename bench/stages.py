"""The stream worker's own work per decision, without Kafka: the floor under ``bench.streams``.

    .venv/bin/python -m bench.stages [--payments 20000] [--batch 500]

Runs the route stage's batch work as a worker that owns every stage partition runs it
(``streams.stages.route_batch``, then ``DecisionEngine.decide`` with the decision and
feature-log encodings, then the tables' flush), over ``bench.streams``'s synthetic population
(20k cards, 5k IPs, 10k customers, 200 merchants) in batches of ``--batch``, against RocksDB
tables opened with Faust's own options and starting empty, as the benchmark's worker's do. The
model is ``payflow model bootstrap``'s (``bench.scoring.bootstrapped_model``), and the garbage
collector is tuned as the worker's (``streams.app.quiet_garbage_collector``). No broker, no
Faust, no producer: what a decision costs the worker's Python before any Kafka I/O. Prints CPU
µs per decision by phase. In-process, no services; the tables live in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import ConsumerRecord
from faust.stores.rocksdb import RocksDBOptions

from bench.scoring import bootstrapped_model
from bench.streams import synthetic_request
from streams.app import quiet_garbage_collector
from streams.engine import DecisionEngine
from streams.stages import BatchState, Stage, StageTopics, decision_messages, route_batch
from streams.tables import PartitionStore, RiskStores, WriteBehind

MAX_PAYMENTS = 200_000
T0 = 1_790_000_000.0


class LocalTable:
    """A table's partitions as RocksDB databases in a directory (``PartitionStore`` reaches
    them as it reaches a Faust table's: ``table.data._db_for_partition``)."""

    def __init__(self, root: Path, stage: Stage) -> None:
        self.data = self
        self.databases = {partition: RocksDBOptions().open(root / f"{stage.name}-{partition}")
                          for partition in range(stage.partitions)}  # open, as a worker's are

    def _db_for_partition(self, partition: int) -> Any:
        return self.databases[partition]

    def close(self) -> None:
        for database in self.databases.values():
            database.close()


def requests(count: int) -> list[ConsumerRecord[bytes, bytes]]:
    rng = random.Random(0)
    out = []
    for index in range(count):
        message = synthetic_request(rng, index, T0 + index * 0.01)
        key, value = message.key(), message.encode()
        out.append(ConsumerRecord("payments.requests", 0, index, 0, 0, key, value, None,
                                  len(key), len(value), ()))
    return out


def measure(payments: int = 20_000, batch: int = 500) -> dict[str, Any]:
    assert 0 < payments <= MAX_PAYMENTS and 0 < batch <= payments
    model, _ = bootstrapped_model()
    engine = DecisionEngine(b"bench-fingerprint-key-not-secret", model=model)
    topics = StageTopics.for_prefix("")
    records = requests(payments)
    quiet_garbage_collector()  # as the worker does once it is built
    spent = {"decode and features": 0.0, "decide and encode": 0.0, "flush tables": 0.0}
    with tempfile.TemporaryDirectory(prefix="payflow-bench-stages-") as root:
        tables = {"cards": LocalTable(Path(root), topics.cards),
                  "origins": LocalTable(Path(root), topics.origins),
                  "customers": LocalTable(Path(root), topics.customers),
                  "merchants": LocalTable(Path(root), topics.merchants)}
        stores = RiskStores(*(WriteBehind(PartitionStore(table)) for table in tables.values()))
        state = BatchState(stores)
        state.owned = topics.every_partition()
        decided = 0
        try:
            for start in range(0, payments, batch):
                first = time.process_time()
                out, complete = route_batch(records[start:start + batch], state, topics)
                second = time.process_time()
                encoded = decision_messages(engine.decide(complete), "")
                third = time.process_time()
                state.flush()
                fourth = time.process_time()
                assert not out and len(encoded) == 2 * len(complete)
                decided += len(complete)
                spent["decode and features"] += second - first
                spent["decide and encode"] += third - second
                spent["flush tables"] += fourth - third
        finally:
            for table in tables.values():
                table.close()
    total = sum(spent.values())
    return {"payments": payments, "batch": batch, "decided": decided,
            "cpu_us_per_decision": {name: round(seconds / decided * 1e6, 1)
                                    for name, seconds in spent.items()},
            "cpu_us_per_decision_total": round(total / decided * 1e6, 1),
            "decisions_per_cpu_second": round(decided / total, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--payments", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = measure(args.payments, args.batch)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"conditions: one process, no Kafka; {args.payments} synthetic requests in batches of "
          f"{args.batch}; RocksDB tables with Faust's options, starting empty; bootstrap model")
    for name, micros in figures["cpu_us_per_decision"].items():
        print(f"  {name:20s} {micros:8.1f} us per decision")
    print(f"STAGES: {figures['cpu_us_per_decision_total']:.1f} us of CPU per decision = "
          f"{figures['decisions_per_cpu_second']:,.0f} decisions per CPU second")


if __name__ == "__main__":
    main()

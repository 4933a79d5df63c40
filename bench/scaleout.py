"""Scale-out benchmark: the same open-loop load through the whole stack with one stream worker
and one ledger consumer, then with two of each in their consumer groups.

    .venv/bin/python -m bench.scaleout [--rate 400] [--seconds 30] [--layouts 1x1,2x2]

Each layout (``<workers>x<ledger consumers>``) gets a stack of its own (``bench.stack``: a
fresh sandbox, one API, one webhook sender, a bootstrapped model; no webhook endpoint) and the
same offered load, measured as ``bench.endtoend`` measures one rate: achieved throughput,
authorization latency, the decision → ledger lag, CPU ms per payment of each kind of process
(the workers' and the ledger consumers' summed) and of the whole machine. Workers split the
partitions of every stage topic (6 each in the catalog, so up to 6 workers per group), each
with its own RocksDB directory (``PAYFLOW_WORKER_NAME``); ledger consumers split
``payments.decisions``. Before the load, a few warm-up payments go through after every process
has joined, so the load starts after the groups' rebalances.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from bench.endtoend import PROCESSES, run_step, simulated_bodies
from bench.sandbox import Sandbox, sandbox, stop_on_terminate
from bench.stack import BENCH_ENV, prepare, service_pids, start, warm_up

LAYOUTS = ((1, 1), (2, 2))
WARM_UP_ROUNDS, SETTLE_SECONDS = 3, 3.0


def start_layout(box: Sandbox, workers: int, ledgers: int) -> dict[str, list[int]]:
    """Start the workers and ledger consumers, then the API and the webhook sender; the pids
    of each kind of process."""
    pids: dict[str, list[int]] = {"worker": [], "ledger": []}
    for index in range(workers):
        child = box.start(f"worker-{index + 1}", "worker",
                          extra_env={"PAYFLOW_WORKER_NAME": f"bench-{index + 1}"})
        pids["worker"].append(child.process.pid)
    for index in range(ledgers):
        pids["ledger"].append(box.start(f"ledger-{index + 1}", "ledger").process.pid)
    children = start(box, ("api", "webhooks"))
    pids.update({name: [child.process.pid] for name, child in children.items()})
    return pids


def run_layout(workers: int, ledgers: int, bodies: list[bytes], rate: float, seconds: float,
               drain_seconds: float) -> dict[str, Any]:
    with sandbox(f"scaleout-{workers}x{ledgers}", BENCH_ENV) as box:
        key = prepare(box)
        pids = start_layout(box, workers, ledgers)
        for _ in range(WARM_UP_ROUNDS):  # until every member has joined and owns partitions
            asyncio.run(warm_up(box, key))
            time.sleep(SETTLE_SECONDS)
        pids.update(service_pids(box.settings))
        print(f"scaleout: {workers} worker(s), {ledgers} ledger consumer(s): {rate:g}/s for "
              f"{seconds:g} s ...", flush=True)
        step = asyncio.run(run_step(box, key, pids, bodies, rate, seconds, drain_seconds))
    print(f"scaleout: {workers}x{ledgers} -> {step['achieved_per_second']:g}/s answered, p99 "
          f"{step['latency']['p99_ms']} ms, CPU {step['cpu_ms_per_payment_total']} ms/payment",
          flush=True)
    return {"workers": workers, "ledger_consumers": ledgers, **step}


def measure(rate: float = 400.0, seconds: float = 30.0, drain_seconds: float = 60.0,
            layouts: tuple[tuple[int, int], ...] = LAYOUTS) -> dict[str, Any]:
    assert layouts and all(1 <= w <= 6 and 1 <= n <= 6 for w, n in layouts), layouts
    count = round(rate * seconds)
    bodies = simulated_bodies(count * len(layouts))
    runs = [run_layout(workers, ledgers, bodies[i * count:(i + 1) * count], rate, seconds,
                       drain_seconds) for i, (workers, ledgers) in enumerate(layouts)]
    return {"rate_per_second": rate, "seconds": seconds, "drain_seconds_max": drain_seconds,
            "processes": list(PROCESSES), "partitions_per_topic": 6, "runs": runs}


def parse_layouts(text: str) -> tuple[tuple[int, int], ...]:
    """``"1x1,2x2"`` -> ((1, 1), (2, 2))."""
    layouts = []
    for part in text.split(","):
        workers, _, ledgers = part.strip().partition("x")
        layouts.append((int(workers), int(ledgers)))
    return tuple(layouts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=400.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--drain-seconds", type=float, default=60.0)
    parser.add_argument("--layouts", default="1x1,2x2")
    args = parser.parse_args()
    stop_on_terminate()
    print(json.dumps(measure(args.rate, args.seconds, args.drain_seconds,
                             parse_layouts(args.layouts)), indent=2))


if __name__ == "__main__":
    main()

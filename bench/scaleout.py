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
``payments.decisions``. Before the load, warm-up payments go through and the benchmark waits
until the workers' and ledger consumers' groups are Stable with every member (a member that
joins, or is dropped for a missed heartbeat, stops its group for a rebalance). Then the stream
workers alone, one and then two in a group, on a pre-filled ``payments.requests`` (as
``bench.streams`` measures one): decisions/s and the workers' CPU per decision, with the API
out of the way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import DescribeGroupsRequest, DescribeGroupsRequest_v2

from bench.endtoend import PROCESSES, run_step, simulated_bodies
from bench.sandbox import Sandbox, sandbox, stop_on_terminate
from bench.stack import (
    BENCH_ENV,
    StackError,
    check_alive,
    prepare,
    service_pids,
    start,
    warm_up,
)
from payflow.settings import Settings

LAYOUTS = ((1, 1), (2, 2))
WARM_UP_ROUNDS, SETTLE_SECONDS, STABLE_TIMEOUT_SECONDS = 2, 2.0, 120.0


class DescribeGroupsV2(DescribeGroupsRequest):  # type: ignore[misc]
    """DescribeGroups at version 2: aiokafka 0.14 decodes a v3 answer with the v2 schema and
    fails on this broker, so ``describe_consumer_groups`` cannot be used."""

    def build(self, request_struct_class: Any) -> Any:
        return DescribeGroupsRequest_v2(self._groups)


async def group_states(settings: Settings, groups: list[str]) -> dict[str, tuple[str, int]]:
    """(state, members) of each consumer group, by name without the prefix."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        found = {}
        for group in groups:
            full = f"{settings.topic_prefix}{group}"
            node = await admin.find_coordinator(full)
            response = await admin._send_request_to_node(node, DescribeGroupsV2([full]))
            for described in response.groups:
                found[group] = (str(described[2]), len(described[5]))
        return found
    finally:
        await admin.close()


def wait_stable(box: Sandbox, members: dict[str, int]) -> dict[str, tuple[str, int]]:
    """Wait (bounded) until each group is Stable with the expected number of members: a
    member that joins during the load would stop its group's partitions for a rebalance."""
    deadline = time.monotonic() + STABLE_TIMEOUT_SECONDS
    while True:
        check_alive(box)
        states = asyncio.run(group_states(box.settings, list(members)))
        if all(states.get(group) == ("Stable", count) for group, count in members.items()):
            return states
        if time.monotonic() > deadline:
            raise StackError(f"consumer groups not stable within {STABLE_TIMEOUT_SECONDS:g} s:"
                             f" {states}, expected {members}")
        time.sleep(1.0)


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
        for _ in range(WARM_UP_ROUNDS):
            asyncio.run(warm_up(box, key))
            time.sleep(SETTLE_SECONDS)
        wait_stable(box, {"payflow-streams": workers, "payflow-risk-route": workers,
                          "payflow-ledger": ledgers})
        pids.update(service_pids(box.settings))
        print(f"scaleout: {workers} worker(s), {ledgers} ledger consumer(s): {rate:g}/s for "
              f"{seconds:g} s ...", flush=True)
        step = asyncio.run(run_step(box, key, pids, bodies, rate, seconds, drain_seconds))
    print(f"scaleout: {workers}x{ledgers} -> {step['achieved_per_second']:g}/s answered, p99 "
          f"{step['latency']['p99_ms']} ms, CPU {step['cpu_ms_per_payment_total']} ms/payment",
          flush=True)
    return {"workers": workers, "ledger_consumers": ledgers, **step}


def worker_throughput(workers: int, payments: int) -> dict[str, Any]:
    """``bench.streams``' throughput method with ``workers`` workers in one group: decisions/s
    from the start of the fill to the last decision, and the workers' CPU summed."""
    from bench import streams
    from payflow.cli.model import bootstrap_model

    with sandbox(f"scaleout-workers-{workers}") as box:
        bootstrap_model(box.settings)
        children = [box.start(f"worker-{i + 1}", "worker",
                              extra_env={"PAYFLOW_WORKER_NAME": f"bench-{i + 1}"})
                    for i in range(workers)]
        asyncio.run(streams.fill(box.settings, 1, first_index=streams.MAX_PAYMENTS))
        assert asyncio.run(streams.read_decisions(box.settings, 1, 180)), "nothing decided"
        wait_stable(box, {"payflow-streams": workers, "payflow-risk-route": workers})
        cpu_start = sum(streams.cpu_seconds(c.process.pid) for c in children)
        filled_at = time.time()
        asyncio.run(streams.fill(box.settings, payments))
        found = asyncio.run(streams.read_decisions(box.settings, payments + 1,
                                                   streams.MAX_SECONDS))
        cpu = sum(streams.cpu_seconds(c.process.pid) for c in children) - cpu_start
    decided = len(found) - 1
    span = found[-1][0] / 1000 - filled_at
    print(f"scaleout: {workers} worker(s), pre-filled: {decided / span:,.0f} decisions/s, "
          f"{cpu / max(decided, 1) * 1e6:,.0f} us CPU per decision", flush=True)
    return {"workers": workers, "payments": payments, "decisions": decided,
            "seconds": round(span, 3), "decisions_per_second": round(decided / span, 1),
            "workers_cpu_us_per_decision": round(cpu / max(decided, 1) * 1e6, 1)}


def measure(rate: float = 400.0, seconds: float = 30.0, drain_seconds: float = 60.0,
            payments: int = 20_000,
            layouts: tuple[tuple[int, int], ...] = LAYOUTS) -> dict[str, Any]:
    """Each layout's stack at the same offered load; then the stream workers alone (1, then
    as many as the largest layout has) on a pre-filled topic, where the API is not in the way."""
    assert layouts and all(1 <= w <= 6 and 1 <= n <= 6 for w, n in layouts), layouts
    count = round(rate * seconds)
    bodies = simulated_bodies(count * len(layouts))
    runs = [run_layout(workers, ledgers, bodies[i * count:(i + 1) * count], rate, seconds,
                       drain_seconds) for i, (workers, ledgers) in enumerate(layouts)]
    most = max(workers for workers, _ in layouts)
    prefilled = [worker_throughput(workers, payments) for workers in sorted({1, most})]
    return {"rate_per_second": rate, "seconds": seconds, "drain_seconds_max": drain_seconds,
            "processes": list(PROCESSES), "partitions_per_topic": 6, "runs": runs,
            "workers_prefilled": prefilled}


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
    parser.add_argument("--payments", type=int, default=20_000,
                        help="pre-filled requests for the workers-alone part")
    parser.add_argument("--layouts", default="1x1,2x2")
    args = parser.parse_args()
    stop_on_terminate()
    print(json.dumps(measure(args.rate, args.seconds, args.drain_seconds, args.payments,
                             parse_layouts(args.layouts)), indent=2))


if __name__ == "__main__":
    main()

"""Run the selected benchmarks one after another and write down what they found.

Writes into the run's directory (default ``PAYFLOW_HOME/bench/<UTC timestamp>/``):
``results.json`` (every figure, the parameters, the conditions), ``summary.md`` (the summary
table and the detail tables) and ``bench.png`` (latency per rate, throughput over time).
``results.json`` is rewritten after each benchmark, so an interrupted run keeps what it
measured. A benchmark that fails is recorded with its error (traceback in
``<name>.error.txt``) and the run goes on; Ctrl-C (or SIGTERM) stops the run after the current
benchmark's clean-up, records it as interrupted, writes the files and raises KeyboardInterrupt.
"""

from __future__ import annotations

import json
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.conditions import load_average, machine, versions
from bench.report import BenchResult, results_document, summary_markdown, summary_table
from bench.suite import Benchmark
from payflow.services.base import port_open
from payflow.settings import Settings


class ServicesUnreachable(RuntimeError):
    """Kafka, PostgreSQL or Redis does not answer at the configured address."""


def default_out(settings: Settings, now: datetime) -> Path:
    return settings.home / "bench" / now.strftime("%Y%m%dT%H%M%SZ")


def unreachable_services(settings: Settings) -> list[str]:
    """The services that do not accept a connection at their configured address."""
    kafka_host, _, kafka_port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    pg, cache = urlsplit(settings.database_url), urlsplit(settings.redis_url)
    addresses = {"Kafka": (kafka_host, int(kafka_port)),
                 "PostgreSQL": (pg.hostname or "127.0.0.1", pg.port or 5432),
                 "Redis": (cache.hostname or "127.0.0.1", cache.port or 6379)}
    return [f"{name} at {host}:{port}" for name, (host, port) in addresses.items()
            if not port_open(host, port)]


def run(benchmarks: list[Benchmark], quick: bool, out: Path | None, command: str) -> Path:
    """Run ``benchmarks`` in order; returns the directory holding the results."""
    settings = Settings()
    if missing := unreachable_services(settings):
        raise ServicesUnreachable(f"not reachable: {', '.join(missing)} (start them with "
                                  "`payflow services up`)")
    started = datetime.now(UTC)
    out = out or default_out(settings, started)
    out.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {"mode": "quick" if quick else "full", "command": command,
                            "benchmarks": [b.name for b in benchmarks],
                            "started_at": started.isoformat(timespec="seconds"), "out": str(out)}
    conditions = {**machine(), **versions(settings)}
    results: list[BenchResult] = []
    try:
        for benchmark in benchmarks:
            print(f"bench: {benchmark.name}: {benchmark.description} ...", flush=True)
            results.append(run_one(benchmark, quick, out))
            print(f"bench: {benchmark.name} {results[-1].status} in {results[-1].seconds:.0f} s",
                  flush=True)
            _write_json(out, info, conditions, results)
            if results[-1].status == "interrupted":
                raise KeyboardInterrupt
    finally:
        info["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        conditions["load_average_end"] = load_average()
        _write_all(out, info, conditions, results)
    return out


def run_one(benchmark: Benchmark, quick: bool, out: Path) -> BenchResult:
    """One benchmark's result: a failure or a Ctrl-C (status ``interrupted``) is recorded."""
    parameters = benchmark.parameters(quick)
    result = BenchResult(benchmark.name, "ok", parameters, load_average_start=load_average())
    started = time.monotonic()
    try:
        result.figures = benchmark.run(**parameters)
        result.rows, result.tables = benchmark.rows(result.figures)
    except KeyboardInterrupt:
        result.status, result.error = "interrupted", "interrupted (Ctrl-C or SIGTERM)"
    except Exception as error:
        result.status, result.error = "failed", f"{type(error).__name__}: {error}"[:2000]
        (out / f"{benchmark.name}.error.txt").write_text(traceback.format_exc())
        print(f"bench: {benchmark.name} failed: {result.error}", flush=True)
    finally:
        result.seconds = time.monotonic() - started
        result.load_average_end = load_average()
    return result


def _write_json(out: Path, info: dict[str, Any], conditions: dict[str, Any],
                results: list[BenchResult]) -> None:
    document = results_document(info, conditions, results)
    temporary = out / "results.json.tmp"
    temporary.write_text(json.dumps(document, indent=2, default=str) + "\n")
    temporary.replace(out / "results.json")


def _write_all(out: Path, info: dict[str, Any], conditions: dict[str, Any],
               results: list[BenchResult]) -> None:
    from bench.plot import plot

    _write_json(out, info, conditions, results)
    (out / "summary.md").write_text(summary_markdown(info, conditions, results))
    endtoend = next((r.figures for r in results if r.name == "e2e" and r.status == "ok"), None)
    plot(endtoend, out / "bench.png",
         f"payflow {info['mode']} benchmark {info['started_at']} — load average "
         f"{conditions['load_average_start'][0]:.2f} → {conditions['load_average_end'][0]:.2f}"
         f" on {conditions['cores']} shared cores")
    print("\n" + summary_table([row for r in results for row in r.rows]))
    print(f"\nbench: results in {out} (results.json, summary.md, bench.png)")

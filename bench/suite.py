"""The benchmarks ``python -m bench`` runs: each one's sizes (quick and full), how to run it,
and how its figures become summary rows and detail tables.

Running a benchmark does I/O (``run_*``); turning its figures into rows (``rows_*``) is pure,
so the summary can be tested on recorded figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.report import SummaryRow, Table, Target, format_quantity

Rows = tuple[list[SummaryRow], list[Table]]
QUIX_QUICK = ("not run in --quick: its venv's first install alone takes minutes; "
              "`python -m bench --only streams` (full sizes) runs it")


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    quick: dict[str, Any]
    full: dict[str, Any]
    run: Callable[..., dict[str, Any]]
    rows: Callable[[dict[str, Any]], Rows]
    in_quick: bool = True
    """Whether ``--quick`` without ``--only`` runs it (``--quick --only NAME`` always does)."""

    def parameters(self, quick: bool) -> dict[str, Any]:
        return dict(self.quick if quick else self.full)


# --- running (I/O; each function imports its module when it runs)

def run_scoring(rows: int, batch: int, single: int) -> dict[str, Any]:
    from bench import scoring

    return scoring.measure(rows, batch, single)


def run_api(clients: int, seconds: float, warm_seconds: float) -> dict[str, Any]:
    from bench import api

    return api.measure(clients, seconds, warm_seconds)


def run_streams(payments: int, rate: float, seconds: float, quix: bool) -> dict[str, Any]:
    """One worker's throughput on a pre-filled topic; on that same topic the raw aiokafka
    pass-through and (``quix``) the Quix Streams app doing the worker's work
    (``bench.quix``); then the worker's latency at a paced rate (``bench.streams``)."""
    from bench import streams
    from bench.passthrough import passthrough
    from bench.sandbox import sandbox
    from payflow.cli.model import bootstrap_model

    with sandbox("streams") as box:
        bootstrap_model(box.settings)
        throughput = streams.throughput(box.settings, box.supervisor, payments)
        reference = asyncio.run(passthrough(box.settings))
        peer = _quix(box.settings) if quix else {"status": "not_run", "reason": QUIX_QUICK}
        latency = streams.latency(box.settings, rate, seconds, box.supervisor)
    return {"batch_size": box.settings.stream_batch_size,
            "batch_wait_seconds": box.settings.stream_batch_wait_seconds,
            "throughput": throughput, "passthrough_reference": reference, "latency": latency,
            "quix_streams": peer}


def _quix(settings: Any) -> dict[str, Any]:
    """The Quix Streams figures, or why there are none (a failure here keeps the rest)."""
    from bench import quix

    try:
        return {"status": "ok", **quix.measure(settings)}
    except Exception as error:
        print(f"bench: the Quix Streams run failed: {error}", flush=True)
        return {"status": "failed", "reason": f"{type(error).__name__}: {error}"[:2000]}


def run_ledger(payments: int, merchants: int, pgbench_seconds: int,
               timeout_seconds: float) -> dict[str, Any]:
    from bench import ledger
    from bench.sandbox import sandbox

    with sandbox("ledger") as box:
        return ledger.measure(box.settings, payments, merchants, pgbench_seconds,
                              timeout_seconds)


def run_dashboard(payments: int, repeat: int) -> dict[str, Any]:
    from bench import dashboard
    from bench.sandbox import sandbox

    with sandbox("dashboard") as box:
        return dashboard.run(box.admin_database_url, box.database, box.settings.topic_prefix,
                             payments, repeat)


def run_endtoend(rates: list[float], seconds: float, drain_seconds: float) -> dict[str, Any]:
    from bench import endtoend

    return endtoend.measure(tuple(rates), seconds, drain_seconds)


def run_scaleout(rate: float, seconds: float, drain_seconds: float,
                 payments: int) -> dict[str, Any]:
    from bench import scaleout

    return scaleout.measure(rate, seconds, drain_seconds, payments)


# --- summarizing (pure)

def _ms(value: Any) -> str:
    return format_quantity(value, "ms")


def rows_scoring(f: dict[str, Any]) -> Rows:
    batch, single, bare = f["batch"], f["single_row"], f["reference_predict_proba"]
    rows = [
        SummaryRow("fraud scoring", f"batch predict (batches of {f['batch_size']}), rows/s",
                   batch["rows_per_second"], "/s", "bare predict_proba on a ready matrix",
                   bare["rows_per_second"], "/s"),
        SummaryRow("fraud scoring", "single-row predict, rows/s", single["rows_per_second"],
                   "/s", "batch predict", batch["rows_per_second"], "/s"),
    ]
    table = Table("Fraud scoring", ("path", "rows", "rows/s", "CPU µs per row"), tuple(
        (name, f"{f[key]['rows']:,}", f"{f[key]['rows_per_second']:,}",
         f"{f[key]['cpu_us_per_row']:,}")
        for name, key in (("FraudModel.opinions, batch", "batch"),
                          ("FraudModel.opinions, one row", "single_row"),
                          ("estimator.predict_proba, batch", "reference_predict_proba"))))
    return rows, [table]


def rows_api(f: dict[str, Any]) -> Rows:
    ours, trivial = f["payflow"], f["trivial_reference"]
    rows = [
        SummaryRow("API", "POST /v1/payments, requests/s (Kafka acks, nothing consumes)",
                   ours["requests_per_second"], "/s", "trivial FastAPI endpoint, same uvicorn",
                   trivial["requests_per_second"], "/s", note=f"{f['clients']} clients"),
        SummaryRow("API", "API process CPU per request", ours["server_cpu_ms_per_request"], "ms",
                   "trivial endpoint", trivial["server_cpu_ms_per_request"], "ms"),
    ]
    table = Table(f"API, closed loop, {f['clients']} clients, {f['seconds']:g} s each", (
        "server", "requests/s", "p50", "p99", "server CPU ms/request",
        "client CPU ms/request", "statuses"), tuple(
        (name, f"{d['requests_per_second']:,}", _ms(d["latency"]["p50_ms"]),
         _ms(d["latency"]["p99_ms"]), f"{d['server_cpu_ms_per_request']}",
         f"{d['client_cpu_ms_per_request']}",
         " ".join(f"{k}={v}" for k, v in d["statuses"].items()))
        for name, d in (("payflow POST /v1/payments", ours), ("trivial FastAPI", trivial))))
    return rows, [table]


def rows_streams(f: dict[str, Any]) -> Rows:
    worker, raw, latency = f["throughput"], f["passthrough_reference"], f["latency"]
    peer = f["quix_streams"]
    ran = peer["status"] == "ok"
    rows = [
        SummaryRow("streams", "decisions/s of one worker (pre-filled topic)",
                   worker["decisions_per_second"], "/s", "raw aiokafka pass-through",
                   raw["messages_per_second"], "/s",
                   Target("at_least", 5000, "≥ 5,000/s")),
        SummaryRow("streams", "worker CPU per decision", worker["worker_cpu_us_per_decision"],
                   "µs", "pass-through CPU per message", raw["cpu_us_per_message"], "µs"),
        SummaryRow("streams", f"request → decision p99 at {latency['rate_per_second']:g}/s",
                   latency.get("p99_ms"), "ms",
                   note=f"{latency['decided_within_15_s']}/{latency['sent']} decided"),
        SummaryRow("streams", "decisions/s of one worker", worker["decisions_per_second"], "/s",
                   "Quix Streams, same features and decisions",
                   peer.get("decisions_per_second"), "/s",
                   note="" if ran else f"Quix {peer['status'].replace('_', ' ')}"),
        SummaryRow("streams", "worker CPU per decision", worker["worker_cpu_us_per_decision"],
                   "µs", "Quix Streams CPU per decision", peer.get("cpu_us_per_decision"),
                   "µs", note="" if ran else f"Quix {peer['status'].replace('_', ' ')}"),
    ]
    quix_row = ((f"{peer['decisions_per_second']:,}", f"{peer['cpu_us_per_decision']:,}",
                 f"{peer['decisions']:,}") if ran else (peer["reason"], "—", "—"))
    table = Table("Streams: one process each on the same pre-filled topic", (
        "engine", "decisions (messages)/s", "CPU µs per decision (message)", "count"), (
        ("payflow worker (Faust + aiokafka, 4 repartitions)",
         f"{worker['decisions_per_second']:,}", f"{worker['worker_cpu_us_per_decision']:,}",
         f"{worker['decisions']:,}"),
        ("Quix Streams app, same features and decisions (4 re-keyed topics)", *quix_row),
        ("raw aiokafka pass-through (no decoding, no state)",
         f"{raw['messages_per_second']:,}", f"{raw['cpu_us_per_message']:,}",
         f"{raw['messages']:,}"),
    ))
    latency_table = Table("Streams: worker latency", ("figure", "value"), (
        (f"request produced → decision produced at {latency['rate_per_second']:g}/s for "
         f"{latency['seconds']:g} s: p50 / p99 / max", " / ".join(
             _ms(latency.get(k)) for k in ("p50_ms", "p99_ms", "max_ms"))),
    ))
    return rows, [table, latency_table]


def rows_ledger(f: dict[str, Any]) -> Rows:
    ledger, reference = f["ledger"], f["reference"]
    rows = [
        SummaryRow("ledger", "postings/s, durable commits (pre-filled topic)",
                   ledger["postings_per_second"], "/s", "psycopg COPY of posting-shaped rows",
                   reference["psycopg_copy_rows_per_second"], "/s",
                   Target("at_least", 10_000, "≥ 10,000/s")),
        SummaryRow("ledger", "payments/s", ledger["payments_per_second"], "/s",
                   "pgbench single-row insert transactions/s, 4 clients",
                   reference["pgbench_single_insert_tps_4_clients"], "/s"),
        SummaryRow("ledger", "ledger consumer CPU per payment",
                   ledger["cpu_ms_per_payment_in_consumer"], "ms"),
    ]
    return rows, []


def rows_dashboard(f: dict[str, Any]) -> Rows:
    full_size = f["payments"] >= 1_000_000
    rows = [SummaryRow(
        "dashboard", f"slowest page ({f['slowest_page']}), sum of its API calls",
        f["slowest_page_ms"], "ms", "GET /healthz on the same API",
        f["reference_healthz_median_ms"], "ms",
        Target("at_most", 2000, "< 2 s at 1 M payments") if full_size else None,
        note="" if full_size else f"at {f['payments']:,} payments; the target is at 1 M")]
    table = Table(f"Dashboard pages at {f['payments']:,} payments (ms, worst of cold and warm, "
                  "summed over the page's calls)", ("page", "ms"), tuple(
        (page, f"{ms:,.1f}") for page, ms in f["pages_ms"].items()))
    return rows, [table]


def _cpu_step(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The highest rate that was answered (99 %) and drained; else the first rate."""
    good = [s for s in steps if s["answered_share"] >= 0.99 and s["drained"]]
    return max(good, key=lambda s: s["rate_per_second"]) if good else steps[0]


def rows_endtoend(f: dict[str, Any]) -> Rows:
    steps = f["steps"]
    offered = max(f["rates"])
    step = _cpu_step(steps)
    none = "none of the rates tried qualified"
    rows = [
        SummaryRow("end-to-end", "highest rate with authorization p99 < 2 s",
                   f["highest_rate_p99_under_2s"] or 0.0, "/s", "highest rate offered",
                   offered, "/s", Target("at_least", 2000, "≥ 2,000/s (the seed's peak)"),
                   note="" if f["highest_rate_p99_under_2s"] else none),
        SummaryRow("end-to-end", "highest rate with authorization p99 < 250 ms",
                   f["highest_rate_p99_under_250ms"] or 0.0, "/s", "highest rate offered",
                   offered, "/s", Target("at_least", 500, "≥ 500/s"),
                   note="" if f["highest_rate_p99_under_250ms"] else none),
        SummaryRow("end-to-end", f"CPU per payment, api + worker + ledger + webhooks, at "
                   f"{step['rate_per_second']:g}/s", step["cpu_ms_per_payment_total"], "ms",
                   "whole machine per payment (broker, PostgreSQL, other users too)",
                   step["cpu_ms_per_payment"].get("machine"), "ms",
                   Target("at_most", 2.0, "≤ 2 ms")),
        SummaryRow("end-to-end", "payments still undecided after the drain",
                   float(sum(s["undecided_after_drain"] for s in steps)), "",
                   target=Target("at_most", 0, "0 (nothing lost)")),
    ]
    return rows, [_steps_table(f), _cpu_table(steps)]


def _steps_table(f: dict[str, Any]) -> Table:
    def row(s: dict[str, Any]) -> tuple[str, ...]:
        latency = s["latency"]
        return (f"{s['rate_per_second']:g}", f"{s['achieved_per_second']:,}",
                f"{s.get('payments_created', 0):,}",
                *(_ms(latency[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
                *(f"{s[k]:.1%}" for k in ("synchronous_share", "pending_share", "shed_share",
                                           "failed_share")),
                f"{sum(s['consumer_lag_at_end'].values()):,}",
                f"{s['drain_seconds']:g} s" + ("" if s["drained"] else " (not drained)"),
                *(_lag(s.get(key, {})) for key in ("decision_to_ledger",
                                                   "ledger_to_webhook_delivery")))

    return Table(f"End-to-end, open loop, {f['seconds_per_rate']:g} s per rate", (
        "rate/s", "answered/s", "payments created", "p50", "p95", "p99", "max", "201 in budget",
        "202 pending",
        "shed 429/503", "failed", "lag at end", "drain", "decision → ledger p50 / p99",
        "ledger → webhook delivered p50 / p99"), tuple(row(s) for s in f["steps"]))


def _lag(summary: dict[str, Any]) -> str:
    """``p50 / p99 (n)`` of a lag summary, or — where it was not measured."""
    if not summary.get("count"):
        return "—"
    return f"{_ms(summary['p50_ms'])} / {_ms(summary['p99_ms'])} ({summary['count']:,})"


def _cpu_table(steps: list[dict[str, Any]]) -> Table:
    names = ("api", "worker", "feature-log", "ledger", "webhooks")
    shared = ("kafka", "postgres", "redis", "machine")
    return Table("End-to-end: CPU ms per payment (schedule start to drain end) and peak RSS MB", (
        "rate/s", *names, "total", *shared, "generator", "cores busy",
        *(f"RSS {n}" for n in names)), tuple(
        (f"{s['rate_per_second']:g}",
         *(f"{s['cpu_ms_per_payment'].get(n, 0):.2f}" for n in names),
         f"{s['cpu_ms_per_payment_total']:.2f}",
         *(f"{s['cpu_ms_per_payment'].get(n, 0):.2f}" for n in shared),
         f"{s['generator_cpu_ms_per_request']:.2f}", f"{s.get('machine_busy_share', 0):.0%}",
         *(f"{s['peak_rss_mb'].get(n, 0):,.0f}" for n in names))
        for s in steps))


def rows_scaleout(f: dict[str, Any]) -> Rows:
    """Each layout's throughput and CPU per payment against the first layout's (one of each)."""
    runs = f["runs"]
    base = runs[0]

    def layout(run: dict[str, Any]) -> str:
        return f"{run['workers']} worker(s) + {run['ledger_consumers']} ledger consumer(s)"

    rows = []
    for run in runs[1:]:
        rows += [
            SummaryRow("scale-out", f"{layout(run)}: answered/s at {f['rate_per_second']:g}/s "
                       "offered", run["achieved_per_second"], "/s", layout(base),
                       base["achieved_per_second"], "/s"),
            SummaryRow("scale-out", f"{layout(run)}: CPU per payment, api + workers + ledgers "
                       "+ webhooks", run["cpu_ms_per_payment_total"], "ms", layout(base),
                       base["cpu_ms_per_payment_total"], "ms"),
            SummaryRow("scale-out", f"{layout(run)}: authorization p99",
                       run["latency"]["p99_ms"], "ms", layout(base),
                       base["latency"]["p99_ms"], "ms"),
        ]
    names = ("api", "worker", "ledger", "webhooks")
    table = Table(f"Scale-out at {f['rate_per_second']:g}/s offered for {f['seconds']:g} s "
                  "(CPU ms per payment; workers and ledger consumers summed)", (
        "layout", "answered/s", "p50", "p99", "201 in budget", "decision → ledger p50 / p99",
        *names, "total", "kafka", "postgres", "machine", "cores busy", "drain"), tuple(
        (layout(run), f"{run['achieved_per_second']:,}", _ms(run["latency"]["p50_ms"]),
         _ms(run["latency"]["p99_ms"]), f"{run['synchronous_share']:.1%}",
         _lag(run.get("decision_to_ledger", {})),
         *(f"{run['cpu_ms_per_payment'].get(n, 0):.2f}" for n in names),
         f"{run['cpu_ms_per_payment_total']:.2f}",
         *(f"{run['cpu_ms_per_payment'].get(n, 0):.2f}" for n in ("kafka", "postgres",
                                                                   "machine")),
         f"{run.get('machine_busy_share', 0):.0%}",
         f"{run['drain_seconds']:g} s" + ("" if run["drained"] else " (not drained)"))
        for run in runs))
    prefilled = f.get("workers_prefilled", [])
    if len(prefilled) > 1:
        one, most = prefilled[0], prefilled[-1]
        rows += [
            SummaryRow("scale-out", f"{most['workers']} workers, pre-filled topic: decisions/s",
                       most["decisions_per_second"], "/s", "1 worker",
                       one["decisions_per_second"], "/s"),
            SummaryRow("scale-out", f"{most['workers']} workers: CPU per decision (summed)",
                       most["workers_cpu_us_per_decision"], "µs", "1 worker",
                       one["workers_cpu_us_per_decision"], "µs"),
        ]
    workers_table = Table("Scale-out: stream workers alone on a pre-filled topic", (
        "workers", "payments filled", "decided in the time limit", "decisions/s",
        "CPU µs per decision (workers summed)"), tuple(
        (f"{p['workers']}", f"{p['payments']:,}", f"{p.get('decisions', 0):,}",
         f"{p['decisions_per_second']:,}", f"{p['workers_cpu_us_per_decision']:,}")
        for p in prefilled))
    return rows, [table, workers_table]


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("scoring", "rows/s of the fraud model's batch and single-row predict",
              {"rows": 20_000, "batch": 500, "single": 500},
              {"rows": 100_000, "batch": 500, "single": 5_000}, run_scoring, rows_scoring),
    Benchmark("api", "POST /v1/payments req/s with nothing consuming, vs a trivial endpoint",
              {"clients": 32, "seconds": 3.0, "warm_seconds": 1.0},
              {"clients": 32, "seconds": 20.0, "warm_seconds": 3.0}, run_api, rows_api),
    Benchmark("streams", "one worker's decisions/s and latency, vs raw aiokafka pass-through "
              "and (full run) Quix Streams",
              {"payments": 2_000, "rate": 100.0, "seconds": 5.0, "quix": False},
              {"payments": 20_000, "rate": 1000.0, "seconds": 20.0, "quix": True},
              run_streams, rows_streams),
    Benchmark("ledger", "ledger consumer postings/s, vs COPY and pgbench",
              {"payments": 2_000, "merchants": 100, "pgbench_seconds": 3,
               "timeout_seconds": 120.0},
              {"payments": 20_000, "merchants": 100, "pgbench_seconds": 10,
               "timeout_seconds": 600.0}, run_ledger, rows_ledger),
    Benchmark("dashboard", "each dashboard page's API calls at 1 M payments (quick: 20 k)",
              {"payments": 20_000, "repeat": 1}, {"payments": 1_000_000, "repeat": 5},
              run_dashboard, rows_dashboard),
    Benchmark("e2e", "open-loop payments through the whole stack at a series of rates",
              {"rates": [100.0, 200.0], "seconds": 20.0, "drain_seconds": 20.0},
              {"rates": [200.0, 500.0, 1000.0, 2000.0], "seconds": 60.0,
               "drain_seconds": 60.0}, run_endtoend, rows_endtoend),
    Benchmark("scaleout", "the same open-loop load with 1 worker + 1 ledger consumer, then 2 + 2",
              {"rate": 100.0, "seconds": 10.0, "drain_seconds": 20.0, "payments": 2_000},
              {"rate": 400.0, "seconds": 30.0, "drain_seconds": 60.0, "payments": 20_000},
              run_scaleout, rows_scaleout, in_quick=False),
)
NAMES = tuple(benchmark.name for benchmark in BENCHMARKS)


def select(only: str, quick: bool = False) -> list[Benchmark]:
    """The benchmarks named in ``only`` (comma-separated, in suite order; empty: all, or in
    ``quick`` mode all those that fit its budget); ValueError naming any unknown name."""
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown benchmark(s): {', '.join(unknown)}; choose from "
                         f"{', '.join(NAMES)}")
    if not wanted:
        return [b for b in BENCHMARKS if b.in_quick or not quick]
    return [b for b in BENCHMARKS if b.name in wanted]

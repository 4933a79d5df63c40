"""How a benchmark run is written down: the summary table, the results.json shape, the /proc
parsers and the load generator's HTTP parsing. Recorded figures only; nothing is timed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.http_load import HttpError, encode_request, parse_head
from bench.procstat import (
    parse_cpu_seconds,
    parse_machine_cpu_seconds,
    parse_peak_rss_bytes,
)
from bench.report import (
    BenchResult,
    SummaryRow,
    Table,
    Target,
    format_quantity,
    results_document,
    shape_problems,
    summary_markdown,
    summary_table,
)
from bench.suite import BENCHMARKS, rows_endtoend, rows_streams, select

CONDITIONS: dict[str, Any] = {
    "cores": 2, "memory_bytes": 24 * 2**30, "load_average_start": (1.5, 1.2, 1.0),
    "load_average_end": (2.5, 1.4, 1.1), "python": "3.11.7", "git_commit": "abc123",
    "git_dirty": True, "kafka": "4.1.1", "postgresql": "15.18", "redis": "7.0.15"}
RUN = {"mode": "quick", "command": "payflow bench --quick", "started_at": "2026-11-26T10:00:00"}


def test_a_row_compares_with_its_reference_and_checks_its_target() -> None:
    row = SummaryRow("streams", "decisions/s", 3600, "/s", "raw aiokafka", 18000, "/s",
                     Target("at_least", 5000, "≥ 5,000/s"))
    assert row.ratio == pytest.approx(0.2)
    assert row.met is False
    assert SummaryRow("ledger", "postings/s", 12000, "/s",
                      target=Target("at_least", 10000, "≥ 10,000/s")).met is True
    assert SummaryRow("e2e", "CPU", 2.5, "ms", target=Target("at_most", 2.0, "≤ 2 ms")).met \
        is False
    assert SummaryRow("api", "req/s", 900, "/s").met is None  # no target, no verdict
    assert SummaryRow("x", "y", None, "/s", target=Target("at_least", 1, "≥ 1")).met is None


def test_the_summary_table_has_every_column_and_marks_misses() -> None:
    table = summary_table([
        SummaryRow("streams", "decisions/s of one worker", 3612.4, "/s", "raw aiokafka",
                   18050, "/s", Target("at_least", 5000, "≥ 5,000/s")),
        SummaryRow("dashboard", "slowest page", 128.64, "ms", note="at 100,000 payments"),
    ])
    lines = table.splitlines()
    assert lines[0] == ("| benchmark | figure | value | reference measured in the same run | "
                        "ratio | target | met? |")
    assert lines[2] == ("| streams | decisions/s of one worker | 3,612/s | raw aiokafka: "
                        "18,050/s | 0.20 | ≥ 5,000/s | **no** |")
    assert lines[3] == ("| dashboard | slowest page (at 100,000 payments) | 129 ms | — | — | — "
                        "| — |")


def test_quantities_read_naturally() -> None:
    assert format_quantity(None, "/s") == "—"
    assert format_quantity(52.66, "/s") == "52.7/s"
    assert format_quantity(0.521, "ms") == "0.521 ms"
    assert format_quantity(17.28, "µs") == "17.3 µs"
    assert format_quantity(0, "") == "0"


def _result(name: str = "streams", status: str = "ok") -> BenchResult:
    return BenchResult(name, status, {"payments": 5000},  # type: ignore[arg-type]
                       {"throughput": {"decisions_per_second": 3600.0}},
                       [SummaryRow(name, "decisions/s", 3600, "/s")],
                       [Table("Detail", ("a", "b"), (("1", "2"),))], 12.3,
                       (1.0, 1.0, 1.0), (2.0, 1.0, 1.0))


def test_results_json_has_the_run_conditions_and_each_benchmark() -> None:
    failed = BenchResult("e2e", "failed", {"rates": [100]}, error="StackError: api exited")
    document = json.loads(json.dumps(results_document(RUN, CONDITIONS, [_result(), failed])))
    assert shape_problems(document) == []
    assert set(document) == {"schema", "run", "conditions", "note", "benchmarks"}
    streams = document["benchmarks"]["streams"]
    assert streams["status"] == "ok" and streams["parameters"] == {"payments": 5000}
    assert streams["summary"][0]["figure"] == "decisions/s"
    assert set(streams["summary"][0]) >= {"value", "reference", "reference_value", "ratio",
                                          "target", "met"}
    assert document["benchmarks"]["e2e"]["error"] == "StackError: api exited"


def test_shape_problems_name_what_is_missing() -> None:
    document = results_document(RUN, {"cores": 2}, [_result()])
    document["benchmarks"]["streams"]["status"] = "fine"
    problems = shape_problems(document)
    assert "conditions.load_average_end is missing" in problems
    assert "benchmarks.streams.status is 'fine'" in problems


def test_the_summary_markdown_states_conditions_load_and_what_was_not_measured() -> None:
    text = summary_markdown(RUN, CONDITIONS, [_result(), BenchResult(
        "e2e", "failed", {}, error="StackError: api exited")])
    assert "`payflow bench --quick`" in text
    assert "Load average (1 min) 1.50 at the start, 2.50 at the end" in text
    assert "Kafka 4.1.1, PostgreSQL 15.18" in text
    assert "- **e2e**: failed: StackError: api exited" in text
    assert "### Detail" in text and "| 1 | 2 |" in text


def test_proc_parsers_read_cpu_time_peak_memory_and_machine_time() -> None:
    stat = ("4242 (python -m (x)) S 1 2 3 4 5 6 7 8 9 10 "
            "150 50 20 30 20 0 1 0 100 200 300")
    assert parse_cpu_seconds(stat, ticks_per_second=100) == pytest.approx(2.5)
    assert parse_peak_rss_bytes("Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t 1 kB\n") \
        == 204800 * 1024
    assert parse_peak_rss_bytes("Name:\tzombie\n") is None
    busy, total = parse_machine_cpu_seconds("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2\n",
                                            ticks_per_second=100)
    assert (busy, total) == (2.0, 10.0)


def test_the_load_generator_speaks_plain_http_1_1() -> None:
    request = encode_request("POST", "/v1/payments", "127.0.0.1:8000",
                             {"Authorization": "Bearer sk"}, b'{"a":1}')
    assert request.startswith(b"POST /v1/payments HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n")
    assert b"Content-Length: 7\r\n" in request and request.endswith(b"\r\n\r\n{\"a\":1}")
    assert parse_head(b"HTTP/1.1 202 Accepted\r\ncontent-length: 12\r\n\r\n") == (202, 12, True)
    assert parse_head(b"HTTP/1.1 503 X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n") \
        == (503, 0, False)
    with pytest.raises(HttpError):
        parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")


def test_only_selects_benchmarks_in_suite_order_and_refuses_unknown_names() -> None:
    assert [b.name for b in select("e2e,scoring")] == ["scoring", "e2e"]
    assert len(select("")) == len(BENCHMARKS)
    assert "scaleout" not in [b.name for b in select("", quick=True)]  # two stacks: too long
    assert [b.name for b in select("scaleout", quick=True)] == ["scaleout"]
    with pytest.raises(ValueError, match="unknown benchmark"):
        select("api,nope")


def test_the_quick_end_to_end_run_uses_the_rates_the_issue_asks_for() -> None:
    e2e = next(b for b in BENCHMARKS if b.name == "e2e")
    assert e2e.parameters(quick=True)["rates"] == [100.0, 200.0]
    assert e2e.parameters(quick=True)["seconds"] == 20.0
    assert e2e.parameters(quick=False)["rates"] == [200.0, 500.0, 1000.0, 2000.0]
    assert e2e.parameters(quick=False)["seconds"] == 60.0


def _e2e_step(rate: float, p99: float, answered: float, drained: bool) -> dict[str, Any]:
    return {"rate_per_second": rate, "achieved_per_second": rate * answered,
            "latency": {"p50_ms": 20.0, "p95_ms": 50.0, "p99_ms": p99, "max_ms": p99 * 2},
            "answered_share": answered, "synchronous_share": answered, "pending_share": 0.0,
            "shed_share": 1 - answered, "failed_share": 0.0, "drained": drained,
            "drain_seconds": 1.0, "consumer_lag_at_end": {"payflow-streams": 10},
            "undecided_after_drain": 0 if drained else 3, "cpu_ms_per_payment_total": 4.2,
            "cpu_ms_per_payment": {"api": 1.0, "worker": 2.0, "ledger": 0.7, "webhooks": 0.5,
                                   "machine": 9.0},
            "generator_cpu_ms_per_request": 0.1, "peak_rss_mb": {"api": 200.0}}


def test_end_to_end_rows_report_the_rates_within_each_limit_and_the_cpu_budget() -> None:
    figures = {"rates": [100.0, 200.0], "seconds_per_rate": 20.0,
               "steps": [_e2e_step(100, 120, 1.0, True), _e2e_step(200, 900, 1.0, False)],
               "highest_rate_p99_under_2s": 200.0, "highest_rate_p99_under_250ms": 100.0}
    rows, tables = rows_endtoend(figures)
    by_figure = {row.figure: row for row in rows}
    assert by_figure["highest rate with authorization p99 < 250 ms"].value == 100.0
    assert by_figure["highest rate with authorization p99 < 250 ms"].met is False  # < 500/s
    cpu = next(row for row in rows if row.figure.startswith("CPU per payment"))
    assert cpu.figure.endswith("at 100/s")  # the highest rate that was answered and drained
    assert cpu.met is False and cpu.reference_value == 9.0
    lost = by_figure["payments still undecided after the drain"]
    assert lost.value == 3 and lost.met is False
    assert [t.title.split(",")[0] for t in tables] == ["End-to-end", "End-to-end: CPU ms per "
                                                                     "payment (schedule start to "
                                                                     "drain end) and peak RSS MB"]


def _streams_figures(quix: dict[str, Any]) -> dict[str, Any]:
    return {"throughput": {"payments": 5000, "decisions": 5000, "decisions_per_second": 3600.0,
                           "worker_cpu_us_per_decision": 260.0},
            "passthrough_reference": {"messages": 5001, "messages_per_second": 18000,
                                      "cpu_us_per_message": 40.0},
            "latency": {"rate_per_second": 200.0, "seconds": 10.0, "sent": 2000,
                        "decided_within_15_s": 2000, "p50_ms": 40.0, "p99_ms": 90.0,
                        "max_ms": 120.0},
            "quix_streams": quix}


def test_the_streams_rows_say_quix_was_not_run_rather_than_invent_a_figure() -> None:
    rows, tables = rows_streams(_streams_figures({"status": "not_run",
                                                 "reason": "not run in --quick"}))
    quix = [row for row in rows if "Quix" in row.reference]
    assert len(quix) == 2
    assert all(row.reference_value is None and row.ratio is None for row in quix)
    assert all(row.note == "Quix not run" for row in quix)
    assert tables[0].rows[1][1] == "not run in --quick"
    worker = rows[0]
    assert worker.ratio == pytest.approx(0.2) and worker.met is False


def test_the_streams_rows_compare_the_worker_with_quix_streams_and_the_pass_through() -> None:
    rows, tables = rows_streams(_streams_figures({
        "status": "ok", "decisions": 5001, "decisions_per_second": 7200.0,
        "cpu_us_per_decision": 130.0}))
    throughput = next(row for row in rows if row.reference.startswith("Quix Streams, same"))
    cpu = next(row for row in rows if row.reference == "Quix Streams CPU per decision")
    assert throughput.ratio == pytest.approx(0.5) and throughput.note == ""
    assert cpu.ratio == pytest.approx(2.0)
    assert [row[0].split(" ")[0] for row in tables[0].rows] == ["payflow", "Quix", "raw"]
    assert tables[0].rows[1][1:] == ("7,200.0", "130.0", "5,001")


def test_the_quix_venv_pins_payflow_s_own_scientific_stack() -> None:
    from importlib import metadata

    from bench.quix import QUIXSTREAMS, requirements

    pinned = requirements()
    assert pinned[0] == QUIXSTREAMS
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in pinned
    assert f"skops=={metadata.version('skops')}" in pinned


def test_end_to_end_rows_show_the_ledger_and_webhook_lags_where_measured() -> None:
    measured = _e2e_step(100, 120, 1.0, True) | {
        "decision_to_ledger": {"count": 2000, "p50_ms": 35.0, "p95_ms": 60.0, "p99_ms": 80.5,
                               "max_ms": 90.0},
        "ledger_to_webhook_delivery": {"count": 0, "p50_ms": None, "p95_ms": None,
                                       "p99_ms": None, "max_ms": None}}
    figures = {"rates": [100.0], "seconds_per_rate": 20.0, "steps": [measured],
               "highest_rate_p99_under_2s": 100.0, "highest_rate_p99_under_250ms": 100.0}
    _, tables = rows_endtoend(figures)
    steps = tables[0]
    assert steps.headers[-2:] == ("decision → ledger p50 / p99",
                                  "ledger → webhook delivered p50 / p99")
    assert steps.rows[0][-2:] == ("35.0 ms / 80.5 ms (2,000)", "—")


def test_scale_out_rows_compare_each_layout_with_one_of_each() -> None:
    from bench.scaleout import parse_layouts
    from bench.suite import rows_scaleout

    assert parse_layouts("1x1, 2x2") == ((1, 1), (2, 2))
    one = _e2e_step(400, 150, 1.0, True) | {"workers": 1, "ledger_consumers": 1}
    two = _e2e_step(400, 120, 1.0, True) | {"workers": 2, "ledger_consumers": 2,
                                            "cpu_ms_per_payment_total": 5.04}
    prefilled = [{"workers": 1, "payments": 2000, "decisions": 2000,
                  "decisions_per_second": 500.0, "workers_cpu_us_per_decision": 1500.0},
                 {"workers": 2, "payments": 2000, "decisions": 1500,
                  "decisions_per_second": 600.0, "workers_cpu_us_per_decision": 1800.0}]
    rows, tables = rows_scaleout({"rate_per_second": 400.0, "seconds": 30.0,
                                  "runs": [one, two], "workers_prefilled": prefilled})
    cpu = next(row for row in rows if "CPU per payment" in row.figure)
    assert cpu.figure.startswith("2 worker(s) + 2 ledger consumer(s)")
    assert cpu.reference == "1 worker(s) + 1 ledger consumer(s)"
    assert cpu.ratio == pytest.approx(1.2)
    assert len(tables[0].rows) == 2 and tables[0].rows[1][0].startswith("2 worker(s)")
    alone = next(row for row in rows if row.figure.startswith("2 workers, pre-filled"))
    assert alone.ratio == pytest.approx(1.2) and alone.reference == "1 worker"
    assert tables[1].rows[1] == ("2", "2,000", "1,500", "600.0", "1,800.0")


def test_an_open_loop_step_counts_every_scheduled_request_once() -> None:
    from bench.endtoend import step_figures
    from bench.http_load import Outcome

    outcomes = ([Outcome(201, i * 0.01, i * 0.01 + 0.05) for i in range(90)]
                + [Outcome(202, 0.9, 2.4), Outcome(503, 0.91, 0.92), Outcome(429, 0.92, 0.93),
                   Outcome(0, 0.93, 10.93), Outcome(-1, 0.94, 0.94)]
                + [Outcome(201, 0.95 + i * 0.01, 1.0 + i * 0.01) for i in range(5)])
    figures = step_figures(100.0, 1.0, outcomes)
    assert figures["scheduled"] == 100
    assert figures["statuses"] == {"-1": 1, "0": 1, "201": 95, "202": 1, "429": 1, "503": 1}
    assert (figures["synchronous_share"], figures["pending_share"], figures["shed_share"],
            figures["failed_share"], figures["not_sent_share"]) == (0.95, 0.01, 0.02, 0.01, 0.01)
    assert figures["answered_share"] == 0.96
    assert figures["latency"]["count"] == 96 and figures["latency"]["max_ms"] == 1500.0
    assert figures["achieved_per_second"] == 40.0  # 96 answers, the last 2.4 s after the start
    assert sum(figures["answered_per_second_series"]) == 96
    assert sum(figures["shed_or_failed_per_second_series"]) == 2  # the timeout ends past 3 s
    json.dumps(figures)

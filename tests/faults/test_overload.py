"""Promise: offered twice the rate it sustains, the API sheds load early — 503 (or 429) with
``Retry-After``, never 500 — so that goodput stays at least 80 % of the sustainable rate,
accepted payments keep their latency target, and nothing accepted is lost.

The whole stack runs on a database and topic prefix of the test's own, with the test merchant's
rate limit lifted (the per-merchant limit is a policy; what is tested here is capacity). The
machine is shared (2 cores; its load average moves between 1 and 25 while others' tests run),
so every criterion is relative to what is measured in the same run:

1. baseline: ``BASELINE_RATE`` payments a second; the latency target is twice their p99, and
   at least ``MIN_TARGET_SECONDS`` (stated in the output);
2. calibration: rising rates (``CALIBRATION_RATES``, each for ``STEP_SECONDS``, the pipeline
   drained between steps) until one misses the target; the sustainable rate is the highest
   whose every request was answered 201 (decided) with p99 within the target. The API's
   adaptive shedding is held back meanwhile (its latency target is three decision budgets), so
   the calibration measures the pipeline, not the shedding policy;
3. overload: the API restarted with ``SHEDDING_SHARE`` of the latency target as its shedding
   target (it admits what it answers in a share of that, the share cut on answers past it:
   ``api/shedding.py``) and
   warmed up for a step at the sustainable rate (not judged), then twice the sustainable rate
   for ``OVERLOAD_SECONDS``; if that was no overload after all (every
   request answered 201 within the target: the machine had more room than while calibrating),
   it counts as sustained and the rate doubles again (``MAX_ESCALATIONS``).

Latency runs from each request's scheduled send (open loop) to its answer. The decision budget
is 8 s, so a slow decision shows as latency rather than as a 202 at the budget.
The figures (target, sustainable rate, offered, goodput, shed share, p50/p99, load average,
the API's shedding gauges) are printed and written to ``<PAYFLOW_HOME>/reports/overload.json``.
Marked slow: ``make test-slow``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from bench.endtoend import simulated_bodies
from bench.http_load import Outcome
from bench.stats import latency_summary_ms, percentile
from tests.faults.load import (
    ACCEPTED,
    RATE_LIMIT_LIFTED,
    SHED,
    accepted_ids,
    assert_applied_once,
    offer,
    stack_environment,
    wait_for_lag,
    wait_until_decided,
)
from tests.harness import IsolatedEnvironment, RunningStack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.overload,
              pytest.mark.timeout(1200)]

BUDGET_SECONDS = 8.0
"""Long, so that a slow decision shows as latency rather than as a 202 at the budget; under the
10 s client timeout of the harness's warm-up payment (a budget of 10 s races it when the loaded
machine takes that long to decide the first payment)."""
BASELINE_RATE = 5.0
BASELINE_ATTEMPTS = 3
"""A freshly started stack on a loaded machine can stall for a few seconds (a consumer group
still settling); the baseline is the first step whose every payment was decided in time."""
MAX_BASELINE_P99_SECONDS = 2.0
"""Past this the machine is too loaded for a latency target to mean anything: the target (twice
the baseline p99) would come near the budget, where answers turn into 202 ``pending``."""
MIN_TARGET_SECONDS = 1.0
CALIBRATION_RATES = (10.0, 15.0, 20.0, 30.0, 40.0, 55.0, 75.0, 100.0, 135.0, 180.0, 250.0)
STEP_SECONDS = 12.0
OVERLOAD_SECONDS = 45.0
MAX_ESCALATIONS = 3
"""An overload phase whose every request was answered 201 within the target was no overload
(the shared machine had more room than during the calibration): it counts as sustained and the
rate doubles again, at most this many times."""
SHEDDING_SHARE = 0.8
"""The API's shedding target as a share of the test's p99 target. The API cuts how long a mean
wait it allows on any answer past its target, so its answers settle about at that target, and
overshoot it for a round trip whenever the pipeline slows (a queue admitted is not recalled).
Runs on 26 Nov 2026: with 0.9, p99 0.78 and 0.99 of the test's target; with 0.85, 0.91 (5-second
windows up to 1.13) and 1.16 on CI's fresh clone, where the machine itself saturated."""
MIN_IN_FLIGHT = 2
"""The shedding bound's floor in this stack. The default (16) keeps small bursts from ever being
refused; at the few payments a second this machine sustains when others' tests load it, 16
waiting payments are seconds of queue."""
MIN_GOODPUT_SHARE = 0.8
MAX_OUTSTANDING = 5_000
DRAIN_SECONDS = 150.0
LAG_WAIT_SECONDS = 30.0
ENV = {**RATE_LIMIT_LIFTED, "PAYFLOW_DECISION_BUDGET_SECONDS": str(BUDGET_SECONDS),
       "PAYFLOW_API_LATENCY_TARGET_SECONDS": str(3 * BUDGET_SECONDS)}
"""While calibrating, the API's adaptive shedding never triggers: no answer takes 3 budgets."""


def test_offered_twice_the_sustainable_rate_the_api_sheds_early_and_keeps_goodput(
    environment: IsolatedEnvironment,
) -> None:
    overload = stack_environment(environment, "overload", ENV)
    try:
        stack = RunningStack.start(overload)
        try:
            _run(overload, stack)
        finally:
            stack.stop()
    finally:
        overload.teardown()


def _run(overload: IsolatedEnvironment, stack: RunningStack) -> None:
    key = overload.create_merchant("Overload Merchant").api_key
    bodies = simulated_bodies(6_000)
    accepted: list[str] = []
    steps: list[dict[str, Any]] = []

    def step(rate: float, seconds: float) -> list[Outcome]:
        outcomes = asyncio.run(offer(stack, key, bodies, rate, seconds, MAX_OUTSTANDING))
        accepted.extend(_drain(overload, outcomes))
        steps.append({**_figures(rate, seconds, outcomes), "api": _api_gauges(stack)})
        print(f"{rate:g}/s: {steps[-1]} load average {os.getloadavg()}", flush=True)
        return outcomes

    for _ in range(BASELINE_ATTEMPTS):
        baseline = step(BASELINE_RATE, STEP_SECONDS)
        if _within(baseline, MAX_BASELINE_P99_SECONDS):
            break
    else:
        pytest.fail(f"the machine is too loaded for this test: {BASELINE_RATE:g} payments a "
                    f"second were not all decided with p99 within {MAX_BASELINE_P99_SECONDS} s "
                    f"in {BASELINE_ATTEMPTS} tries (load average {os.getloadavg()}): {steps}",
                    pytrace=False)
    target = max(MIN_TARGET_SECONDS,
                 math.ceil(20 * percentile([o.latency for o in baseline], 0.99)) / 10)
    sustainable = BASELINE_RATE
    for rate in CALIBRATION_RATES:
        if not _within(step(rate, STEP_SECONDS), target):
            break
        sustainable = rate

    _restart_api(stack, {"PAYFLOW_API_LATENCY_TARGET_SECONDS": str(SHEDDING_SHARE * target),
                         "PAYFLOW_API_MIN_IN_FLIGHT": str(MIN_IN_FLIGHT)})
    step(sustainable, STEP_SECONDS)  # the new API process warms up: the restart is the test's
    for _ in range(MAX_ESCALATIONS + 1):
        offered = 2 * sustainable
        outcomes = step(offered, OVERLOAD_SECONDS)
        if not _within(outcomes, target):
            break
        sustainable = offered  # not an overload: the machine has more room than calibrated
    figures = steps[-1]
    report = _report(overload, target, sustainable, steps, figures)
    print(f"\noverload: latency target {target} s (p99), sustainable {sustainable:g}/s, "
          f"offered {offered:g}/s for {OVERLOAD_SECONDS:g} s -> goodput "
          f"{figures['goodput_per_second']}/s ({report['goodput_share_of_sustainable']:.0%} of "
          f"sustainable), shed {figures['shed_share']:.1%}, latency {figures['latency']}, "
          f"statuses {figures['statuses']}, load average {report['load_average']}; "
          f"written to {report['path']}")

    statuses = Counter(o.status for o in outcomes)
    assert set(statuses) <= {*ACCEPTED, *SHED}, f"answers other than 2xx/429/503: {statuses}"
    unmarked = [o for o in outcomes if o.status in SHED and not o.retry_after]
    assert unmarked == [], f"{len(unmarked)} shed answers without Retry-After"
    assert figures["goodput_per_second"] >= MIN_GOODPUT_SHARE * sustainable, figures
    assert figures["latency_p99_seconds"] <= target, figures
    assert_applied_once(overload.settings, accepted)
    assert _payments_of_merchant(overload) == len(accepted), "a shed request left a payment"


def _restart_api(stack: RunningStack, extra_env: dict[str, str]) -> None:
    api = next(c for c in stack.supervisor.children if c.name == "api")
    os.killpg(api.process.pid, signal.SIGTERM)
    api.process.wait(timeout=30)
    stack.supervisor.children.remove(api)
    stack.supervisor.start("api", "api", extra_env=extra_env)
    stack.wait_ready(timeout_seconds=90)


def _within(outcomes: list[Outcome], target_seconds: float) -> bool:
    latencies = [o.latency for o in outcomes]
    return (all(o.status == 201 for o in outcomes)
            and percentile(latencies, 0.99) <= target_seconds)


def _drain(overload: IsolatedEnvironment, outcomes: list[Outcome]) -> list[str]:
    """Every accepted payment decided (asserted), and the consumers caught up (waited for,
    bounded: the next phase starts from an empty pipeline) before the next phase."""
    ids = accepted_ids(outcomes)
    wait_until_decided(overload.settings, ids, DRAIN_SECONDS)
    lags = wait_for_lag(overload.settings, LAG_WAIT_SECONDS)
    if any(lags.values()):
        print(f"consumer lag still {lags} {LAG_WAIT_SECONDS:g} s after every payment was decided")
    return ids


def _figures(rate: float, seconds: float, outcomes: list[Outcome]) -> dict[str, Any]:
    statuses = Counter(o.status for o in outcomes)
    accepted = [o.latency for o in outcomes if o.status in ACCEPTED]
    return {
        "offered_per_second": rate, "requests": len(outcomes),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "goodput_per_second": round(len(accepted) / seconds, 1),
        "shed_share": round(sum(statuses[s] for s in SHED) / max(1, len(outcomes)), 3),
        "latency": latency_summary_ms(accepted),
        "latency_p99_seconds": percentile(accepted, 0.99) if accepted else float("inf"),
        "p99_ms_per_5s": _p99_per_window(outcomes, seconds, 5.0),
    }


def _p99_per_window(outcomes: list[Outcome], seconds: float, window: float) -> list[float | None]:
    """p99 of the accepted requests scheduled in each window (ms): where in the phase the slow
    answers were."""
    windows: list[list[float]] = [[] for _ in range(math.ceil(seconds / window))]
    for o in outcomes:
        if o.status in ACCEPTED:
            windows[min(len(windows) - 1, int(o.scheduled // window))].append(o.latency)
    return [round(percentile(w, 0.99) * 1000) if w else None for w in windows]


def _api_gauges(stack: RunningStack) -> dict[str, float]:
    """The API's shedding gauges as its last request of the step left them (``/metrics``):
    in-flight bound, share of the target, event-loop lag."""
    text = httpx.get(f"{stack.base_url}/metrics", timeout=10).text
    return {name.removeprefix("payflow_api_"): float(value)
            for name, _, value in (line.partition(" ") for line in text.splitlines())
            if name.startswith("payflow_api_")}


def _payments_of_merchant(overload: IsolatedEnvironment) -> int:
    with psycopg.connect(overload.settings.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM payments p JOIN merchants m ON "
                           "m.id = p.merchant_id WHERE m.name = 'Overload Merchant'").fetchone()
    assert row is not None
    return int(row[0])


def _report(overload: IsolatedEnvironment, target: float, sustainable: float,
            steps: list[dict[str, Any]], figures: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "latency_target_seconds": target, "budget_seconds": BUDGET_SECONDS,
        "sustainable_per_second": sustainable, "calibration": steps, "overload": figures,
        "goodput_share_of_sustainable": round(figures["goodput_per_second"] / sustainable, 3),
        "load_average": os.getloadavg(),
    }
    path = overload.settings.home / "reports" / "overload.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    report["path"] = str(path)
    return report

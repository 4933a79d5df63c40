"""Dashboard speed at 1,000,000 payments: bulk-load a benchmark database, time every page's
API calls and every ``/api/analytics`` query, print the figures and the conditions. The rows
are made by PostgreSQL, set-based, in chunks that print their progress.

    .venv/bin/python -m bench.dashboard [--payments 1000000] [--repeat 5] [--reload]

Uses the running services (``payflow services up``); loads into its own database
``payflow_bench`` (kept between runs; ``--reload`` rebuilds it): one merchant owns every
payment (the worst case for that merchant's list), spread over the last 365 days, with
rollups computed from them. Then it starts an API process on that database, logs in as a
dashboard user and times each call cold (first) and warm (median, max of ``--repeat``).

``python -m bench`` calls ``run`` instead, on a database of the run's own (``bench.sandbox``,
dropped afterwards), and collects ``figures``: every call, each page's total, and the median
``GET /healthz`` of the same API as the reference (the HTTP round trip under every call).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg.types.json import Jsonb

from payflow.cli.user import ensure_user
from payflow.db.databases import create_database, drop_database
from payflow.db.migrate import migrate
from payflow.merchants import create_or_add_key
from payflow.settings import get_settings
from payflow.supervisor import free_port

DATABASE = "payflow_bench"
EMAIL = "bench@payflow.test"
PASSWORD = "bench-password-not-secret"
STATUSES = [("captured", 80), ("failed", 8), ("authorized", 5), ("refunded", 4), ("voided", 3)]
CURRENCIES = [("USD", 85), ("EUR", 10), ("GBP", 5)]
FLAGS = ["High transaction velocity", "Amount significantly above average",
         "New geographic location", "Card used from many IPs"]
PAYMENT_COLUMNS = ("id, merchant_id, amount, currency, captured_amount, refunded_amount, status, "
                "capture, fraud_score, risk_level, fraud_flags, decline_code, processor_ref, "
                "payment_method_id, payment_method, description, metadata, request, created_at, "
                "updated_at")


def bench_url(base: str, database: str = DATABASE) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{database}"))


def prepare_database(admin_url: str, payments: int, reload: bool,
                     database: str = DATABASE) -> tuple[str, str]:
    """The benchmark database, loaded; (database url, merchant id)."""
    url = bench_url(admin_url, database)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (database,)).fetchone()
    if exists and reload:
        drop_database(admin_url, database)
    if not exists or reload:
        create_database(admin_url, database)
    migrate(url)
    merchant = asyncio.run(create_or_add_key(url, "Bench Merchant", EMAIL))
    asyncio.run(ensure_user(url, EMAIL, PASSWORD, "merchant", merchant.merchant_id))
    with psycopg.connect(url) as conn:
        count = conn.execute("SELECT count(*) FROM payments").fetchone()
        if count and count[0] >= payments:
            print(f"bench: reusing {count[0]:,} payments in {database}")
            if conn.execute("SELECT 1 FROM analytics_rollups LIMIT 1").fetchone() is None:
                _build_rollups(conn)
            return url, merchant.merchant_id
    load(url, merchant.merchant_id, payments)
    return url, merchant.merchant_id


CHUNK = 100_000
"""Payments per INSERT … SELECT: the load prints its progress after each."""


def weighted_case(expression: str, choices: list[tuple[str, int]]) -> str:
    """SQL choosing among ``choices`` by their weights from ``expression``, a uniform [0, 1)
    value: ``CASE WHEN u < 0.8 THEN 'captured' … ELSE 'voided' END``."""
    total = sum(weight for _, weight in choices)
    cumulative, whens = 0, []
    for choice, weight in choices[:-1]:
        cumulative += weight
        whens.append(f"WHEN {expression} < {cumulative / total!r} THEN '{choice}'")
    return f"CASE {' '.join(whens)} ELSE '{choices[-1][0]}' END"


# Every row is made by PostgreSQL itself (set-based, no per-row work in Python): the statuses
# and currencies by their weights, the amount log-normal (mu 8, sigma 1, Box-Muller, at least
# 100), the fraud score exponential (mean 15, at most 100), created_at uniform over 365 days.
INSERT_PAYMENTS = f"""
    INSERT INTO payments ({PAYMENT_COLUMNS})
    SELECT 'pay_bench' || lpad(i::text, 15, '0'), %(merchant)s, amount, currency,
           CASE WHEN status IN ('captured', 'refunded') THEN amount ELSE 0 END,
           CASE WHEN status = 'refunded' THEN amount ELSE 0 END,
           status, true, score,
           CASE WHEN score < 30 THEN 'low' WHEN score < 70 THEN 'medium' ELSE 'high' END,
           CASE WHEN score >= 30
                THEN jsonb_build_array((%(flags)s::text[])[i %% {len(FLAGS)} + 1])
                ELSE '[]'::jsonb END,
           CASE WHEN status = 'failed' THEN 'generic_decline' END,
           'psr_' || lpad(i::text, 20, '0'), 'pm_bench', %(method)s::jsonb, 'order ' || i,
           '{{}}'::jsonb, '{{"bench": true}}'::jsonb, created, created
    FROM (SELECT i, {weighted_case("u_status", STATUSES)} AS status,
                 {weighted_case("u_currency", CURRENCIES)} AS currency,
                 greatest(100, floor(exp(8 + sqrt(-2 * ln(1 - u_amount))
                                             * cos(2 * pi() * v_amount))))::bigint AS amount,
                 least(100, floor(-15 * ln(1 - u_score)))::smallint AS score,
                 %(now)s - u_created * interval '365 days' AS created
          FROM (SELECT i, random() AS u_status, random() AS u_currency, random() AS u_amount,
                       random() AS v_amount, random() AS u_score, random() AS u_created
                FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
                OFFSET 0) AS draws) AS rows"""


def load(url: str, merchant_id: str, payments: int) -> None:
    """``payments`` payments of one merchant, made by PostgreSQL in chunks of ``CHUNK`` in one
    transaction (progress after each), then their rollups, then VACUUM ANALYZE."""
    card = {"brand": "visa", "funding": "credit", "last4": "4242", "exp_month": 12,
            "exp_year": 2030, "fingerprint": "bench"}
    method: dict[str, object] = {"id": "pm_bench", "type": "card", "card": card}
    now = datetime.now(UTC)
    started = time.monotonic()
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO payment_methods (id, merchant_id, type, summary, ciphertext) "
                      "VALUES ('pm_bench', %s, 'card', %s, '\\x00') ON CONFLICT DO NOTHING",
                      (merchant_id, Jsonb(method)))
        conn.execute("SELECT setseed(0.08)")
        for first in range(0, payments, CHUNK):
            last = min(first + CHUNK, payments) - 1
            conn.execute(INSERT_PAYMENTS, {"merchant": merchant_id, "flags": FLAGS,
                                           "method": json.dumps(method), "now": now,
                                           "first": first, "last": last})
            print(f"bench: inserted {last + 1:,} / {payments:,} payments "
                  f"({time.monotonic() - started:.1f} s)", flush=True)
        _build_rollups(conn)
        conn.commit()
        print(f"bench: rolled up in {time.monotonic() - started:.1f} s", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE payments")
        conn.execute("VACUUM ANALYZE analytics_rollups")
    print(f"bench: loaded, rolled up and analyzed in {time.monotonic() - started:.1f} s",
          flush=True)


def _build_rollups(conn: psycopg.Connection[object]) -> None:
    """Rollups from the loaded payments, as the analytics consumer would have made them."""
    histogram = ", ".join(f"count(*) FILTER (WHERE least(fraud_score / 10, 9) = {i})"
                          for i in range(10))
    for granularity in ("hour", "day"):
        conn.execute(f"""
            INSERT INTO analytics_rollups (merchant_id, currency, granularity, bucket_start,
                payment_count, gross_volume, captured_amount, refunded_amount, approvals,
                declines, fraud_declines, refunds, score_histogram)
            SELECT merchant_id, currency, '{granularity}',
                   date_trunc('{granularity}', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                   count(*), coalesce(sum(amount) FILTER (WHERE status <> 'failed'), 0),
                   sum(captured_amount), sum(refunded_amount),
                   count(*) FILTER (WHERE status <> 'failed'),
                   count(*) FILTER (WHERE status = 'failed'), 0,
                   count(*) FILTER (WHERE refunded_amount > 0), ARRAY[{histogram}]
            FROM payments GROUP BY 1, 2, 3, 4
            ON CONFLICT DO NOTHING""")
    conn.execute("""
        INSERT INTO analytics_daily_flags (merchant_id, day, flag, payments)
        SELECT merchant_id, (created_at AT TIME ZONE 'UTC')::date, flag, count(*)
        FROM payments, jsonb_array_elements_text(fraud_flags) AS flag GROUP BY 1, 2, 3
        ON CONFLICT DO NOTHING""")


def start_api(url: str, topic_prefix: str = "bench.") -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PAYFLOW_DATABASE_URL": url, "PAYFLOW_API_PORT": str(port),
           "PAYFLOW_TOPIC_PREFIX": topic_prefix, "PAYFLOW_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "payflow", "api"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.terminate()
    raise SystemExit("bench: the API did not start")


def pages(sample_id: str) -> dict[str, list[tuple[str, str, dict[str, object]]]]:
    """Each page's API calls as the dashboard makes them on first render."""
    today = datetime.now(UTC).date()
    month_ago = (today - timedelta(days=30)).isoformat()
    end = (today + timedelta(days=1)).isoformat()
    return {
        "Overview": [("currencies", "/api/analytics/currencies", {}),
                     ("summary 30d", "/api/analytics/summary", {"currency": "USD",
                                                                "period": "30d"}),
                     ("revenue by day", "/api/analytics/revenue", {"granularity": "day",
                                                                   "currency": "USD"})],
        "Overview (month, 90d)": [
            ("summary 90d", "/api/analytics/summary", {"currency": "USD", "period": "90d"}),
            ("revenue by month", "/api/analytics/revenue", {"granularity": "month",
                                                            "currency": "USD"})],
        "Transactions": [("list page 1", "/v1/payments", {"limit": 25})],
        "Transactions: status+currency": [
            ("list filtered", "/v1/payments", {"limit": 25, "status": "refunded",
                                               "currency": "GBP"})],
        "Transactions: dates+amounts": [
            ("list filtered", "/v1/payments", {"limit": 25, "start_date": month_ago,
                                               "end_date": end, "min_amount": 1000,
                                               "max_amount": 5000, "currency": "USD"})],
        "Transactions: search id": [("search", "/v1/payments", {"search": sample_id})],
        "Transactions: page 400": [("list page 400", "/v1/payments", {"limit": 25,
                                                                      "page": 400})],
        "Transaction detail": [("payment", f"/v1/payments/{sample_id}", {}),
                               ("timeline", f"/v1/payments/{sample_id}/timeline", {}),
                               ("ledger entries", f"/v1/payments/{sample_id}/ledger_entries",
                                {})],
        "Risk": [("risk 30d", "/api/analytics/risk", {}),
                 ("risk 180d", "/api/analytics/risk",
                  {"start": (today - timedelta(days=180)).isoformat(), "end": end}),
                 ("model", "/api/models", {})],
        "Payouts": [("balances", "/api/balances", {}), ("payouts", "/api/payouts", {}),
                    ("reconciliation", "/api/ledger/reconciliation", {})],
        "Webhooks": [("endpoint", "/api/webhooks/endpoint", {}),
                     ("deliveries", "/api/webhooks/deliveries", {})],
        "Exports (per 100 rows)": [("list 100", "/v1/payments", {"limit": 100})],
    }


def timed(client: httpx.Client, path: str, params: dict[str, object]) -> tuple[float, int]:
    """(milliseconds, HTTP status) of one GET."""
    started = time.perf_counter()
    response = client.get(path, params=params)  # type: ignore[arg-type]
    return (time.perf_counter() - started) * 1000, response.status_code


def measure(base: str, repeat: int, sample_id: str) -> list[Call]:
    with httpx.Client(base_url=base, timeout=60) as client:
        login = client.post("/api/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert login.status_code == 200, login.text
        results = []
        for page, calls in pages(sample_id).items():
            for name, path, params in calls:
                cold, status = timed(client, path, params)
                warm = [timed(client, path, params)[0] for _ in range(repeat)]
                results.append((page, name, status, cold, statistics.median(warm), max(warm)))
    return results


Call = tuple[str, str, int, float, float, float]
"""(page, call, HTTP status, cold ms, warm median ms, warm max ms)."""


def reference_ms(base: str, repeat: int) -> float:
    """Median ms of ``GET /healthz`` on the same API: the HTTP round trip under every call."""
    with httpx.Client(base_url=base, timeout=60) as client:
        return statistics.median(timed(client, "/healthz", {})[0] for _ in range(repeat + 1))


def page_totals(results: list[Call]) -> dict[str, float]:
    """Each page's time: the sum of its calls, each the worst of cold and warm. Every answer
    counts but a server error (5xx): a 404 is what the page shows, e.g. the Webhooks page of a
    merchant with no endpoint yet."""
    per_page: dict[str, float] = {}
    for page, _name, status, cold, _median, worst in results:
        if status < 500:
            per_page[page] = per_page.get(page, 0.0) + max(cold, worst)
    return per_page


def figures(results: list[Call], payments: int, repeat: int, healthz_ms: float
            ) -> dict[str, Any]:
    """Every figure of the dashboard benchmark, for ``python -m bench``."""
    totals = page_totals(results)
    slowest = max(totals, key=lambda page: totals[page]) if totals else None
    return {
        "payments": payments, "repeat": repeat,
        "reference_healthz_median_ms": round(healthz_ms, 2),
        "calls": [{"page": page, "call": name, "status": status, "cold_ms": round(cold, 1),
                   "median_ms": round(median, 1), "max_ms": round(worst, 1)}
                  for page, name, status, cold, median, worst in results],
        "pages_ms": {page: round(total, 1) for page, total in totals.items()},
        "slowest_page": slowest, "slowest_page_ms": round(totals[slowest], 1) if slowest else None,
    }


def run(admin_url: str, database: str, topic_prefix: str, payments: int, repeat: int
        ) -> dict[str, Any]:
    """Load ``database`` (if not loaded), start an API on it, time every page; the figures."""
    url, _ = prepare_database(admin_url, payments, reload=False, database=database)
    process, base = start_api(url, topic_prefix)
    try:
        results = measure(base, repeat, f"pay_bench{payments // 2:015d}")
        healthz = reference_ms(base, repeat)
    finally:
        process.terminate()
        process.wait(timeout=15)
    report(results, payments, url)
    return figures(results, payments, repeat, healthz)


def report(results: list[Call], payments: int, url: str) -> None:
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        rollups = conn.execute("SELECT count(*) FROM analytics_rollups").fetchone()
    print(f"\nconditions: {payments:,} payments (one merchant), {rollups[0] if rollups else 0:,} "
          f"rollup rows, PostgreSQL {version[0] if version else '?'}, {os.cpu_count()} CPUs, "
          f"API: 1 uvicorn process, client on the same host; times in ms")
    print(f"{'page':32} {'call':18} {'http':>4} {'cold':>8} {'median':>8} {'max':>8}")
    for page, name, status, cold, median, worst in results:
        print(f"{page:32} {name:18} {status:>4} {cold:8.1f} {median:8.1f} {worst:8.1f}")
    per_page = page_totals(results)
    print("\npage totals (sum of its calls, worst of cold/warm; 5xx answers left out):")
    for page, total in per_page.items():
        verdict = "OK" if total < 2000 else "OVER 2 s"
        print(f"  {page:32} {total:8.1f} ms  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reload", action="store_true", help="drop and reload the database")
    args = parser.parse_args()
    settings = get_settings()
    url, _ = prepare_database(settings.database_url, args.payments, args.reload)
    process, base = start_api(url)
    try:
        sample_id = f"pay_bench{args.payments // 2:015d}"
        report(measure(base, args.repeat, sample_id), args.payments, url)
    finally:
        process.terminate()
        process.wait(timeout=15)


if __name__ == "__main__":
    main()

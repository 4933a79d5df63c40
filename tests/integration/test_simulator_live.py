"""`payflow simulate --rate --duration` sends simulated traffic through the running stack: every
payment is accepted and decided by the risk engine, and the fraud that gets through is disputed
later, which gives the ledger (and so training) its fraud labels."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import psycopg
import pytest

from ingest.traffic import SimulationConfig, simulate
from tests.harness import RunningStack

pytestmark = pytest.mark.integration
PAYFLOW = Path(sys.executable).parent / "payflow"


def test_simulated_traffic_flows_through_the_live_api(stack: RunningStack) -> None:
    key = stack.environment.create_merchant("Simulator Test").api_key
    result = subprocess.run(
        [str(PAYFLOW), "simulate", "--rate", "15", "--duration", "2", "--seed", "5",
         "--no-labels", "--api-url", stack.base_url, "--api-key", key],
        env=stack.environment.env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error=" not in result.stdout, result.stdout
    listed = httpx.get(f"{stack.base_url}/v1/payments", params={"limit": 100}, timeout=10,
                       headers={"Authorization": f"Bearer {key}"}).json()
    assert listed["total"] == 30
    assert all(p["metadata"]["source"] == "payflow-simulate" for p in listed["data"])
    assert all(p["fraud_score"] is not None or p["status"] == "pending" for p in listed["data"])


def test_fraud_that_gets_through_is_disputed_and_becomes_a_fraud_label(
    stack: RunningStack,
) -> None:
    """Seed 5's first 40 payments hold two account takeovers (``ingest.traffic``)."""
    key = stack.environment.create_merchant("Simulator Labels").api_key
    result = subprocess.run(
        [str(PAYFLOW), "simulate", "--rate", "20", "--duration", "2", "--seed", "5",
         "--label-delay", "1", "--api-url", stack.base_url, "--api-key", key],
        env=stack.environment.env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout, result.stdout
    frauds = {p.payment_id for p in simulate(replace(SimulationConfig(), days=1, seed=5))[:40]
              if p.is_fraud}
    assert len(frauds) == 2
    listed = httpx.get(f"{stack.base_url}/v1/payments", params={"limit": 100}, timeout=10,
                       headers={"Authorization": f"Bearer {key}"}).json()
    assert listed["total"] == 40
    through = {p["id"] for p in listed["data"]
               if p["metadata"]["simulated_id"] in frauds and p["status"] == "captured"}
    assert f"disputed={len(through)}" in result.stdout or not through, result.stdout
    every = [p["id"] for p in listed["data"]]
    deadline, labelled = time.monotonic() + 30, set[str]()
    while time.monotonic() < deadline and labelled != through:
        with psycopg.connect(stack.environment.settings.database_url) as conn:
            labelled = {row[0] for row in conn.execute(
                "SELECT payment_id FROM fraud_labels WHERE is_fraud AND payment_id = ANY(%s)",
                (every,))}
        time.sleep(0.3)
    assert labelled == through

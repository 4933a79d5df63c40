"""`payflow simulate --rate --duration` sends simulated traffic through the running stack: every
payment is accepted and decided by the risk engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.harness import RunningStack

pytestmark = pytest.mark.integration
PAYFLOW = Path(sys.executable).parent / "payflow"


def test_simulated_traffic_flows_through_the_live_api(stack: RunningStack) -> None:
    key = stack.environment.create_merchant("Simulator Test").api_key
    result = subprocess.run(
        [str(PAYFLOW), "simulate", "--rate", "15", "--duration", "2", "--seed", "5",
         "--api-url", stack.base_url, "--api-key", key],
        env=stack.environment.env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error=" not in result.stdout, result.stdout
    listed = httpx.get(f"{stack.base_url}/v1/payments", params={"limit": 100}, timeout=10,
                       headers={"Authorization": f"Bearer {key}"}).json()
    assert listed["total"] == 30
    assert all(p["metadata"]["source"] == "payflow-simulate" for p in listed["data"])
    assert all(p["fraud_score"] is not None or p["status"] == "pending" for p in listed["data"])

"""`payflow demo`, the main job, runs the whole stack and decides payments, then stops every
process it started."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest

from tests.harness import IsolatedEnvironment, free_port

pytestmark = pytest.mark.integration


def test_the_demo_decides_payments_and_stops_its_children_cleanly(
    environment: IsolatedEnvironment,
) -> None:
    api_port, dashboard_port = free_port(), free_port()
    env = {
        **environment.env,
        "PAYFLOW_API_PORT": str(api_port),
        "PAYFLOW_DASHBOARD_PORT": str(dashboard_port),
        "PAYFLOW_WORKER_WEB_PORT": str(free_port()),
    }
    result = subprocess.run(
        [sys.executable, "-m", "payflow", "demo", "--rate", "5", "--duration", "12"],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(r"API key:\s+sk_test_\w{44}", output), output[-2000:]
    final = output.strip().splitlines()[-2]
    decided = sum(int(n) for n in re.findall(r"(?:captured|failed)=(\d+)", output[-600:]))
    assert decided >= 20, final
    # It waited for a first payment to be decided before the trickle: none was shed.
    assert "waiting for the stream worker to decide a first payment" in output
    assert "http 503" not in final, final
    assert "stopped" in output
    # Nothing it started is left listening.
    for port in (api_port, dashboard_port):
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)

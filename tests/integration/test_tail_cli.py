"""``payflow tail`` against the real stack, run as the command a person types: it prints the
session's events (as JSON lines or readably), filters by merchant and type, stops after
``--limit`` messages, and exits cleanly on Ctrl-C."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from ingest.topics import PAYMENT_EVENTS
from tests.harness import RunningStack
from tests.integration.test_public_topics import Merchant, wait_for_events

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def merchant(stack: RunningStack) -> Iterator[Merchant]:
    created = stack.environment.create_merchant("Tail Merchant")
    with httpx.Client(base_url=stack.base_url, timeout=15,
                      headers={"Authorization": f"Bearer {created.api_key}"}) as client:
        yield Merchant(client, created.api_key)


@pytest.fixture(scope="module")
def captured_payment(stack: RunningStack, merchant: Merchant) -> dict[str, object]:
    payment = merchant.pay(amount=4_321)
    wait_for_events(stack.environment.settings,
                    {str(payment["id"]): ["payment.authorized.v1", "payment.captured.v1"]})
    return payment


def tail(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "payflow", "tail", PAYMENT_EVENTS.name, *args],
        env=stack.environment.env, capture_output=True, text=True, timeout=60, check=False)


def test_tail_prints_a_merchants_events_as_json_lines_and_stops_at_the_limit(
    stack: RunningStack, merchant: Merchant, captured_payment: dict[str, object],
) -> None:
    merchant_id = str(captured_payment["merchant_id"])
    result = tail(stack, "--from-beginning", "--merchant", merchant_id, "--limit", "2", "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["type"] for e in events] == ["payment.authorized.v1", "payment.captured.v1"]
    assert {e["merchant_id"] for e in events} == {merchant_id}
    assert events[1]["data"]["captured_amount"] == 4_321


def test_tail_prints_one_readable_line_per_event_filtered_by_type(
    stack: RunningStack, captured_payment: dict[str, object],
) -> None:
    result = tail(stack, "--from-beginning", "--merchant", str(captured_payment["merchant_id"]),
                  "--type", "payment.captured", "--limit", "1")
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    fields = line.split()
    assert fields[1:4] == ["payment.captured.v1", captured_payment["merchant_id"],
                           captured_payment["id"]]
    assert "captured 43.21 USD" in line


def test_tail_exits_cleanly_on_ctrl_c(stack: RunningStack,
                                      captured_payment: dict[str, object]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "payflow", "tail", PAYMENT_EVENTS.name, "--from-beginning",
         "--merchant", str(captured_payment["merchant_id"])],
        env=stack.environment.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _first_line(process, timeout_seconds=30), "tail printed nothing"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def _first_line(process: subprocess.Popen[str], timeout_seconds: float) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline and process.poll() is None:
        if selector.select(timeout=0.5):
            return process.stdout.readline()
    return ""

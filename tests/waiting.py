"""Waiting, bounded, for a condition a test cannot be told about."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_for(condition: Callable[[], bool], timeout_seconds: float, what: str,
             every_seconds: float = 0.3) -> None:
    """Poll ``condition`` until it holds; fail the test naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every_seconds)
    pytest.fail(f"no {what} within {timeout_seconds:.0f} s", pytrace=False)

"""The API listens for a payment's reply from before it sends the request: a reply that comes
back before the send's acknowledgement has reached the API is kept, not lost."""

from __future__ import annotations

import time
from typing import Any

from api.replies import MAX_WAITERS, ReplyWaiter
from ingest.contracts import CommandOutcome


def waiter() -> ReplyWaiter:
    return ReplyWaiter(redis=None)  # type: ignore[arg-type]  # no Redis: replies delivered by hand


def reply(correlation_id: str) -> bytes:
    outcome = CommandOutcome(correlation_id=correlation_id, error_code="invalid_state")
    return outcome.model_dump_json().encode()


async def test_a_reply_that_comes_before_the_wait_is_kept() -> None:
    replies = waiter()
    with replies.expecting("pay_1") as expected:
        replies._deliver(reply("pay_1"))  # the pipeline answered before the send returned
        outcome = await expected.wait_until(time.monotonic() + 0.01)
    assert outcome is not None and outcome.correlation_id == "pay_1"
    assert replies._waiters == {}


async def test_another_payments_reply_or_none_in_time_is_no_outcome() -> None:
    replies = waiter()
    with replies.expecting("pay_1") as expected:
        replies._deliver(reply("pay_2"))
        assert await expected.wait_until(time.monotonic() + 0.01) is None
    assert replies._waiters == {}


async def test_past_the_limit_of_waiters_the_caller_reads_the_database() -> None:
    replies = waiter()
    full: dict[str, Any] = {f"pay_{n}": None for n in range(MAX_WAITERS)}
    replies._waiters = full
    with replies.expecting("pay_late") as expected:
        assert expected.future is None
        assert await expected.wait_until(time.monotonic() + 1.0) is None
    assert "pay_late" not in replies._waiters

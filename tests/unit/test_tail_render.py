"""What ``payflow tail`` prints for a message: one readable line, or the message as one JSON
line, and nothing for messages its filters leave out."""

from __future__ import annotations

import json
from datetime import datetime

from typer.testing import CliRunner

from payflow.cli.app import app
from payflow.cli.tail import Filters, readable, render
from tests.unit.test_contracts_files import example


def raw(type_name: str) -> bytes:
    return example(type_name).encode()


def test_a_payment_event_reads_as_time_type_merchant_subject_and_amounts() -> None:
    event = example("payment.captured.v1")
    line = render(event.encode(), Filters(), as_json=False)
    assert line is not None
    fields = line.split()
    assert datetime.fromisoformat(fields[0]) == event.time.replace(
        microsecond=event.time.microsecond // 1000 * 1000)
    assert fields[1:4] == ["payment.captured.v1", "mer_1", "pay_1"]
    assert line.endswith("captured 100.00 USD captured 100.00 USD")


def test_each_kind_of_event_has_a_summary() -> None:
    assert "refund re_1 5.00 USD reason=requested_by_customer" in readable(
        json.loads(raw("refund.created.v1")))
    assert "dispute dp_1 5.00 USD reason=fraudulent" in readable(
        json.loads(raw("dispute.created.v1")))
    assert "payout po_1 96.80 USD paid (settlement 2025-03-01)" in readable(
        json.loads(raw("payout.paid.v1")))
    assert "approve score=12 risk=low model=m1" in readable(json.loads(raw("payment.decided.v1")))


def test_json_lines_are_the_message_itself_on_one_line() -> None:
    message = raw("payment.captured.v1")
    line = render(message, Filters(), as_json=True)
    assert line is not None and "\n" not in line
    assert json.loads(line) == json.loads(message)


def test_filters_match_merchant_and_type_with_or_without_version() -> None:
    message = raw("payment.captured.v1")
    assert render(message, Filters(merchant="mer_1"), as_json=True) is not None
    assert render(message, Filters(merchant="mer_2"), as_json=True) is None
    assert render(message, Filters(event_type="payment.captured"), as_json=True) is not None
    assert render(message, Filters(event_type="payment.captured.v1"), as_json=True) is not None
    assert render(message, Filters(event_type="payment.captured.v2"), as_json=True) is None
    assert render(message, Filters(event_type="payment"), as_json=True) is None


def test_a_message_that_is_not_json_is_shown_not_fatal() -> None:
    line = render(b"\x00not json", Filters(), as_json=False)
    assert line is not None and "undecodable" in line
    assert render(b"\x00not json", Filters(merchant="mer_1"), as_json=False) is None


def test_tail_refuses_a_topic_that_is_not_in_the_catalog() -> None:
    result = CliRunner().invoke(app, ["tail", "no.such.topic"])
    assert result.exit_code == 2
    assert "payments.events" in result.output

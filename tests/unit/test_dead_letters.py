"""A dead letter keeps the message as it was read and says why, where and who gave up on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ingest.topics import DEAD_LETTER_HEADERS, MAX_REASON_CHARS, dead_letter


@dataclass(frozen=True)
class Read:
    topic: str = "t1.payments.decisions"
    partition: int = 3
    offset: int = 1234
    key: bytes | None = b"pay_1"
    value: bytes | None = b"\xff not json"


def test_a_dead_letter_carries_the_original_message_and_every_header() -> None:
    now = datetime(2026, 11, 26, 14, 0, 1, 500_000, tzinfo=UTC)
    letter = dead_letter("t1.", Read(), "UndecodableMessage: not JSON", "payflow-ledger", now=now)
    assert letter.topic == "t1.payflow.deadletter"
    assert (letter.key, letter.value) == (b"pay_1", b"\xff not json")
    assert letter.headers == [
        ("reason", b"UndecodableMessage: not JSON"),
        ("topic", b"t1.payments.decisions"),
        ("partition", b"3"),
        ("offset", b"1234"),
        ("consumer", b"payflow-ledger"),
        ("time", b"2026-11-26T14:00:01.500+00:00"),
    ]
    assert [name for name, _ in letter.headers] == list(DEAD_LETTER_HEADERS)


def test_one_failed_item_replaces_the_value_and_an_empty_message_becomes_empty_bytes() -> None:
    assert dead_letter("", Read(), "bad item", "payflow-streams", value=b"[1]").value == b"[1]"
    assert dead_letter("", Read(value=None), "tombstone", "payflow-streams").value == b""


def test_a_long_reason_is_cut_to_the_limit() -> None:
    letter = dead_letter("", Read(), "x" * (MAX_REASON_CHARS + 50), "payflow-webhooks")
    assert dict(letter.headers)["reason"] == b"x" * MAX_REASON_CHARS

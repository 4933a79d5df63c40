"""A stage batch that raises on one event sends that event to the dead letters and the rest on,
without keeping any table record the failed attempt wrote."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from streams.stages import (
    BatchRecords,
    BatchState,
    Flushed,
    Outgoing,
    StageTopics,
    isolating,
    source_message,
)

TOPICS = StageTopics.for_prefix("t1.")


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Event:
    message: Message

    @property
    def value(self) -> bytes | None:
        return self.message.value


@dataclass
class CountingStage:
    """Counts each event's key in ``records`` (as a stage updates its entity), and raises on
    the events in ``bad``: a bug that one message triggers."""

    records: Records
    bad: set[int]
    runs: list[list[int]] = field(default_factory=list)

    def __call__(self, events: Sequence[Any]) -> tuple[list[Outgoing], Flushed]:
        self.runs.append([source_message(e).offset for e in events])
        out: list[Outgoing] = []
        for event in events:
            message = source_message(event)
            key = message.key.decode()
            seen = self.records.get_cached(key)
            self.records.records[key] = (0, [seen + 1])
            if message.offset in self.bad:
                raise KeyError("features")
            out.append(("t1.next", None, message.key, message.value or b"", None))
        writes = [(0, key.encode(), str(record[0]).encode())
                  for key, (_, record) in self.records.records.items()]
        self.records.records.clear()
        return out, [(self.records, writes)]


class Records(BatchRecords):
    def __init__(self) -> None:  # no Faust table: only the batch's unflushed records
        self.records = {}

    def get_cached(self, key: str) -> int:
        return int(self.records[key][1][0]) if key in self.records else 0


class State(BatchState):
    def __init__(self, records: Records) -> None:  # one table, no Faust
        self.records = {"cards": records}


def events(*offsets: int) -> list[Event]:
    return [Event(Message("t1.risk.cards", 2, o, b"card_1", f"bundle {o}".encode()))
            for o in offsets]


def aiokafka_records(*offsets: int) -> list[ConsumerRecord[bytes, bytes]]:
    """The same messages as the route reads them: aiokafka records, each its own message."""
    return [ConsumerRecord("t1.risk.cards", 2, o, 0, 0, b"card_1", f"bundle {o}".encode(), None,
                           6, 8, ()) for o in offsets]


def test_a_good_batch_runs_once() -> None:
    records = Records()
    stage = CountingStage(records, bad=set())
    out, flushed = isolating(events(1, 2, 3), stage, State(records), TOPICS)
    assert stage.runs == [[1, 2, 3]]
    assert [message[0] for message in out] == ["t1.next"] * 3
    assert flushed == [(records, [(0, b"card_1", b"3")])]


@pytest.mark.parametrize("batch", [events, aiokafka_records], ids=["faust", "aiokafka"])
def test_the_event_that_raises_is_dead_lettered_and_the_others_go_on_counted_once(
    batch: Callable[..., Sequence[Any]],
) -> None:
    records = Records()
    stage = CountingStage(records, bad={2})
    out, flushed = isolating(batch(1, 2, 3), stage, State(records), TOPICS)
    assert stage.runs == [[1, 2, 3], [1], [2], [3]]
    assert [(m[0], m[3]) for m in out] == [("t1.next", b"bundle 1"),
                                           ("t1.payflow.deadletter", b"bundle 2"),
                                           ("t1.next", b"bundle 3")]
    headers = out[1][4]
    assert headers is not None
    assert headers["reason"] == b"KeyError: 'features'" and headers["offset"] == b"2"
    assert headers["consumer"] == b"payflow-streams"
    # the failed whole-batch attempt's counts are forgotten: each good event counted once
    assert flushed == [(records, [(0, b"card_1", b"1")]), (records, [(0, b"card_1", b"1")])]
    assert records.records == {}


"""A consumer waits out a dependency that is away and dead-letters only a message that is bad."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import psycopg
import pytest
from aiokafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)
from psycopg import errors as pg
from psycopg_pool import PoolTimeout
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ingest.contracts import UndecodableMessage
from payflow.failures import (
    Failure,
    Outage,
    apply_or_dead_letter,
    backoff_seconds,
    classify,
)

TRANSIENT = [
    psycopg.OperationalError("connection failed: Connection refused"),
    psycopg.InterfaceError("the connection is closed"),
    PoolTimeout("couldn't get a connection after 30.00 sec"),
    pg.AdminShutdown("terminating connection due to administrator command"),
    pg.ObjectNotInPrerequisiteState('database "t1" is not currently accepting connections'),
    pg.CannotConnectNow("the database system is starting up"),
    pg.SerializationFailure("could not serialize access"),
    pg.DeadlockDetected("deadlock detected"),
    pg.TooManyConnections("sorry, too many clients already"),
    KafkaConnectionError("Unable to bootstrap from 127.0.0.1:9092"),
    KafkaTimeoutError(),
    NotLeaderForPartitionError(),
    RequestTimedOutError(),
    CommitFailedError("the group rebalanced"),
    RedisConnectionError("Error 111 connecting to 127.0.0.1:6379"),
    RedisTimeoutError("Timeout reading from socket"),
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError(),
]
PERMANENT = [
    UndecodableMessage("not JSON"),
    ValueError("a label on a payment stage"),
    KeyError("features"),
    AssertionError("balances do not sum to zero"),
    pg.UniqueViolation("duplicate key value"),
    pg.CheckViolation("new row violates check constraint"),
    pg.InvalidTextRepresentation("invalid input syntax"),
    pg.ProgramLimitExceeded("index row size exceeds maximum"),
    MessageSizeTooLargeError(),
    ResponseError("WRONGTYPE"),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_a_dependency_that_is_away_is_transient(error: BaseException) -> None:
    assert classify(error) is Failure.TRANSIENT


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__name__)
def test_a_message_that_cannot_be_processed_is_permanent(error: BaseException) -> None:
    assert classify(error) is Failure.PERMANENT


def test_an_error_raised_from_a_lost_connection_is_transient() -> None:
    try:
        try:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        except psycopg.OperationalError as lost:
            raise RuntimeError("batch failed") from lost
    except RuntimeError as error:
        assert classify(error) is Failure.TRANSIENT


def test_a_group_is_transient_when_any_of_its_errors_is() -> None:
    assert classify(ExceptionGroup("sends", [ValueError(), KafkaConnectionError()])) \
        is Failure.TRANSIENT
    assert classify(ExceptionGroup("sends", [ValueError(), KeyError()])) is Failure.PERMANENT


def test_backoff_doubles_and_is_capped() -> None:
    waits = [backoff_seconds(attempt) for attempt in range(1, 12)]
    assert waits[:4] == [0.1, 0.2, 0.4, 0.8]
    assert max(waits) == 5.0 and waits[-1] == 5.0
    assert backoff_seconds(10_000) == 5.0


class Ledger:
    """A fake batch sink: fails permanently for the items in ``poison``, transiently while
    ``away``; records what it applied."""

    def __init__(self, poison: set[int], away: bool = False) -> None:
        self.poison, self.away = poison, away
        self.applied: list[list[int]] = []
        self.dead: list[tuple[int, str]] = []

    async def apply(self, items: Sequence[int]) -> int:
        if self.away:
            raise psycopg.OperationalError("connection refused")
        if bad := self.poison & set(items):
            raise ValueError(f"cannot apply {sorted(bad)}")
        self.applied.append(list(items))
        return len(items)

    async def dead_letter(self, item: int, reason: str) -> None:
        self.dead.append((item, reason))


def run_batch(sink: Ledger, items: list[int]) -> list[int]:
    return asyncio.run(apply_or_dead_letter(items, sink.apply, sink.dead_letter,
                                            logging.getLogger("test")))


def test_a_good_batch_is_applied_in_one_go() -> None:
    sink = Ledger(poison=set())
    assert run_batch(sink, [1, 2, 3]) == [3]
    assert sink.applied == [[1, 2, 3]] and sink.dead == []


def test_poison_in_a_batch_is_dead_lettered_alone_and_the_rest_applied() -> None:
    sink = Ledger(poison={2})
    assert run_batch(sink, [1, 2, 3]) == [1, 1]
    assert sink.applied == [[1], [3]]
    assert sink.dead == [(2, "ValueError: cannot apply [2]")]


def test_an_outage_dead_letters_nothing_and_reaches_the_caller() -> None:
    sink = Ledger(poison={2}, away=True)
    with pytest.raises(psycopg.OperationalError):
        run_batch(sink, [1, 2, 3])
    assert sink.applied == [] and sink.dead == []


def test_an_outage_is_logged_when_it_starts_and_ends_not_at_every_attempt(
        caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage("test consumer", logging.getLogger("test.outage"), cap_seconds=0.001)
    caplog.set_level(logging.WARNING, logger="test.outage")

    async def attempts() -> None:
        for _ in range(5):
            await outage.wait(psycopg.OperationalError("connection refused"))
        outage.over()
        outage.over()

    asyncio.run(attempts())
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert "unavailable" in messages[0]
    assert "recovered" in messages[1] and "5 retries" in messages[1]
    assert outage.outages == 1 and outage.attempts == 0

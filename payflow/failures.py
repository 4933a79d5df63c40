"""Which failures a consumer waits out and which it dead-letters, and how it waits.

Every payflow consumer meets two kinds of failure, and must never confuse them:

- **transient**: a dependency is away (PostgreSQL refusing or dropping connections, a pool
  timeout, Kafka without a leader or unreachable, Redis down, any socket error). The message is
  fine; the consumer keeps its offsets uncommitted, backs off and retries the same messages
  until the dependency returns. Dead-lettering here would lose good payments.
- **permanent**: the message itself cannot be processed (undecodable, against its schema,
  rejected by a constraint, or a bug that raises for this one message). Retrying changes
  nothing; the message goes to the dead letters with the reason, and the consumer goes on.

``classify`` is the one place that tells them apart. ``apply_or_dead_letter`` applies a batch
and isolates its poison; ``Outage`` paces the retries (bounded exponential backoff, logged once
when an outage starts and once when it ends, not per attempt); ``rewind`` puts a consumer back
at the start of a batch it could not finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from typing import Any, TypeVar

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    RebalanceInProgressError,
)
from psycopg_pool import AsyncConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

T = TypeVar("T")
R = TypeVar("R")

POOL_WAIT_SECONDS = 5.0
"""How long a consumer waits for a PostgreSQL connection before it counts the attempt as failed
and backs off (psycopg_pool's default, 30 s, is longer than most outages)."""
POOL_RECONNECT_SECONDS = 10.0
"""How long the pool retries one lost connection before giving it up; the consumer's next
attempt then starts a new one at once. psycopg_pool's default (5 minutes, its delay doubling
from 1 s) left the ledger reconnecting 41 s after a 35 s outage ended."""

TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "55", "57", "58")
"""SQLSTATE classes of a database that is away or busy, not of a bad message: connection
exception, transaction rollback (serialization failure, deadlock), insufficient resources,
object not in prerequisite state (lock not available), operator intervention (admin shutdown,
cannot connect now, query cancelled), system error."""
TRANSIENT_KAFKA = (KafkaConnectionError, KafkaTimeoutError, CommitFailedError,
                   RebalanceInProgressError)
"""Kafka client errors not marked ``retriable`` by aiokafka that still pass: the broker was
unreachable or slow, or the group rebalanced under a commit (the batch is re-read)."""


class Failure(StrEnum):
    TRANSIENT = "transient"
    """Wait and retry the same messages; commit nothing."""
    PERMANENT = "permanent"
    """Dead-letter the message that raised it and go on."""


def classify(error: BaseException) -> Failure:
    """Transient if ``error`` (or what it was raised from, or any error of a group) says a
    dependency is away; permanent otherwise."""
    if isinstance(error, BaseExceptionGroup):
        inner = [classify(part) for part in error.exceptions]
        return Failure.TRANSIENT if Failure.TRANSIENT in inner else Failure.PERMANENT
    if _transient(error):
        return Failure.TRANSIENT
    if error.__cause__ is not None and error.__cause__ is not error:
        return classify(error.__cause__)
    return Failure.PERMANENT


def is_transient(error: BaseException) -> bool:
    return classify(error) is Failure.TRANSIENT


def _transient(error: BaseException) -> bool:
    if isinstance(error, psycopg.InterfaceError):
        return True  # the client's connection is closed or broken
    if isinstance(error, psycopg.OperationalError):
        sqlstate = error.sqlstate
        return sqlstate is None or sqlstate.startswith(TRANSIENT_SQLSTATE_CLASSES)
    if isinstance(error, KafkaError):
        return isinstance(error, TRANSIENT_KAFKA) or bool(getattr(error, "retriable", False))
    return isinstance(error, RedisConnectionError | RedisTimeoutError | OSError)


def reason(error: BaseException) -> str:
    """The dead letter's reason for ``error``."""
    return f"{type(error).__name__}: {error}"


async def apply_or_dead_letter(
    items: Sequence[T], apply: Callable[[Sequence[T]], Awaitable[R]],
    dead_letter: Callable[[T, str], Awaitable[None]], log: logging.Logger,
) -> list[R]:
    """``apply`` the items as one batch; if that fails permanently, apply them one at a time
    and dead-letter each that fails permanently on its own. The results of what was applied.

    A transient failure, at any point, propagates: the caller retries the batch later (what
    was applied already must be idempotent, as every consumer's effects are)."""
    if not items:
        return []
    try:
        return [await apply(items)]
    except Exception as error:
        if is_transient(error):
            raise
        if len(items) == 1:
            log.error("dead-lettering a message: %s", reason(error)[:300])
            await dead_letter(items[0], reason(error))
            return []
        log.warning("a batch of %d failed (%s); applying its messages one by one",
                    len(items), reason(error)[:300])
    results: list[R] = []
    for item in items:
        try:
            results.append(await apply([item]))
        except Exception as error:
            if is_transient(error):
                raise
            log.error("dead-lettering a message: %s", reason(error)[:300])
            await dead_letter(item, reason(error))
    return results


def backoff_seconds(attempt: int, initial_seconds: float = 0.1, cap_seconds: float = 5.0) -> float:
    """The wait before retry number ``attempt`` (1, 2, ...): doubling from ``initial_seconds``,
    never more than ``cap_seconds``."""
    assert attempt >= 1, attempt
    return min(cap_seconds, initial_seconds * 2.0 ** min(attempt - 1, 32))


class Outage:
    """One consumer's retries while its dependencies are away: backs off exponentially (capped)
    and logs an outage when it starts and when it ends, rather than at every attempt."""

    def __init__(self, consumer: str, log: logging.Logger, cap_seconds: float = 5.0) -> None:
        self.consumer = consumer
        self.log = log
        self.cap_seconds = cap_seconds
        self.attempts = 0
        self.started = 0.0
        self.outages = 0
        """How many outages this consumer has waited out (for tests and metrics)."""

    async def wait(self, error: BaseException) -> None:
        """Note a failed attempt and sleep before the next one."""
        self.note(error)
        await asyncio.sleep(backoff_seconds(self.attempts, cap_seconds=self.cap_seconds))

    def note(self, error: BaseException) -> None:
        """Note a failed attempt (for work retried on its own schedule, a periodic sweep say).
        A permanent error reaching here is a bug outside any one message: it is logged with its
        traceback at every attempt."""
        if not is_transient(error):
            self.log.error("%s: unexpected failure, retrying the batch", self.consumer,
                           exc_info=error)
        elif self.attempts == 0:
            self.log.warning("%s: a dependency is unavailable (%s); retrying with backoff "
                             "until it returns", self.consumer, reason(error)[:300])
        if self.attempts == 0:
            self.started = time.monotonic()
            self.outages += 1
        self.attempts += 1

    @property
    def ongoing(self) -> bool:
        """Whether the consumer is waiting out an outage now (not stuck, for its liveness
        check)."""
        return self.attempts > 0

    def over(self) -> None:
        """Note a successful attempt; log the end of an outage if one was going on."""
        if self.attempts:
            self.log.warning("%s: recovered after %.1f s and %d retries", self.consumer,
                             time.monotonic() - self.started, self.attempts)
            self.attempts = 0


def consumer_pool(database_url: str, max_size: int) -> AsyncConnectionPool[Any]:
    """A consumer's PostgreSQL pool, not yet open (``open_pool`` opens it)."""
    return AsyncConnectionPool(database_url, min_size=1, max_size=max_size, open=False,
                               timeout=POOL_WAIT_SECONDS,
                               reconnect_timeout=POOL_RECONNECT_SECONDS)


async def open_pool(pool: AsyncConnectionPool[Any], outage: Outage) -> None:
    """Open ``pool`` and wait until it hands out a connection: a consumer started while
    PostgreSQL is away waits for it (with backoff, logged once) instead of exiting."""
    await pool.open(wait=False)
    while True:
        try:
            async with pool.connection(timeout=POOL_WAIT_SECONDS):
                pass
        except Exception as error:
            if not is_transient(error):
                raise
            await outage.wait(error)
            continue
        outage.over()
        return


def rewind(consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[Any]]) -> None:
    """Seek each partition of ``batches`` back to its first record, so the next fetch returns
    them again; a partition no longer assigned (a rebalance) is its new owner's to re-read from
    the committed offset."""
    for partition, records in batches.items():
        if records:
            with contextlib.suppress(IllegalStateError):
                consumer.seek(partition, records[0].offset)

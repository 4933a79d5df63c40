"""``streams.side_consumers.consume`` with batches in flight, on the real broker: the next
batch is handled while Kafka acknowledges the previous one, no offset is committed before its
batch's acknowledgement returns, and a batch whose acknowledgement fails is read again, with the
batch handled after it, so that nothing is skipped."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError

from payflow.settings import Settings
from payflow.tasks import running
from streams.side_consumers import Acknowledgement, DeadLetterer, Record, consume
from tests.harness import IsolatedEnvironment

pytestmark = pytest.mark.integration

MESSAGES = 30
BATCH = 10
WAIT_SECONDS = 30.0


@contextlib.asynccontextmanager
async def filled_topic(settings: Settings) -> AsyncIterator[str]:
    """A one-partition topic of its own holding ``MESSAGES`` values b"0", b"1", ..."""
    topic = f"{settings.topic_prefix}test.in-flight.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        await producer.start()
        try:
            for index in range(MESSAGES):
                await producer.send(topic, str(index).encode(), key=b"k")
            await producer.flush()
        finally:
            await producer.stop()
        yield topic
    finally:
        await admin.delete_topics([topic])
        await admin.close()


async def committed(settings: Settings, group: str, topic: str) -> int:
    """The group's committed offset of the topic's partition (-1 when none)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(f"{settings.topic_prefix}{group}")
    finally:
        await admin.close()
    found = offsets.get(TopicPartition(topic, 0))
    return -1 if found is None else found.offset


async def until(condition: Callable[[], Coroutine[Any, Any, bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not await condition():
        assert time.monotonic() < deadline, f"not within {WAIT_SECONDS} s: {what}"
        await asyncio.sleep(0.1)


async def no_dead_letters(record: Record, reason: str) -> None:
    raise AssertionError(f"dead-lettered {record.value!r}: {reason}")


@contextlib.asynccontextmanager
async def consuming(settings: Settings, topic: str, group: str,
                    handle: Callable[[list[Record]], Coroutine[Any, Any, Acknowledgement]],
                    dead_letter: DeadLetterer = no_dead_letters) -> AsyncIterator[None]:
    """``consume`` running as a task until the block ends."""
    async with running(consume(settings, topic, group, handle, dead_letter, max_records=BATCH)):
        yield


async def until_all_committed(settings: Settings, group: str, topic: str) -> None:
    async def all_committed() -> bool:
        return await committed(settings, group, topic) == MESSAGES

    await until(all_committed, f"offset {MESSAGES} committed")


def test_the_next_batch_is_handled_before_the_previous_is_acknowledged_and_committed(
    environment: IsolatedEnvironment,
) -> None:
    settings, group = environment.settings, f"test-in-flight-{uuid.uuid4().hex[:8]}"
    handled: list[list[bytes]] = []
    release = asyncio.Event()

    async def handle(records: list[Record]) -> Acknowledgement:
        handled.append([record.value or b"" for record in records])
        first = len(handled) == 1

        async def acknowledged() -> None:
            if first:
                await release.wait()

        return acknowledged

    async def scenario() -> None:
        async def second_batch_handled() -> bool:
            return len(handled) >= 2

        async with filled_topic(settings) as topic, consuming(settings, topic, group, handle):
            await until(second_batch_handled, "a second batch handled")
            await asyncio.sleep(1.5)  # three commit intervals
            assert await committed(settings, group, topic) == -1, \
                "an offset was committed before the first batch was acknowledged"
            release.set()
            await until_all_committed(settings, group, topic)

    asyncio.run(scenario())
    values = [value for batch in handled for value in batch]
    assert values == [str(index).encode() for index in range(MESSAGES)]
    assert all(len(batch) <= BATCH for batch in handled)


def test_a_batch_whose_acknowledgement_fails_is_read_again_and_never_committed(
    environment: IsolatedEnvironment,
) -> None:
    """The second batch's acknowledgement fails every time (Kafka refusing it): the consumer
    reads it again and again, with whatever it handled after it, and commits only the first
    batch. A consumer of the same group started afterwards (the worker restarted) goes on
    from the failed batch's first message."""
    settings, group = environment.settings, f"test-in-flight-{uuid.uuid4().hex[:8]}"
    handled: list[list[bytes]] = []
    refused: list[bytes] = []

    async def refusing(records: list[Record]) -> Acknowledgement:
        handled.append([record.value or b"" for record in records])
        if len(handled) == 2:
            refused.append(handled[1][0])
        fails = refused[0] in handled[-1] if refused else False

        async def acknowledged() -> None:
            if fails:
                raise KafkaConnectionError("the broker refused the batch (simulated)")

        return acknowledged

    after: list[list[bytes]] = []

    async def accepting(records: list[Record]) -> Acknowledgement:
        after.append([record.value or b"" for record in records])

        async def acknowledged() -> None:
            return None

        return acknowledged

    async def scenario() -> None:
        async with filled_topic(settings) as topic:
            async with consuming(settings, topic, group, refusing):
                async def read_again_twice() -> bool:
                    return sum(batch[:1] == refused[:1] for batch in handled) >= 3

                await until(read_again_twice, "the refused batch read twice more")
            assert await committed(settings, group, topic) == len(handled[0])
            async with consuming(settings, topic, group, accepting):
                await until_all_committed(settings, group, topic)

    asyncio.run(scenario())
    first, failed = handled[0], handled[1]
    assert failed[0] == str(len(first)).encode()
    values = [value for batch in after for value in batch]
    assert values == [str(index).encode() for index in range(len(first), MESSAGES)]


def test_a_message_kafka_refuses_for_good_is_dead_lettered_and_the_rest_goes_on(
    environment: IsolatedEnvironment,
) -> None:
    """An acknowledgement that fails for a reason other than an outage (the broker rejecting
    one message, say) is not retried forever: the batches are read again, each waiting for
    its acknowledgement, and the message at fault goes to the dead letters alone."""
    settings, group = environment.settings, f"test-in-flight-{uuid.uuid4().hex[:8]}"
    poison = b"13"
    handled: list[bytes] = []
    letters: list[tuple[bytes, str]] = []

    async def handle(records: list[Record]) -> Acknowledgement:
        values = [record.value or b"" for record in records]
        handled.extend(values)

        async def acknowledged() -> None:
            if poison in values:
                raise ValueError("the broker rejected a message (simulated)")

        return acknowledged

    async def dead_letter(record: Record, reason: str) -> None:
        letters.append((record.value or b"", reason))

    async def scenario() -> None:
        async with (filled_topic(settings) as topic,
                    consuming(settings, topic, group, handle, dead_letter)):
            await until_all_committed(settings, group, topic)

    asyncio.run(scenario())
    assert letters == [(poison, "ValueError: the broker rejected a message (simulated)")]
    assert set(handled) == {str(index).encode() for index in range(MESSAGES)}

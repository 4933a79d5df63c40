"""Where an API instance waits for the outcome of the payments it accepted.

Each instance subscribes to its own Redis channel (``payflow:replies:<instance id>``) and puts
that channel in every request it produces; the ledger publishes the committed transaction there.
Measured on this kind of machine, a Redis reply beat a Kafka reply topic by 5x at p99.
Pub/sub delivers only to listeners present at that moment, so a missed reply is not an error:
the caller reads the outcome from PostgreSQL when its wait ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ingest.contracts import CommandOutcome

log = logging.getLogger(__name__)
MAX_WAITERS = 10_000


@dataclass(frozen=True)
class Expected:
    """An outcome being listened for (``ReplyWaiter.expecting``)."""

    future: asyncio.Future[CommandOutcome] | None
    """None when too many are waiting already: the caller reads the database instead."""

    async def wait_until(self, deadline: float) -> CommandOutcome | None:
        """The outcome if it has come or comes before ``deadline`` (``time.monotonic()``),
        else None."""
        if self.future is None:
            return None
        try:
            return await asyncio.wait_for(self.future, max(deadline - time.monotonic(), 0.0))
        except TimeoutError:
            return None


class ReplyWaiter:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.channel = f"payflow:replies:{uuid.uuid4().hex}"
        self._waiters: dict[str, asyncio.Future[CommandOutcome]] = {}
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="reply-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout=5)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def listening(self) -> bool:
        return self._subscribed.is_set()

    @contextlib.contextmanager
    def expecting(self, correlation_id: str) -> Iterator[Expected]:
        """Listen for ``correlation_id``'s outcome from now until the block ends. Enter it
        before sending the request: the whole pipeline can answer before the producer's
        acknowledgement reaches the API under load (it did in the overload test, and those
        requests waited their whole budget for a reply already gone)."""
        future: asyncio.Future[CommandOutcome] | None = None
        if len(self._waiters) < MAX_WAITERS:
            future = asyncio.get_running_loop().create_future()
            self._waiters[correlation_id] = future
        try:
            yield Expected(future)
        finally:
            if future is not None and self._waiters.get(correlation_id) is future:
                del self._waiters[correlation_id]

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._subscribed.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._deliver(message["data"])
            except (OSError, RedisError) as error:
                self._subscribed.clear()
                log.warning("reply channel lost (%s); resubscribing in 1 s", error)
                await asyncio.sleep(1)

    def _deliver(self, data: bytes) -> None:
        try:
            outcome = CommandOutcome.model_validate_json(data)
        except ValueError:
            log.warning("ignoring an undecodable reply")
            return
        future = self._waiters.get(outcome.correlation_id)
        if future is not None and not future.done():
            future.set_result(outcome)

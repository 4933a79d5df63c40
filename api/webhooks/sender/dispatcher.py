"""Runs due deliveries: claims them from PostgreSQL and attempts each in its own task.

Bounded concurrency: at most ``max_in_flight`` attempts per process, ``per_merchant`` per
merchant and ``per_endpoint`` per endpoint. A claim asks only for endpoints and merchants with
free slots, so an endpoint that hangs holds at most ``per_endpoint`` slots (a merchant whose
every endpoint hangs, ``per_merchant``) for at most the timeout, and every other merchant's
deliveries keep flowing (no head-of-line blocking). Every attempt is logged (table
``webhook_attempts`` and one log line) with the event, endpoint, attempt number, status,
latency and next retry time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections import Counter
from typing import Any

import httpx
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.vault import Vault
from api.webhooks.schedule import DisablePolicy, RetrySchedule
from api.webhooks.sender import store
from api.webhooks.sender.attempt import AttemptResult, send
from api.webhooks.signing_secrets import open_secret
from payflow.failures import Outage
from payflow.settings import Settings

log = logging.getLogger(__name__)
LEASE_MARGIN_SECONDS = 30.0
"""A claim's lease outlasts the attempt's timeout by this much before another sender may retry."""


class Dispatcher:
    def __init__(
        self, settings: Settings, pool: AsyncConnectionPool[AsyncConnection[Any]],
        vault: Vault, client: httpx.AsyncClient,
    ) -> None:
        self.pool = pool
        self.vault = vault
        self.client = client
        self.schedule = RetrySchedule.from_settings(settings)
        self.disable_policy = DisablePolicy.from_settings(settings)
        self.timeout_seconds = settings.webhooks_timeout_seconds
        self.poll_seconds = settings.webhooks_poll_seconds
        self.max_in_flight = settings.webhooks_max_in_flight
        self.per_endpoint = settings.webhooks_max_in_flight_per_endpoint
        self.per_merchant = settings.webhooks_max_in_flight_per_merchant
        self.by_endpoint: Counter[str] = Counter()
        """Running attempts per endpoint id."""
        self.by_merchant: Counter[str] = Counter()
        """Running attempts per merchant id."""
        self.tasks: set[asyncio.Task[None]] = set()
        self.wake = asyncio.Event()
        self.outage = Outage("webhook dispatcher", log)

    async def run(self, stopping: asyncio.Event) -> None:
        """Dispatch until ``stopping``; then let running attempts finish within the timeout."""
        while not stopping.is_set():
            self.wake.clear()
            try:
                await self.dispatch_due()
            except Exception as error:
                self.outage.note(error)  # retried at the next poll
            else:
                self.outage.over()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._woken(stopping)
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=self.timeout_seconds + 1)
            for task in pending:
                task.cancel()

    async def _woken(self, stopping: asyncio.Event) -> None:
        wake = asyncio.ensure_future(self.wake.wait())
        stop = asyncio.ensure_future(stopping.wait())
        try:
            await asyncio.wait({wake, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
            stop.cancel()

    async def dispatch_due(self) -> int:
        """Claim what may run now and start an attempt for each; how many started."""
        free = self.max_in_flight - len(self.tasks)
        if free <= 0:
            return 0
        async with self.pool.connection() as conn:
            claimed = await store.claim_due(
                conn, busy=dict(self.by_endpoint), busy_merchants=dict(self.by_merchant),
                per_endpoint=self.per_endpoint, per_merchant=self.per_merchant, limit=free,
                lease_seconds=self.timeout_seconds + LEASE_MARGIN_SECONDS,
            )
        for delivery in claimed:
            self.by_endpoint[delivery.endpoint_id] += 1
            self.by_merchant[delivery.merchant_id] += 1
            task = asyncio.create_task(self.attempt(delivery))
            self.tasks.add(task)
            task.add_done_callback(functools.partial(self._finished, delivery=delivery))
        return len(claimed)

    def _finished(self, task: asyncio.Task[None], *, delivery: store.ClaimedDelivery) -> None:
        self.tasks.discard(task)
        for counter, key in ((self.by_endpoint, delivery.endpoint_id),
                             (self.by_merchant, delivery.merchant_id)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]
        self.wake.set()

    async def attempt(self, delivery: store.ClaimedDelivery) -> None:
        """Send once and record the outcome; errors are logged, the lease makes it retry."""
        try:
            secrets = [open_secret(self.vault, delivery.endpoint_id, sealed)
                       for sealed in delivery.secret_ciphertexts]
            result = await send(self.client, delivery.url, delivery.id, delivery.payload,
                                secrets, self.timeout_seconds)
            await self.record(delivery, result)
        except Exception:
            log.exception("webhook delivery %s attempt %d could not be completed",
                          delivery.id, delivery.attempt)

    async def record(self, delivery: store.ClaimedDelivery, result: AttemptResult) -> None:
        retry_in = self.schedule.delay_after(delivery.attempt, random.random())
        async with self.pool.connection() as conn, conn.transaction():
            next_at = await store.record_attempt(conn, delivery, result, retry_in)
            failing_since, failures, now = await store.record_health(
                conn, delivery.endpoint_id, result.success
            )
            disabled = (
                not result.success
                and self.disable_policy.should_disable(failing_since, failures, now)
                and await store.disable_failing(conn, delivery.endpoint_id, failing_since,
                                                failures)
            )
        log.info(
            "webhook attempt event=%s endpoint=%s delivery=%s attempt=%d status=%s "
            "latency_ms=%d error=%s next_attempt_at=%s",
            delivery.event_id, delivery.endpoint_id, delivery.id, delivery.attempt,
            result.status_code, result.latency_ms, result.error,
            next_at.isoformat() if next_at else None,
        )
        if disabled:
            log.warning("webhook endpoint %s disabled: every attempt failed since %s "
                        "(%d in a row)", delivery.endpoint_id, failing_since, failures)

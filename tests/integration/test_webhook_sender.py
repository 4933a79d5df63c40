"""The webhook sender's parts, in this process, on a real PostgreSQL database of their own and a
real HTTP receiver: SSRF refusal in production mode, leases, fair claims, auto-disable.

Each test gets a database of its own (created and migrated here): the stack's sender cannot
claim these deliveries, and no test sees another's, so each controls exactly what runs.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.ids import new_id
from api.vault import Vault
from api.webhooks import repository
from api.webhooks.events import PlannedDelivery, event_body
from api.webhooks.guard import guarded_client, vet_url
from api.webhooks.sender import store
from api.webhooks.sender.dispatcher import Dispatcher
from api.webhooks.signing_secrets import new_secret, seal_secret
from api.webhooks.urls import UrlPolicy, UrlRefused
from payflow.db.databases import drop_database
from payflow.db.migrate import migrate
from payflow.merchants import create_or_add_key
from payflow.settings import Settings
from tests.harness import IsolatedEnvironment
from tests.webhooks_support.events import captured
from tests.webhooks_support.receiver import Receiver

pytestmark = pytest.mark.integration

PRODUCTION = UrlPolicy(require_https=True, allow_private=False)
VAULT_KEY = base64.b64encode(bytes(range(32))).decode()
Pool = AsyncConnectionPool[AsyncConnection[Any]]


@pytest.fixture
def database_url(environment: IsolatedEnvironment) -> Iterator[str]:
    name = f"payflow_webhooks_{uuid.uuid4().hex[:8]}"
    admin = environment.admin_database_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate(url)
        yield url
    finally:
        drop_database(admin, name)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    async with AsyncConnectionPool(database_url, min_size=1, max_size=4, open=False) as opened:
        yield opened


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    try:
        yield running
    finally:
        running.close()


async def endpoint_with_delivery(
    pool: Pool, database_url: str, url: str, deliveries: int = 1
) -> tuple[str, list[str]]:
    """A new merchant with one endpoint at ``url`` and ``deliveries`` due deliveries to it."""
    merchant = await create_or_add_key(database_url, "Sender Merchant",
                                       f"sender-{uuid.uuid4().hex[:8]}@example.test")
    endpoint_id = new_id("we")
    vault = Vault(VAULT_KEY)
    async with pool.connection() as conn:
        await repository.insert_endpoint(conn, merchant.merchant_id, repository.NewEndpoint(
            endpoint_id, url, ["*"], None, False, False,
            seal_secret(vault, endpoint_id, new_secret())))
        events = [captured(merchant.merchant_id, f"pay_{n}") for n in range(deliveries)]
        await store.record_deliveries(conn, [
            PlannedDelivery(endpoint_id, merchant.merchant_id, e.id, e.event_name, e.time,
                            event_body(e)) for e in events])
    return endpoint_id, [e.id for e in events]


def settings_for(database_url: str, **changes: Any) -> Settings:
    return Settings(database_url=database_url, vault_key=VAULT_KEY, **changes)


async def test_a_private_address_is_refused_in_production_when_saved(receiver: Receiver) -> None:
    for url in (f"https://127.0.0.1:{receiver.port}/x", f"https://localhost:{receiver.port}/x",
                "https://[::1]/x", f"http://example.com:{receiver.port}/x"):
        with pytest.raises(UrlRefused):
            await vet_url(url, PRODUCTION)
    with pytest.raises(UrlRefused, match="resolved"):
        await vet_url("https://no-such-host.invalid/x", PRODUCTION)


async def test_delivery_in_production_mode_refuses_a_name_that_now_resolves_privately(
    pool: Pool, database_url: str, receiver: Receiver
) -> None:
    # As after DNS rebinding: the saved name now resolves to a loopback address.
    url = f"https://localhost:{receiver.port}/rebound"
    endpoint_id, _ = await endpoint_with_delivery(pool, database_url, url)
    settings = settings_for(database_url, environment="production")
    async with guarded_client(UrlPolicy.from_settings(settings)) as client:
        dispatcher = Dispatcher(settings, pool, Vault(VAULT_KEY), client)
        assert await dispatcher.dispatch_due() >= 1
        await asyncio.gather(*dispatcher.tasks)
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT status_code, error FROM webhook_attempts WHERE endpoint_id = %s",
            (endpoint_id,))
        attempts = await cursor.fetchall()
    assert attempts and attempts[0][0] is None
    assert attempts[0][1].startswith("blocked:") and "loopback" in attempts[0][1]
    assert receiver.received("/rebound") == []


async def test_a_claim_is_a_lease_that_a_dead_sender_gives_back_when_it_ends(
    pool: Pool, database_url: str
) -> None:
    endpoint_id, _ = await endpoint_with_delivery(pool, database_url, "http://127.0.0.1:9/x")
    async def claim(lease_seconds: float) -> list[store.ClaimedDelivery]:
        async with pool.connection() as conn:  # one transaction each: now() moves on
            return await store.claim_due(conn, busy={}, busy_merchants={}, per_endpoint=4,
                                         per_merchant=16, limit=100,
                                         lease_seconds=lease_seconds)

    first = await claim(0.3)
    again = await claim(0.3)
    await asyncio.sleep(0.4)
    after_lease = await claim(30)
    mine = [c for c in first if c.endpoint_id == endpoint_id]
    assert [c.attempt for c in mine] == [1]
    assert not [c for c in again if c.endpoint_id == endpoint_id]
    assert [(c.id, c.attempt) for c in after_lease if c.endpoint_id == endpoint_id] == [
        (mine[0].id, 2)]


async def test_claims_take_a_few_per_endpoint_so_a_backlog_hides_no_one(
    pool: Pool, database_url: str
) -> None:
    busy_endpoint, _ = await endpoint_with_delivery(pool, database_url, "http://127.0.0.1:9/a",
                                                    deliveries=10)
    quiet_endpoint, _ = await endpoint_with_delivery(pool, database_url, "http://127.0.0.1:9/b")
    async with pool.connection() as conn:
        saturated = await store.claim_due(conn, busy={busy_endpoint: 2}, busy_merchants={},
                                          per_endpoint=2, per_merchant=16, limit=100,
                                          lease_seconds=30)
    async with pool.connection() as conn:
        fresh = await store.claim_due(conn, busy={}, busy_merchants={}, per_endpoint=2,
                                      per_merchant=16, limit=100, lease_seconds=30)
    assert busy_endpoint not in {c.endpoint_id for c in saturated}
    assert quiet_endpoint in {c.endpoint_id for c in saturated}
    assert [c.endpoint_id for c in fresh].count(busy_endpoint) == 2


async def test_claims_take_a_few_per_merchant_whatever_its_number_of_endpoints(
    pool: Pool, database_url: str
) -> None:
    merchant_endpoint, _ = await endpoint_with_delivery(pool, database_url,
                                                        "http://127.0.0.1:9/m", deliveries=6)
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT merchant_id FROM webhook_endpoints WHERE id = %s",
                                    (merchant_endpoint,))
        row = await cursor.fetchone()
        assert row is not None
        claimed = await store.claim_due(conn, busy={}, busy_merchants={row[0]: 1},
                                        per_endpoint=10, per_merchant=3, limit=100,
                                        lease_seconds=30)
    assert [c.endpoint_id for c in claimed].count(merchant_endpoint) == 2


async def test_recording_an_event_twice_makes_one_delivery(pool: Pool, database_url: str) -> None:
    endpoint_id, event_ids = await endpoint_with_delivery(pool, database_url,
                                                          "http://127.0.0.1:9/x")
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT merchant_id, event_type, event_created_at, payload FROM webhook_deliveries "
            "WHERE endpoint_id = %s", (endpoint_id,))
        row = await cursor.fetchone()
        assert row is not None
        again = PlannedDelivery(endpoint_id, row[0], event_ids[0], row[1], row[2], bytes(row[3]))
        await store.record_deliveries(conn, [again, again])
        cursor = await conn.execute(
            "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = %s", (endpoint_id,))
        count = await cursor.fetchone()
    assert count == (1,)


async def test_an_endpoint_failing_for_the_set_period_is_disabled_and_shows_why(
    pool: Pool, database_url: str, receiver: Receiver
) -> None:
    receiver.script("/failing", [], default=500)
    endpoint_id, _ = await endpoint_with_delivery(pool, database_url, receiver.url("/failing"))
    settings = settings_for(database_url, webhooks_retry_schedule_seconds=(0.05,) * 10,
                            webhooks_disable_after_seconds=0.3, webhooks_disable_min_failures=3)
    async with guarded_client(UrlPolicy.from_settings(settings)) as client:
        dispatcher = Dispatcher(settings, pool, Vault(VAULT_KEY), client)
        stopping = asyncio.Event()
        running = asyncio.create_task(dispatcher.run(stopping))
        try:
            endpoint = await _wait_disabled(pool, endpoint_id)
        finally:
            stopping.set()
            await running
    assert endpoint["status"] == "disabled" and endpoint["disabled_reason"] == "failing"
    assert endpoint["consecutive_failures"] >= 3 and endpoint["failing_since"] is not None
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT actor, change->>'reason' FROM audit_log WHERE entity_id = %s "
            "AND action = 'webhook_endpoint.disabled'", (endpoint_id,))
        assert await cursor.fetchall() == [("webhook-sender", "failing")]
    attempts = len(receiver.received("/failing"))
    async with pool.connection() as conn:
        assert await store.claim_due(conn, busy={}, busy_merchants={}, per_endpoint=4,
                                     per_merchant=16, limit=100,
                                     lease_seconds=30) == []  # nothing for a disabled endpoint
    assert len(receiver.received("/failing")) == attempts


async def _wait_disabled(pool: Pool, endpoint_id: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            async with pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT merchant_id FROM webhook_endpoints WHERE id = %s", (endpoint_id,))
                merchant = await cursor.fetchone()
                assert merchant is not None
                row = await repository.get_endpoint(conn, merchant[0], endpoint_id)
            assert row is not None
            if row["status"] == "disabled":
                return row
            await asyncio.sleep(0.05)

"""Two ledger consumers write batches touching the same accounts at once (a group of two splits
the partitions, and every payment of a merchant moves its accounts): on the real PostgreSQL,
neither deadlocks. Each batch first writes postings, whose foreign keys share-lock the
accounts they name, then locks those accounts to update their balances; that lock must not
wait for the other batch's foreign-key locks, or each waits for the other until PostgreSQL
aborts one (a second later: with two consumers, decisions took a second to reach the ledger)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest
from psycopg import AsyncConnection

from ledger import store
from ledger.accounts import Kind, merchant, platform
from ledger.balances import BalanceChanges
from ledger.postings import JournalEntry, Posting
from tests.harness import IsolatedEnvironment

pytestmark = pytest.mark.integration

BATCHES = 4


def capture(merchant_id: str, amount: int) -> JournalEntry:
    return JournalEntry("capture", "USD", (
        Posting(platform(Kind.CARD_CLEARING, "USD"), amount),
        Posting(merchant(merchant_id, Kind.PENDING, "USD"), -amount),
    ), settles_on=date(2030, 1, 1))


def test_concurrent_batches_on_the_same_accounts_never_deadlock(
    environment: IsolatedEnvironment,
) -> None:
    merchant_id = f"m_test_{uuid.uuid4().hex[:8]}"
    url = environment.settings.database_url
    written = asyncio.Barrier(BATCHES)

    async def batch(index: int) -> None:
        entry = capture(merchant_id, 100 + index)
        async with await AsyncConnection.connect(url) as conn, conn.transaction():
            await store.insert_entries(conn, [(f"test-concurrent-{uuid.uuid4().hex}", entry)])
            await written.wait()  # every batch holds its postings' foreign-key locks
            changes = BalanceChanges()
            changes.add_entries([entry])
            await store.apply_balances(conn, changes)

    async def scenario() -> None:
        async with await AsyncConnection.connect(url) as conn, conn.transaction():
            # The accounts exist already, as a merchant's do after its first payment.
            await store.ensure_accounts(conn, [p.account for p in capture(merchant_id, 1).postings])
        async with asyncio.timeout(30):
            await asyncio.gather(*(batch(index) for index in range(BATCHES)))

    asyncio.run(scenario())

    async def balance() -> int:
        async with await AsyncConnection.connect(url) as conn:
            cursor = await conn.execute(
                "SELECT posted_credits - posted_debits FROM accounts WHERE name = %s",
                (merchant(merchant_id, Kind.PENDING, "USD").name,))
            row = await cursor.fetchone()
            assert row is not None
            return int(row[0])

    assert asyncio.run(balance()) == sum(100 + index for index in range(BATCHES))

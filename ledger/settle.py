"""Run the daily settlement against PostgreSQL: ``payflow settle --date`` and the ledger's
scheduled run call ``settle_day``.

One transaction per merchant and currency: claim the (merchant, currency, day) settlement row
(if it exists, that pair was settled already and nothing happens), record which entries it
takes, write the planned journal entries and balance changes, the payout and its
``payout.created`` / ``payout.paid`` events in the outbox (published to the ``payouts`` topic by
the ledger consumer's outbox sweep), and an audit row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection

from ingest.contracts import PayoutEvent, PayoutObject, new_message_id
from ingest.topics import PAYOUTS
from ledger import store
from ledger.accounts import Kind, merchant
from ledger.balances import BalanceChanges
from ledger.batch import OutboxEvent
from ledger.settlement import (
    EntryLine,
    SettlementPlan,
    entry_line,
    group_lines,
    plan_settlement,
    report_csv,
)

log = logging.getLogger(__name__)
SOURCE = "payflow/settlement"


@dataclass(frozen=True)
class SettlementResult:
    settlement_id: str
    plan: SettlementPlan
    payout_id: str | None


async def settle_day(database_url: str, day: date,
                     report_dir: Path | None = None) -> list[SettlementResult]:
    """Settle every merchant and currency with entries due on ``day``; return what was done."""
    results = []
    async with await AsyncConnection.connect(database_url) as conn:
        lines = await _unsettled_lines(conn, day)
        for (merchant_id, currency), group in sorted(group_lines(lines).items()):
            async with conn.transaction():
                result = await _settle_one(conn, merchant_id, currency, day, group)
            if result is None:
                continue
            results.append(result)
            if report_dir is not None:
                write_report(report_dir, result)
    return results


def write_report(report_dir: Path, result: SettlementResult) -> Path:
    plan = result.plan
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / f"settlement_{plan.merchant_id}_{plan.currency}_{plan.day}.csv"
    path.write_text(report_csv(plan))
    return path


async def _unsettled_lines(conn: AsyncConnection[Any], day: date) -> list[EntryLine]:
    cursor = await conn.execute(
        """SELECT e.id, e.kind, e.payment_id, array_agg(p.account ORDER BY p.id),
                  array_agg(p.amount ORDER BY p.id)
           FROM journal_entries e
           JOIN postings p ON p.entry_id = e.id
           LEFT JOIN settlement_items s ON s.entry_id = e.id
           WHERE e.settles_on <= %s AND s.entry_id IS NULL
           GROUP BY e.id ORDER BY e.id""",
        (day,),
    )
    return [entry_line(entry_id, kind, payment_id, list(zip(accounts, amounts, strict=True)))
            for entry_id, kind, payment_id, accounts, amounts in await cursor.fetchall()]


async def _settle_one(conn: AsyncConnection[Any], merchant_id: str, currency: str, day: date,
                      lines: list[EntryLine]) -> SettlementResult | None:
    settlement_id = f"stl_{new_message_id()[:24]}"
    claimed = await conn.execute(
        "INSERT INTO settlements (id, merchant_id, currency, settlement_date, net_amount) "
        "VALUES (%s, %s, %s, %s, 0) ON CONFLICT DO NOTHING",
        (settlement_id, merchant_id, currency, day),
    )
    if claimed.rowcount != 1:
        return None  # settled already for this day: nothing new
    available = merchant(merchant_id, Kind.AVAILABLE, currency)
    cursor = await conn.execute(
        "SELECT posted_credits - posted_debits FROM accounts WHERE name = %s "
        "FOR NO KEY UPDATE",  # as store.apply_balances locks it
        (available.name,),
    )
    row = await cursor.fetchone()
    plan = plan_settlement(merchant_id, currency, day, lines, row[0] if row else 0)
    await conn.execute("UPDATE settlements SET net_amount = %s, report = %s WHERE id = %s",
                       (plan.net, report_csv(plan), settlement_id))
    async with conn.cursor() as items:
        await items.executemany(
            "INSERT INTO settlement_items (entry_id, settlement_id) VALUES (%s, %s)",
            [(line.entry_id, settlement_id) for line in lines],
        )
    await store.insert_entries(conn, [(f"settlement:{settlement_id}", entry)
                                      for entry in plan.entries])
    changes = BalanceChanges()
    changes.add_entries(plan.entries)
    await store.apply_balances(conn, changes)
    payout_id = await _pay_out(conn, plan, settlement_id) if plan.payout_amount else None
    await store.insert_audit(conn, [("settlement", merchant_id, "settlement", settlement_id,
                                     "settled", {"day": str(day), "net": plan.net,
                                                 "payout": plan.payout_amount})])
    log.info("settled %s %s for %s: net %d, payout %d", merchant_id, currency, day, plan.net,
             plan.payout_amount)
    return SettlementResult(settlement_id, plan, payout_id)


async def _pay_out(conn: AsyncConnection[Any], plan: SettlementPlan,
                   settlement_id: str) -> str:
    """Record the payout (paid at once in the sandbox) and its two events in the outbox."""
    payout_id = f"po_{new_message_id()[:24]}"
    now = datetime.now(UTC)
    await conn.execute(
        """INSERT INTO payouts (id, merchant_id, currency, amount, status, settlement_date,
                                settlement_id, paid_at)
           VALUES (%s, %s, %s, %s, 'paid', %s, %s, %s)""",
        (payout_id, plan.merchant_id, plan.currency, plan.payout_amount, plan.day,
         settlement_id, now),
    )
    events = [
        PayoutEvent(type=kind, source=SOURCE, merchant_id=plan.merchant_id,
                    subject=plan.merchant_id, data=PayoutObject(
                        id=payout_id, merchant_id=plan.merchant_id, amount=plan.payout_amount,
                        currency=plan.currency, status=status, settlement_date=plan.day,
                        created_at=now))
        for kind, status in (("payout.created.v1", "pending"), ("payout.paid.v1", "paid"))
    ]
    await store.insert_events(conn, [OutboxEvent.of(PAYOUTS.name, event) for event in events])
    return payout_id

"""Daily settlement, as pure functions: which entries settle, what moves, what is paid out.

A settlement for day D takes, per merchant and currency, every journal entry touching the
merchant's pending balance whose ``settles_on`` is D or earlier and that no settlement has taken
yet. It moves their net from pending to available, records the networks paying what was
captured (less refunds and chargebacks) into the platform's bank, and pays the merchant's whole
available balance out (one payout per merchant, currency and day). Running it twice for a day
finds nothing new: settlements are unique per merchant, currency and day.

The settlement report lists every payment, refund, fee and dispute included, and its totals tie
to the ledger: opening available + net settled = payout + closing available.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from ledger.accounts import Account, Kind
from ledger.postings import (
    JournalEntry,
    network_settlement_entry,
    payout_entries,
    settlement_entry,
)


@dataclass(frozen=True, slots=True)
class EntryLine:
    """One unsettled journal entry, reduced to what settlement and its report need."""

    entry_id: int
    kind: str
    payment_id: str | None
    merchant_id: str
    currency: str
    gross: int
    """Cardholder-facing amount: + captured, - refunded or disputed."""
    fee: int
    """Fee earned by the platform on this line (negative when returned)."""
    net: int
    """What the merchant's pending balance gained (+) or lost (-)."""
    card_clearing: int
    refunds: int
    chargebacks: int


def entry_line(entry_id: int, kind: str, payment_id: str | None,
               postings: list[tuple[str, int]]) -> EntryLine:
    """Summarize an entry's postings (account name, signed amount) into a report line."""
    accounts = [(Account.parse(name), amount) for name, amount in postings]
    merchant_id = next(a.owner for a, _ in accounts if a.kind is Kind.PENDING)
    currency = accounts[0][0].currency

    def total(kind: Kind) -> int:
        return sum(amount for account, amount in accounts if account.kind is kind)

    net = -total(Kind.PENDING)
    fee = -total(Kind.FEE_REVENUE)
    clearing, refunds, chargebacks = (total(Kind.CARD_CLEARING), -total(Kind.REFUNDS),
                                      -total(Kind.CHARGEBACKS))
    gross = clearing - refunds - chargebacks
    return EntryLine(entry_id, kind, payment_id, merchant_id, currency, gross, fee, net,
                     clearing, refunds, chargebacks)


@dataclass(frozen=True, slots=True)
class SettlementPlan:
    """What settling one merchant and currency for a day writes."""

    merchant_id: str
    currency: str
    day: date
    lines: tuple[EntryLine, ...]
    opening_available: int
    entries: tuple[JournalEntry, ...]
    payout_amount: int

    @property
    def net(self) -> int:
        return sum(line.net for line in self.lines)

    @property
    def closing_available(self) -> int:
        return self.opening_available + self.net - self.payout_amount


def group_lines(lines: list[EntryLine]) -> dict[tuple[str, str], list[EntryLine]]:
    groups: dict[tuple[str, str], list[EntryLine]] = defaultdict(list)
    for line in lines:
        groups[(line.merchant_id, line.currency)].append(line)
    return dict(groups)


def plan_settlement(merchant_id: str, currency: str, day: date, lines: list[EntryLine],
                    opening_available: int) -> SettlementPlan:
    """Entries for one merchant/currency: pending → available, network funds, payout."""
    net = sum(line.net for line in lines)
    entries: list[JournalEntry] = []
    moved = settlement_entry(merchant_id, currency, net)
    if moved:
        entries.append(moved)
    network = network_settlement_entry(currency, sum(x.card_clearing for x in lines),
                                       sum(x.refunds for x in lines),
                                       sum(x.chargebacks for x in lines))
    if network:
        entries.append(network)
    payout = max(0, opening_available + net)
    if payout:
        entries.extend(payout_entries(merchant_id, currency, payout))
    return SettlementPlan(merchant_id, currency, day, tuple(lines), opening_available,
                          tuple(entries), payout)


REPORT_COLUMNS = ("entry_id", "type", "payment_id", "currency", "gross", "fee", "net")


def report_csv(plan: SettlementPlan) -> str:
    """The settlement report: one row per payment, refund, fee and dispute, then the totals."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REPORT_COLUMNS)
    for line in sorted(plan.lines, key=lambda x: x.entry_id):
        writer.writerow((line.entry_id, line.kind, line.payment_id or "", plan.currency,
                         line.gross, line.fee, line.net))
    totals = (sum(x.gross for x in plan.lines), sum(x.fee for x in plan.lines), plan.net)
    writer.writerow(("", "total", "", plan.currency, *totals))
    for label, amount in (("opening_available", plan.opening_available),
                          ("payout", -plan.payout_amount),
                          ("closing_available", plan.closing_available)):
        writer.writerow(("", label, "", plan.currency, "", "", amount))
    return out.getvalue()

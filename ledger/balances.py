"""Balance changes by type, netted per account: what a batch of entries and holds does to
each account's posted and pending debits and credits.

Netting a whole batch first and then updating each account once, in name order, is what lets
one transaction carry hundreds of payments without deadlocks or a hot-row penalty on the
platform's shared accounts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ledger.accounts import Account
from ledger.postings import Hold, JournalEntry


@dataclass
class BalanceDelta:
    posted_debits: int = 0
    posted_credits: int = 0
    pending_debits: int = 0
    pending_credits: int = 0


class BalanceChanges:
    """Accumulates deltas per account; ``sorted_items`` is the order to apply them in."""

    def __init__(self) -> None:
        self._deltas: dict[Account, BalanceDelta] = {}

    def _delta(self, account: Account) -> BalanceDelta:
        return self._deltas.setdefault(account, BalanceDelta())

    def add_entries(self, entries: Iterable[JournalEntry]) -> None:
        for entry in entries:
            for posting in entry.postings:
                delta = self._delta(posting.account)
                if posting.amount > 0:
                    delta.posted_debits += posting.amount
                else:
                    delta.posted_credits -= posting.amount

    def add_hold(self, hold: Hold, *, placed: bool, resolved: bool) -> None:
        """A hold placed adds to pending balances; resolved (posted or voided) removes it."""
        sign = int(placed) - int(resolved)
        if sign:
            self._delta(hold.debit).pending_debits += sign * hold.amount
            self._delta(hold.credit).pending_credits += sign * hold.amount

    def sorted_items(self) -> list[tuple[Account, BalanceDelta]]:
        return sorted(self._deltas.items(), key=lambda item: item[0].name)

    def __bool__(self) -> bool:
        return bool(self._deltas)

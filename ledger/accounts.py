"""The chart of accounts: every account payflow's ledger posts to, and what it means.

Accounts are per currency, and merchant accounts per merchant; names are
``<owner>:<kind>:<currency>`` (``merchant:mer_x:pending:USD``, ``platform:fee_revenue:EUR``).
Amounts in postings are signed minor units: positive debits, negative credits; every journal
entry sums to zero per currency.

| account                    | normal | meaning                                                    |
|----------------------------|--------|------------------------------------------------------------|
| merchant:pending           | credit | captured for the merchant, net of fees, not yet settled    |
| merchant:available         | credit | settled, owed to the merchant, paid out daily              |
| merchant:in_transit        | credit | in a payout on its way to the merchant's bank              |
| platform:card_clearing     | debit  | owed to us by the card networks for captured payments      |
| platform:bank              | debit  | cash at our settlement bank                                |
| platform:fee_revenue       | credit | fees earned (returned pro rata on refunds)                 |
| platform:refunds           | credit | refunds owed back to cardholders through the networks      |
| platform:chargebacks       | credit | disputed funds taken back by the networks                  |
| platform:authorizations    | debit  | authorization holds (two-phase: pending until captured)    |

Accounts that must never go negative in their normal direction (checked by the database's
balance table and by reconciliation): card_clearing, fee_revenue, in_transit, authorizations.
A merchant's pending and available balances may go negative (a refund after a payout): the
merchant then owes the platform, which the next settlement nets.

Balances are kept by type, as the serious ledgers keep them: posted debits and credits, and
pending debits and credits (open authorization holds). The merchant's paid-out total is the
posted debits of its ``in_transit`` account (every payout paid), so it needs no account of its
own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Kind(StrEnum):
    PENDING = "pending"
    AVAILABLE = "available"
    IN_TRANSIT = "in_transit"
    CARD_CLEARING = "card_clearing"
    BANK = "bank"
    FEE_REVENUE = "fee_revenue"
    REFUNDS = "refunds"
    CHARGEBACKS = "chargebacks"
    AUTHORIZATIONS = "authorizations"


MERCHANT_KINDS = frozenset({Kind.PENDING, Kind.AVAILABLE, Kind.IN_TRANSIT})
DEBIT_NORMAL = frozenset({Kind.CARD_CLEARING, Kind.BANK, Kind.AUTHORIZATIONS})
NON_NEGATIVE = frozenset({Kind.CARD_CLEARING, Kind.FEE_REVENUE, Kind.IN_TRANSIT,
                          Kind.AUTHORIZATIONS})


@dataclass(frozen=True, slots=True, order=True)
class Account:
    owner: str
    """``platform`` or a merchant id."""
    kind: Kind
    currency: str

    def __post_init__(self) -> None:
        assert (self.owner == "platform") != (self.kind in MERCHANT_KINDS), (self.owner, self.kind)

    @property
    def name(self) -> str:
        if self.owner == "platform":
            return f"platform:{self.kind.value}:{self.currency}"
        return f"merchant:{self.owner}:{self.kind.value}:{self.currency}"

    @property
    def normal(self) -> Literal["debit", "credit"]:
        return "debit" if self.kind in DEBIT_NORMAL else "credit"

    @property
    def non_negative(self) -> bool:
        return self.kind in NON_NEGATIVE

    @classmethod
    def parse(cls, name: str) -> Account:
        parts = name.split(":")
        if parts[0] == "platform" and len(parts) == 3:
            return cls("platform", Kind(parts[1]), parts[2])
        if parts[0] == "merchant" and len(parts) == 4:
            return cls(parts[1], Kind(parts[2]), parts[3])
        raise ValueError(f"not an account name: {name!r}")


def merchant(merchant_id: str, kind: Kind, currency: str) -> Account:
    return Account(merchant_id, kind, currency)


def platform(kind: Kind, currency: str) -> Account:
    return Account("platform", kind, currency)

"""Fees, settlement plans and reports (pure): the numbers tie without a database."""

from __future__ import annotations

import csv
import io
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from ledger.accounts import Account, Kind
from ledger.fees import Pricing, capture_fee, default_pricing, refund_fee_return
from ledger.postings import capture_entry, dispute_entry, refund_entry
from ledger.settlement import entry_line, plan_settlement, report_csv

DAY = date(2026, 11, 30)


def test_the_default_price_is_2_9_percent_plus_30_and_no_fixed_fee_without_minor_units() -> None:
    assert capture_fee(10_000, default_pricing("USD")) == 320
    assert capture_fee(10_000, default_pricing("JPY")) == 290
    assert capture_fee(10, default_pricing("USD")) == 10  # never more than the amount


@given(captured=st.integers(1, 10**8), parts=st.lists(st.integers(1, 100), min_size=1,
                                                         max_size=8))
def test_refunding_everything_in_parts_returns_exactly_the_whole_fee(
    captured: int, parts: list[int]
) -> None:
    fee = capture_fee(captured, Pricing(290, 30))
    total_weight = sum(parts)
    refunded = returned = 0
    for index, weight in enumerate(parts):
        last = index == len(parts) - 1
        amount = captured - refunded if last else captured * weight // total_weight
        if amount <= 0 or refunded + amount > captured:
            continue
        back = refund_fee_return(fee, returned, captured, refunded, amount)
        assert 0 <= back <= fee - returned
        refunded += amount
        returned += back
    if refunded == captured:
        assert returned == fee


def _lines() -> list:  # type: ignore[type-arg]
    entries = [
        capture_entry("pay_1", "mer_1", "USD", 10_000, 320, DAY),
        refund_entry("pay_1", "mer_1", "USD", 4_000, 128, DAY),
        capture_entry("pay_2", "mer_1", "USD", 5_000, 175, DAY),
        dispute_entry("pay_2", "mer_1", "USD", 5_000, DAY),
    ]
    return [entry_line(i, e.kind, e.payment_id,
                       [(p.account.name, p.amount) for p in e.postings])
            for i, e in enumerate(entries, start=1)]


def test_a_settlement_moves_the_net_to_available_and_pays_it_all_out() -> None:
    lines = _lines()
    plan = plan_settlement("mer_1", "USD", DAY, lines, opening_available=0)
    assert plan.net == (10_000 - 320) - (4_000 - 128) + (5_000 - 175) - 5_000
    assert plan.payout_amount == plan.net
    balances: dict[Account, int] = {}
    for line_entry in plan.entries:
        for posting in line_entry.postings:
            balances[posting.account] = balances.get(posting.account, 0) + posting.amount
    pending = Account("mer_1", Kind.PENDING, "USD")
    available = Account("mer_1", Kind.AVAILABLE, "USD")
    assert balances[pending] == plan.net  # debits cancel the lines' credits to pending
    assert balances.get(available, 0) == 0  # credited by the settlement, debited by the payout
    assert plan.closing_available == 0


def test_a_negative_opening_balance_is_netted_before_paying_out() -> None:
    plan = plan_settlement("mer_1", "USD", DAY, _lines(), opening_available=-100_000)
    assert plan.payout_amount == 0
    assert plan.closing_available == -100_000 + plan.net


def test_the_report_lists_every_line_and_its_totals_tie() -> None:
    plan = plan_settlement("mer_1", "USD", DAY, _lines(), opening_available=250)
    rows = list(csv.reader(io.StringIO(report_csv(plan))))
    kinds = [row[1] for row in rows[1:]]
    assert kinds[:4] == ["capture", "refund", "capture", "dispute"]
    by_label = {row[1]: row for row in rows if row[1] in {"total", "payout", "opening_available",
                                                          "closing_available"}}
    assert int(by_label["total"][6]) == plan.net
    assert (int(by_label["opening_available"][6]) + plan.net + int(by_label["payout"][6])
            == int(by_label["closing_available"][6]))

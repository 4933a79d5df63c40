"""The traffic simulator: same seed, same history; every fraud pattern appears, labelled late."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from api.schemas import PaymentCreate
from ingest.simulator import TrafficSimulator
from ingest.traffic import (
    PATTERNS,
    SimulationConfig,
    api_body,
    card_number,
    read_csv,
    simulate,
    write_csv,
)
from payflow.cli.app import app

SMALL = SimulationConfig(days=10, customers=300, merchants=30, seed=3,
                         compromised_terminals_per_day=0.5)


def test_the_same_seed_gives_the_same_history() -> None:
    assert simulate(SMALL) == simulate(SMALL)


def test_another_seed_gives_another_history() -> None:
    other = SimulationConfig(days=10, customers=300, merchants=30, seed=4)
    assert [p.payment_id for p in simulate(SMALL)] != [p.payment_id for p in simulate(other)]


def test_every_fraud_pattern_appears_and_is_labelled_later() -> None:
    payments = simulate(SMALL)
    assert {p.fraud_pattern for p in payments if p.is_fraud} == set(PATTERNS)
    for p in payments:
        assert p.is_fraud == (p.label_seconds is not None) == (p.fraud_pattern != "")
        if p.label_seconds is not None:
            assert p.label_seconds >= p.time_seconds + SMALL.label_delay_days[0] * 86_400 - 1e-3
    assert 0.005 < sum(p.is_fraud for p in payments) / len(payments) < 0.15


def test_payments_are_in_time_order_within_the_period() -> None:
    times = [p.time_seconds for p in simulate(SMALL)]
    assert times == sorted(times)
    assert SMALL.start_seconds <= times[0] and times[-1] < SMALL.start_seconds + 11 * 86_400


def test_card_testing_comes_in_bursts_across_cards_from_one_address() -> None:
    tests = [p for p in simulate(SMALL) if p.fraud_pattern == "card_testing"]
    by_ip: dict[str, set[str]] = {}
    for p in tests:
        by_ip.setdefault(p.ip_address, set()).add(p.card_id)
    assert max(len(cards) for cards in by_ip.values()) >= 10
    assert all(p.amount_minor <= 300 for p in tests)


def test_a_csv_file_round_trips(tmp_path: Path) -> None:
    payments = simulate(SimulationConfig(days=2, customers=50, merchants=5))
    path = tmp_path / "history.csv"
    assert write_csv(payments, path) == len(payments)
    assert list(read_csv(path)) == payments


def test_the_cli_writes_the_same_file_for_the_same_seed(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in ("a.csv", "b.csv"):
        result = runner.invoke(app, ["simulate", "generate", "--days", "2", "--customers", "80",
                                     "--seed", "11", "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert "payments" in result.output


def test_the_demo_trickle_still_works() -> None:
    body = TrafficSimulator(seed=1).next_payment()
    assert body["amount"] >= 50 and body["payment_method"]["type"] == "card"


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2)
                for i, d in enumerate(digits))
    return total % 10 == 0


def test_simulated_payments_become_valid_api_requests() -> None:
    payments = simulate(SimulationConfig(days=2, customers=60, merchants=5))
    for payment in payments[:200]:
        body = api_body(payment)
        request = PaymentCreate.model_validate(body)
        number = body["payment_method"]["card"]["number"]
        assert luhn_valid(number) and not number.startswith(("4000", "4100", "4242"))
        assert request.amount == payment.amount_minor
        assert body["customer"]["ip_address"] == payment.ip_address
    assert api_body(payments[0]) == api_body(payments[0])
    assert card_number("card_a") != card_number("card_b")

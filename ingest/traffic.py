"""The traffic simulator: a seeded, reproducible history of labelled card payments.

Data scientists need traffic whose fraud looks like the real thing to train and evaluate the
fraud model; the pipeline needs it to be exercised. ``simulate`` builds customers (home country,
IP address, device, one or two cards, a spending habit), merchants with one terminal each and
ordinary payments over a number of days, then mixes in five fraud patterns:

- ``terminal``: a compromised terminal whose payments turn fraudulent for weeks;
- ``card``: compromised cards, a share of whose payments are fraudulent for two weeks;
- ``high_amount``: single large payments on a customer's card from a foreign IP address;
- ``card_testing``: bursts of small authorizations across many cards from one IP and device;
- ``takeover``: account takeover — a new device and country, then large amounts.

Every fraudulent payment gets a label that arrives later (``label_seconds``), as disputes do.
Same configuration and seed, same payments: the generator draws from one ``random.Random``.
Pure values only; ``write_csv`` is the one function touching a file.
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DAY_SECONDS = 86_400.0
START_SECONDS = 1_767_225_600.0
"""2026-01-01T00:00:00Z: where a simulated history begins unless told otherwise."""
COUNTRIES = ("US", "US", "US", "US", "GB", "DE", "FR", "CA", "NL", "ES")
FRAUD_COUNTRIES = ("BR", "NG", "RO", "VN", "RU", "ID")
PATTERNS = ("terminal", "card", "high_amount", "card_testing", "takeover")


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """How much traffic, and how much of each fraud pattern (rates are per day)."""

    days: int = 56
    seed: int = 7
    customers: int = 1500
    merchants: int = 120
    start_seconds: float = START_SECONDS
    compromised_terminals_per_day: float = 0.1
    terminal_fraud_days: int = 21
    terminal_fraud_share: float = 0.5
    compromised_cards_per_day: float = 2.0
    """This and the rates below are per day and per 1,000 customers (fraud scales with traffic)."""
    card_fraud_days: int = 14
    card_fraud_share: float = 0.35
    high_amount_per_day: float = 1.3
    card_testing_per_day: float = 0.35
    takeovers_per_day: float = 0.7
    label_delay_days: tuple[float, float] = (1.0, 12.0)
    """Labels arrive uniformly between these many days after the payment."""


@dataclass(frozen=True, slots=True)
class SimulatedPayment:
    """One payment with its ground truth: the row a history file holds."""

    payment_id: str
    time_seconds: float
    customer_id: str
    card_id: str
    merchant_id: str
    terminal_id: str
    amount_minor: int
    currency: str
    ip_address: str
    device_id: str
    country: str
    is_fraud: bool
    fraud_pattern: str
    """One of ``PATTERNS``, empty for a genuine payment."""
    label_seconds: float | None
    """When the fraud label (dispute) arrives; None for a genuine payment."""


@dataclass(frozen=True, slots=True)
class _Customer:
    id: str
    cards: tuple[str, ...]
    country: str
    ip: str
    device: str
    mean_amount: float
    payments_per_day: float
    merchants: tuple[int, ...]


def simulate(config: SimulationConfig = SimulationConfig()) -> list[SimulatedPayment]:
    """The whole history, in time order (ties keep generation order)."""
    assert config.days > 0 and config.customers > 0 and config.merchants > 0, config
    rng = random.Random(config.seed)
    people = [_customer(rng, i, config.merchants) for i in range(config.customers)]
    payments = _genuine(rng, config, people)
    payments = _compromise_terminals(rng, config, payments)
    payments = _compromise_cards(rng, config, payments)
    payments += _high_amounts(rng, config, people)
    payments += _card_testing(rng, config)
    payments += _takeovers(rng, config, people)
    payments = [_labelled(rng, config, p) for p in payments]
    return sorted(payments, key=lambda p: p.time_seconds)


def _customer(rng: random.Random, index: int, merchants: int) -> _Customer:
    cards = tuple(f"card_{index:05d}_{k}" for k in range(rng.choice((1, 1, 1, 2))))
    ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    favourites = tuple(sorted(rng.sample(range(merchants), k=min(merchants, 8))))
    return _Customer(f"cus_{index:05d}", cards, rng.choice(COUNTRIES), ip, f"dev_{index:05d}",
                     rng.lognormvariate(8.0, 0.8), rng.uniform(0.2, 1.6), favourites)


def _payment(rng: random.Random, t: float, person: _Customer, merchant: int, amount: float,
             card: str | None = None, origin: tuple[str, str, str] | None = None
             ) -> SimulatedPayment:
    """A genuine-looking payment of ``person``; ``origin`` (IP, device, country) overrides
    where it comes from."""
    ip, device, country = origin or (person.ip, person.device, person.country)
    return SimulatedPayment(
        payment_id=f"pay_{rng.getrandbits(64):016x}", time_seconds=round(t, 3),
        customer_id=person.id, card_id=card or rng.choice(person.cards),
        merchant_id=f"m_{merchant:04d}", terminal_id=f"t_{merchant:04d}",
        amount_minor=max(50, min(int(amount), 99_999_999)), currency="USD",
        ip_address=ip, device_id=device, country=country,
        is_fraud=False, fraud_pattern="", label_seconds=None,
    )


def _genuine(rng: random.Random, config: SimulationConfig,
             people: list[_Customer]) -> list[SimulatedPayment]:
    payments = []
    for day in range(config.days):
        day_start = config.start_seconds + day * DAY_SECONDS
        for person in people:
            count = _poisson(rng, person.payments_per_day)
            for _ in range(count):
                amount = rng.lognormvariate(0.0, 0.5) * person.mean_amount
                t = day_start + min(rng.gauss(0.55, 0.18), 0.999) % 1.0 * DAY_SECONDS
                payments.append(_payment(rng, t, person, rng.choice(person.merchants), amount))
    return payments


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw by counting exponential gaps (means here are small)."""
    count, elapsed = 0, rng.expovariate(1.0)
    while elapsed < mean and count < 100_000:
        count += 1
        elapsed += rng.expovariate(1.0)
    return count


def _per_customers(rng: random.Random, config: SimulationConfig, rate: float) -> int:
    """How many times a daily event of ``rate`` per 1,000 customers happens today."""
    return _poisson(rng, rate * config.customers / 1000.0)


def _fraud(payment: SimulatedPayment, pattern: str) -> SimulatedPayment:
    return replace(payment, is_fraud=True, fraud_pattern=pattern)


def _compromise_terminals(rng: random.Random, config: SimulationConfig,
                          payments: list[SimulatedPayment]) -> list[SimulatedPayment]:
    """Some terminals are skimmed: a share of their payments is fraud for weeks."""
    periods: dict[str, list[tuple[float, float]]] = {}
    for day in range(config.days):
        if rng.random() < config.compromised_terminals_per_day:
            terminal = f"t_{rng.randrange(config.merchants):04d}"
            start = config.start_seconds + day * DAY_SECONDS
            end = start + config.terminal_fraud_days * DAY_SECONDS
            periods.setdefault(terminal, []).append((start, end))
    return [
        _fraud(p, "terminal")
        if any(s <= p.time_seconds < e for s, e in periods.get(p.terminal_id, ()))
        and rng.random() < config.terminal_fraud_share else p
        for p in payments
    ]


def _compromised_card_windows(rng: random.Random, config: SimulationConfig,
                              cards: list[str]) -> dict[str, tuple[float, float]]:
    windows: dict[str, tuple[float, float]] = {}
    for day in range(config.days):
        start = config.start_seconds + day * DAY_SECONDS
        count = _per_customers(rng, config, config.compromised_cards_per_day)
        for card in rng.sample(cards, k=min(len(cards), count)):
            windows.setdefault(card, (start, start + config.card_fraud_days * DAY_SECONDS))
    return windows


def _compromise_cards(rng: random.Random, config: SimulationConfig,
                      payments: list[SimulatedPayment]) -> list[SimulatedPayment]:
    """Stolen card details: for two weeks a share of a card's payments are fraud, at higher
    amounts than its owner spends."""
    cards = sorted({p.card_id for p in payments})
    windows = _compromised_card_windows(rng, config, cards)
    changed = []
    for p in payments:
        window = windows.get(p.card_id)
        if (window and window[0] <= p.time_seconds < window[1] and not p.is_fraud
                and rng.random() < config.card_fraud_share):
            p = _fraud(replace(p, amount_minor=min(p.amount_minor * rng.randint(2, 6),
                                                   99_999_999)), "card")
        changed.append(p)
    return changed


def _moment(rng: random.Random, config: SimulationConfig, day: int) -> float:
    return config.start_seconds + (day + rng.random()) * DAY_SECONDS


def _foreign_ip(rng: random.Random) -> str:
    return f"198.51.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _high_amounts(rng: random.Random, config: SimulationConfig,
                  people: list[_Customer]) -> list[SimulatedPayment]:
    """One large payment on a victim's card, from abroad."""
    return [
        _fraud(_payment(rng, _moment(rng, config, day), victim, rng.randrange(config.merchants),
                        victim.mean_amount * rng.uniform(10, 40), origin=(
                            _foreign_ip(rng), f"dev_x{rng.getrandbits(32):08x}",
                            rng.choice(FRAUD_COUNTRIES))), "high_amount")
        for day in range(config.days)
        for victim in rng.sample(people, k=min(len(people), _per_customers(
            rng, config, config.high_amount_per_day)))
    ]


def _card_testing(rng: random.Random, config: SimulationConfig) -> list[SimulatedPayment]:
    """Many small authorizations across freshly stolen cards from one IP address and device."""
    bursts: list[SimulatedPayment] = []
    for day in range(config.days):
        if _per_customers(rng, config, config.card_testing_per_day) == 0:
            continue
        t, merchant = _moment(rng, config, day), rng.randrange(config.merchants)
        tester = _Customer(f"cus_guest_{rng.getrandbits(32):08x}", ("",), "RU",
                           f"203.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                           f"dev_t{rng.getrandbits(32):08x}", 0.0, 0.0, ())
        for _ in range(rng.randint(10, 40)):
            t += rng.uniform(2, 20)
            card = f"card_tested_{rng.getrandbits(48):012x}"
            bursts.append(_fraud(_payment(rng, t, tester, merchant, rng.uniform(50, 300), card),
                                 "card_testing"))
    return bursts


def _takeovers(rng: random.Random, config: SimulationConfig,
               people: list[_Customer]) -> list[SimulatedPayment]:
    """A customer's account from a new device and country, then a few large payments."""
    stolen: list[SimulatedPayment] = []
    for day in range(config.days):
        count = _per_customers(rng, config, config.takeovers_per_day)
        for victim in rng.sample(people, k=min(len(people), count)):
            t = _moment(rng, config, day)
            attacker = (_foreign_ip(rng), f"dev_a{rng.getrandbits(32):08x}",
                        rng.choice(FRAUD_COUNTRIES))
            for _ in range(rng.randint(2, 5)):
                t += rng.uniform(120, 3600)
                amount = victim.mean_amount * rng.uniform(4, 15)
                stolen.append(_fraud(_payment(rng, t, victim, rng.randrange(config.merchants),
                                              amount, origin=attacker), "takeover"))
    return stolen


def _labelled(rng: random.Random, config: SimulationConfig,
              payment: SimulatedPayment) -> SimulatedPayment:
    if not payment.is_fraud:
        return payment
    delay = rng.uniform(*config.label_delay_days) * DAY_SECONDS
    return replace(payment, label_seconds=round(payment.time_seconds + delay, 3))


COLUMNS = tuple(f.name for f in fields(SimulatedPayment))


def to_row(payment: SimulatedPayment) -> dict[str, str]:
    """A CSV row: ``timestamp`` (ISO 8601 UTC) beside the raw fields, booleans as 0/1."""
    row = {k: "" if v is None else str(int(v) if isinstance(v, bool) else v)
           for k, v in asdict(payment).items()}
    row["timestamp"] = datetime.fromtimestamp(payment.time_seconds, UTC).isoformat()
    return row


def from_row(row: dict[str, str]) -> SimulatedPayment:
    """The payment a ``to_row`` row describes."""
    label = row.get("label_seconds") or ""
    return SimulatedPayment(
        payment_id=row["payment_id"], time_seconds=float(row["time_seconds"]),
        customer_id=row["customer_id"], card_id=row["card_id"], merchant_id=row["merchant_id"],
        terminal_id=row["terminal_id"], amount_minor=int(row["amount_minor"]),
        currency=row["currency"], ip_address=row["ip_address"], device_id=row["device_id"],
        country=row["country"], is_fraud=row["is_fraud"] == "1",
        fraud_pattern=row["fraud_pattern"], label_seconds=float(label) if label else None,
    )


def write_csv(payments: Iterable[SimulatedPayment], path: Path) -> int:
    """Write the payments to ``path``; the number written."""
    count = 0
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=("timestamp", *COLUMNS))
        writer.writeheader()
        for payment in payments:
            writer.writerow(to_row(payment))
            count += 1
    return count


def read_csv(path: Path) -> Iterator[SimulatedPayment]:
    with path.open(newline="") as handle:
        yield from (from_row(row) for row in csv.DictReader(handle))


def card_number(card_id: str) -> str:
    """A Luhn-valid 16-digit Visa-range number standing for a simulated card (stable per id;
    never one of the sandbox's outcome test numbers, which start 4000 or 4100)."""
    digest = hashlib.sha256(card_id.encode()).hexdigest()
    body = "49" + "".join(str(int(c, 16) % 10) for c in digest[:13])
    return body + _luhn_check_digit(body)


def _luhn_check_digit(body: str) -> str:
    total = 0
    for position, digit in enumerate(reversed(body)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def api_body(payment: SimulatedPayment) -> dict[str, Any]:
    """The ``POST /v1/payments`` body that sends a simulated payment through the live API."""
    return {
        "amount": payment.amount_minor,
        "currency": payment.currency,
        "payment_method": {"type": "card", "card": {
            "number": card_number(payment.card_id), "exp_month": 12, "exp_year": 2031,
            "cvc": "123"}},
        "customer": {"id": payment.customer_id, "ip_address": payment.ip_address,
                     "device_id": payment.device_id},
        "description": f"Simulated payment {payment.payment_id}",
        "metadata": {"source": "payflow-simulate", "simulated_id": payment.payment_id},
    }

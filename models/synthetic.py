"""A small seeded generator of labelled payments, enough to train a first fraud model.

Not the traffic simulator (that comes with the model lifecycle work): just customers with a card
or two, a home country and IP, paying ordinary amounts at a handful of merchants, with three
fraud patterns mixed in — card-testing bursts of small payments on many cards from one IP, stolen
cards used for a few large payments from a new country, and rapid-fire bursts on one card. Fraud
is labelled by disputes that arrive two weeks later, as they do in reality.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from models.facts import LabelFacts, PaymentFacts

DAY = 86_400.0
COUNTRIES = ("US", "US", "US", "GB", "DE", "FR", "CA", "NL")
LABEL_DELAY_SECONDS = 14 * DAY


@dataclass(frozen=True)
class SyntheticHistory:
    events: list[PaymentFacts | LabelFacts]
    """Payments and the labels of the fraudulent ones, in no particular order."""
    fraud: frozenset[str]
    """Ids of the fraudulent payments (the ground truth, including labels not yet arrived)."""


@dataclass(frozen=True)
class _Customer:
    id: str
    cards: tuple[str, ...]
    country: str
    ip: str
    mean_amount: float
    first_day: int
    """Customers keep arriving, so first payments on fresh cards are ordinary too."""
    guest: bool
    """Pays without a customer id (guest checkout)."""


def generate(seed: int = 7, customers: int = 600, days: int = 21,
             start_seconds: float = 1_700_000_000.0) -> SyntheticHistory:
    """A reproducible history: same arguments, same events."""
    rng = random.Random(seed)
    merchants = [f"m_synth_{i}" for i in range(12)]
    people = [_customer(rng, i, days) for i in range(customers)]
    events: list[PaymentFacts | LabelFacts] = []
    fraud: set[str] = set()
    for day in range(days):
        day_start = start_seconds + day * DAY
        for person in rng.sample(people, k=customers // 3):
            if person.first_day <= day:
                events += _ordinary_day(rng, person, merchants, day_start)
        for _ in range(1):
            burst = _card_testing(rng, merchants, day_start + rng.uniform(0, DAY))
            events += burst
            fraud.update(p.payment_id for p in burst)
        victim = rng.choice(people)
        for attack in (_stolen_card(rng, victim, merchants, day_start + rng.uniform(0, DAY)),
                       _rapid_fire(rng, rng.choice(people), merchants,
                                   day_start + rng.uniform(0, DAY))):
            events += attack
            fraud.update(p.payment_id for p in attack)
    events += [_label(p) for p in events if isinstance(p, PaymentFacts) and p.payment_id in fraud]
    return SyntheticHistory(events, frozenset(fraud))


def _customer(rng: random.Random, index: int, days: int) -> _Customer:
    cards = tuple(f"card_{index}_{k}" for k in range(rng.choice((1, 1, 2))))
    ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return _Customer(f"cus_{index}", cards, rng.choice(COUNTRIES), ip,
                     rng.lognormvariate(7.6, 1.0), rng.randrange(days), rng.random() < 0.4)


def _payment(rng: random.Random, t: float, merchant: str, amount: float, card: str,
             customer: str | None, ip: str, country: str) -> PaymentFacts:
    return PaymentFacts(
        payment_id=f"pay_{rng.getrandbits(64):016x}", time_seconds=round(t, 3),
        merchant_id=merchant, amount_minor=max(50, min(int(amount), 99_999_999)),
        currency="USD", card=card, customer_id=customer, ip_address=ip, country=country,
    )


def _ordinary_day(rng: random.Random, person: _Customer, merchants: list[str],
                  day_start: float) -> list[PaymentFacts]:
    return [
        _payment(rng, day_start + rng.uniform(0, DAY), rng.choice(merchants[:8]),
                 rng.uniform(100, 1500) if rng.random() < 0.2  # coffee, parking, a song
                 else rng.lognormvariate(0, 0.35) * person.mean_amount, rng.choice(person.cards),
                 None if person.guest else person.id, person.ip, person.country)
        for _ in range(rng.choice((1, 1, 1, 2, 3)))
    ]


def _card_testing(rng: random.Random, merchants: list[str], t: float) -> list[PaymentFacts]:
    ip = f"203.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    merchant = rng.choice(merchants)
    return [
        _payment(rng, t + i * rng.uniform(2, 20), merchant, rng.uniform(100, 2000),
                 f"tested_{rng.getrandbits(48):012x}", None, ip, "RU")
        for i in range(rng.randint(8, 25))
    ]


def _stolen_card(rng: random.Random, victim: _Customer, merchants: list[str],
                 t: float) -> list[PaymentFacts]:
    ip = f"198.51.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    card = rng.choice(victim.cards)
    return [
        _payment(rng, t + i * rng.uniform(60, 900), rng.choice(merchants),
                 victim.mean_amount * rng.uniform(8, 40), card, victim.id, ip,
                 rng.choice(("BR", "NG", "RO", "VN")))
        for i in range(rng.randint(1, 4))
    ]


def _rapid_fire(rng: random.Random, person: _Customer, merchants: list[str],
                t: float) -> list[PaymentFacts]:
    card = rng.choice(person.cards)
    ip = f"192.0.2.{rng.randint(1, 254)}"
    return [
        _payment(rng, t + i * rng.uniform(3, 15), rng.choice(merchants),
                 person.mean_amount * rng.uniform(1, 4), card, person.id, ip, person.country)
        for i in range(rng.randint(5, 12))
    ]


def _label(payment: PaymentFacts) -> LabelFacts:
    return LabelFacts(payment.payment_id, payment.time_seconds + LABEL_DELAY_SECONDS,
                      payment.merchant_id, payment.time_seconds)

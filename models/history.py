"""Offline features: replay a history of payments and labels in event-time order.

The stream worker runs the four entity steps of ``models.features`` in four keyed stages; this
module runs the same steps, in the same order (card, origin, customer, merchant), over an
in-memory history, keeping each entity's record in a dictionary as the worker keeps it in a
table. For the same history in the same order both produce the same vectors; a unit test and an
integration test on real Kafka check it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from models.facts import LabelFacts, PaymentFacts
from models.features import (
    ABSENT_CUSTOMER,
    ABSENT_ORIGIN,
    Features,
    Record,
    card_features,
    customer_features,
    merchant_features,
    merchant_label,
    origin_features,
    payment_features,
)


@dataclass
class FeatureStore:
    """Every entity's record, by kind and key: the offline twin of the worker's tables."""

    cards: dict[str, Record] = field(default_factory=dict)
    origins: dict[str, Record] = field(default_factory=dict)
    customers: dict[str, Record] = field(default_factory=dict)
    merchants: dict[str, Record] = field(default_factory=dict)

    def observe(self, payment: PaymentFacts) -> Features:
        """The payment's full feature set; every entity's record is updated."""
        features = payment_features(payment)
        card, self.cards[payment.card] = card_features(self.cards.get(payment.card), payment)
        features.update(card)
        origin = payment.origin
        if origin is None:
            features.update(ABSENT_ORIGIN)
        else:
            found, self.origins[origin] = origin_features(self.origins.get(origin), payment)
            features.update(found)
        customer = payment.customer
        if customer is None:
            features.update(ABSENT_CUSTOMER)
        else:
            found, self.customers[customer] = customer_features(
                self.customers.get(customer), payment
            )
            features.update(found)
        merchant = payment.merchant_id
        found, self.merchants[merchant] = merchant_features(self.merchants.get(merchant), payment)
        features.update(found)
        return features

    def label(self, label: LabelFacts) -> None:
        merchant = label.merchant_id
        self.merchants[merchant] = merchant_label(self.merchants.get(merchant), label)


def replay(
    history: Iterable[PaymentFacts | LabelFacts], store: FeatureStore | None = None
) -> Iterator[tuple[PaymentFacts, Features]]:
    """Each payment of ``history`` with its features, replayed in event-time order.

    A label and a payment at the same instant: the label counts first (it was known then).
    The sort is stable, so events at the same time keep their given order otherwise.
    """
    store = store if store is not None else FeatureStore()
    ordered = sorted(history, key=lambda e: (e.time_seconds, isinstance(e, PaymentFacts)))
    for event in ordered:
        if isinstance(event, LabelFacts):
            store.label(event)
        else:
            yield event, store.observe(event)

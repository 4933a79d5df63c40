"""What an endpoint receives: the subscribed events of its merchant, as one fixed body."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from api.webhooks.events import (
    EVENT_TYPES,
    Subscriber,
    check_enabled_events,
    event_body,
    plan_deliveries,
    subscribes,
)
from tests.webhooks_support.events import captured


def subscriber(endpoint_id: str, merchant_id: str, *events: str, age_seconds: float = 60
               ) -> Subscriber:
    created = captured(merchant_id).time - timedelta(seconds=age_seconds)
    return Subscriber(endpoint_id, merchant_id, events or ("*",), created)


def test_event_types_come_from_the_public_contracts_without_versions() -> None:
    assert {"payment.authorized", "payment.captured", "payment.failed", "payment.voided",
            "refund.created", "dispute.created", "payout.paid"} <= set(EVENT_TYPES)
    assert not any(t.endswith(".v1") for t in EVENT_TYPES)


def test_enabled_events_are_known_types_or_a_lone_star() -> None:
    assert check_enabled_events(["payment.captured", "payment.captured"]) == ["payment.captured"]
    assert check_enabled_events(["*"]) == ["*"]
    for bad in (["*", "payment.captured"], ["payment.exploded"], []):
        with pytest.raises(ValueError):
            check_enabled_events(bad)
    assert subscribes(["*"], "refund.created")
    assert subscribes(["refund.created"], "refund.created")
    assert not subscribes(["payment.captured"], "refund.created")


def test_the_body_is_id_type_created_at_and_the_object() -> None:
    event = captured("mer_1", "pay_9")
    body = json.loads(event_body(event))
    assert list(body) == ["id", "type", "created_at", "data"]
    assert body["id"] == event.id
    assert body["type"] == "payment.captured"
    assert body["created_at"].endswith("Z")
    assert body["data"]["id"] == "pay_9" and body["data"]["amount"] == 2500
    assert event_body(event) == event_body(event)


def test_each_subscribed_endpoint_of_the_merchant_gets_one_delivery() -> None:
    mine, theirs = captured("mer_1"), captured("mer_2")
    subscribers = {
        "mer_1": [subscriber("we_all", "mer_1"),
                  subscriber("we_refunds", "mer_1", "refund.created"),
                  subscriber("we_captures", "mer_1", "payment.captured")],
        "mer_2": [subscriber("we_other", "mer_2")],
    }
    planned = plan_deliveries([mine, theirs], subscribers)
    assert {(p.event_id, p.endpoint_id) for p in planned} == {
        (mine.id, "we_all"), (mine.id, "we_captures"), (theirs.id, "we_other")}
    assert all(p.event_type == "payment.captured" for p in planned)


def test_an_endpoint_gets_no_event_from_before_it_existed() -> None:
    event = captured("mer_1")
    late = subscriber("we_new", "mer_1", age_seconds=-5)
    assert plan_deliveries([event], {"mer_1": [late]}) == []

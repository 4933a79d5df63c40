"""Which events an endpoint receives, and the exact body it receives for each.

The webhook event type is the public event's type without its version (``payment.captured``).
The body is ``{id, type, created_at, data}`` — the event id, its type, when it happened and the
object it is about — serialized once when the delivery is recorded, so every retry sends the
same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from ingest.contracts import AnyPublicEvent, DisputeEvent, PaymentEvent, PayoutEvent, RefundEvent

ALL_EVENTS = "*"
TEST_EVENT_TYPE = "webhook.test"


def _unversioned(event_type: str) -> str:
    return event_type.rsplit(".", 1)[0]


EVENT_TYPES: tuple[str, ...] = tuple(sorted({
    _unversioned(versioned)
    for model in (PaymentEvent, RefundEvent, DisputeEvent, PayoutEvent)
    for versioned in get_args(model.model_fields["type"].annotation)
}))
"""Every event type an endpoint can subscribe to, from the public contracts."""


def check_enabled_events(values: Sequence[str]) -> list[str]:
    """``values`` without duplicates, in order; ValueError naming what is wrong."""
    unique = list(dict.fromkeys(values))
    if not unique:
        raise ValueError("enabled_events needs at least one event type, or '*'")
    if ALL_EVENTS in unique and len(unique) > 1:
        raise ValueError("'*' already enables every event; give it alone")
    unknown = [value for value in unique if value != ALL_EVENTS and value not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}")
    return unique


def subscribes(enabled_events: Iterable[str], event_type: str) -> bool:
    """Whether an endpoint with ``enabled_events`` receives events of ``event_type``."""
    enabled = set(enabled_events)
    return ALL_EVENTS in enabled or event_type in enabled


def iso_utc(moment: datetime) -> str:
    """ISO 8601 with an explicit ``Z``, as every timestamp of the API."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def body_bytes(event_id: str, event_type: str, created_at: datetime, data: Any) -> bytes:
    """The delivery body: compact JSON, keys in a fixed order."""
    envelope = {"id": event_id, "type": event_type, "created_at": iso_utc(created_at),
                "data": data}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def event_body(event: AnyPublicEvent) -> bytes:
    """The body delivered for a public event; ``data`` is the object, as the API shows it."""
    return body_bytes(event.id, event.event_name, event.time, event.data.model_dump(mode="json"))


def probe_body(event_id: str, merchant_id: str, now: datetime) -> bytes:
    """The body of ``POST /api/webhooks/test``: a ``webhook.test`` event with no real object."""
    data = {"object": "test", "merchant_id": merchant_id,
            "message": "A test event from payflow: your endpoint received and verified it."}
    return body_bytes(event_id, TEST_EVENT_TYPE, now, data)


@dataclass(frozen=True, slots=True)
class Subscriber:
    """An enabled endpoint, as the sender needs it to decide what it receives."""

    endpoint_id: str
    merchant_id: str
    enabled_events: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    endpoint_id: str
    merchant_id: str
    event_id: str
    event_type: str
    event_created_at: datetime
    payload: bytes


def plan_deliveries(
    events: Iterable[AnyPublicEvent], subscribers: Mapping[str, Sequence[Subscriber]]
) -> list[PlannedDelivery]:
    """One delivery per (event, subscribed endpoint of the event's merchant).

    An endpoint receives only events that happened after it was created: a new endpoint is not
    flooded with history when the sender (re)reads a topic from its start.
    """
    planned = []
    for event in events:
        body: bytes | None = None
        for subscriber in subscribers.get(event.merchant_id, ()):
            if not subscribes(subscriber.enabled_events, event.event_name):
                continue
            if event.time < subscriber.created_at:
                continue
            body = body if body is not None else event_body(event)
            planned.append(PlannedDelivery(subscriber.endpoint_id, event.merchant_id, event.id,
                                           event.event_name, event.time, body))
    return planned

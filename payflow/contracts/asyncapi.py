"""The AsyncAPI 3.0 document of payflow's public topics (``asyncapi.yaml``).

Channels are the public topics of the catalog (with Kafka bindings: partitions, retention,
cleanup policy, the key), messages are the public event types and versions, and their payload
schemas are the same pydantic-generated schemas as ``schemas/*.json``, placed under
``components.schemas`` so the document is self-contained. The operations say what payflow does:
it sends every message; other teams receive them.
"""

from __future__ import annotations

import re
from typing import Any

from ingest.schema_export import PublicEventType, components_schemas, public_event_types
from ingest.topics import Topic

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
DOCUMENT_VERSION = "1.0.0"
"""The document's own version; each event type carries its schema version in its name."""
SCHEMAS = "#/components/schemas/"

DESCRIPTION = """\
Kafka topics that other teams consume. Every message is a JSON object with the same envelope
(CloudEvents-style field names): `id` (unique per event; a redelivered event keeps it, so
deduplicate on it), `type` (event name and schema version, e.g. `payment.captured.v1`),
`source` (the producing process), `time` (when it happened, UTC), `merchant_id`, `subject`
(the entity it is about, and the Kafka key) and `data` (typed per event type).

A published type never changes incompatibly: fields are only added (optional), enums only
gain values. Consumers ignore unknown fields, enum values and event types. A breaking change
is published as a new version (`.v2`) beside the old one for a migration window.
See docs/topics.md for the guarantees and an example consumer.
"""


def document() -> dict[str, Any]:
    """The AsyncAPI document as plain data (dump it as YAML or JSON)."""
    events = public_event_types()
    topics: list[Topic] = []
    for event in events:
        if event.topic not in topics:
            topics.append(event.topic)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": "payflow public topics", "version": DOCUMENT_VERSION,
                 "description": DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": {"development": {
            "host": "127.0.0.1:9092", "protocol": "kafka",
            "description": "The local broker of `payflow services up`. Every deployment may "
                           "prefix topic names (PAYFLOW_TOPIC_PREFIX).",
        }},
        "channels": {channel_id(t): _channel(t, events) for t in topics},
        "operations": {f"send{_pascal(t.name)}": _operation(t, events) for t in topics},
        "components": {
            "schemas": components_schemas(SCHEMAS),
            "messages": {message_id(e): _message(e) for e in events},
        },
    }


def channel_id(topic: Topic) -> str:
    """``payments.events`` → ``paymentsEvents``."""
    pascal = _pascal(topic.name)
    return pascal[0].lower() + pascal[1:]


def message_id(event: PublicEventType) -> str:
    """``payment.captured.v1`` → ``paymentCapturedV1``."""
    return event.model.__name__[0].lower() + event.model.__name__[1:]


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[._-]", name))


def _channel(topic: Topic, events: tuple[PublicEventType, ...]) -> dict[str, Any]:
    ids = [message_id(e) for e in events if e.topic == topic]
    return {
        "address": topic.name,
        "title": topic.name,
        "description": f"{topic.description} Keyed by {topic.key}: messages with the same key "
                       f"are in one partition, in the order they happened.",
        "messages": {mid: {"$ref": f"#/components/messages/{mid}"} for mid in ids},
        "bindings": {"kafka": {
            "topic": topic.name,
            "partitions": topic.partitions,
            "topicConfiguration": {
                "cleanup.policy": ["compact" if topic.compacted else "delete"],
                "retention.ms": topic.retention_ms,
            },
            "bindingVersion": KAFKA_BINDING_VERSION,
        }},
    }


def _operation(topic: Topic, events: tuple[PublicEventType, ...]) -> dict[str, Any]:
    cid = channel_id(topic)
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{cid}"},
        "summary": f"payflow publishes to {topic.name}; consumers receive with their own "
                   f"consumer group.",
        "messages": [{"$ref": f"#/channels/{cid}/messages/{message_id(e)}"}
                     for e in events if e.topic == topic],
    }


def _message(event: PublicEventType) -> dict[str, Any]:
    return {
        "name": event.type_name,
        "title": f"{event.name} ({event.version})",
        "summary": event.summary,
        "contentType": "application/json",
        "payload": {"$ref": f"{SCHEMAS}{event.model.__name__}"},
        "bindings": {"kafka": {
            "key": {"type": "string", "description": f"The {event.topic.key}."},
            "bindingVersion": KAFKA_BINDING_VERSION,
        }},
    }

"""asyncapi.yaml is a valid AsyncAPI 3.0 document — checked against the official JSON Schema of
AsyncAPI 3.0.0, from the npm package ``@asyncapi/specs`` that ``scripts/setup`` fetches — and
describes exactly the public topics and event types."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

from ingest.schema_export import public_event_types, public_topics
from payflow.contracts import files
from payflow.settings import REPO_ROOT, get_settings

SPECS_VERSION = "6.11.1"
"""The @asyncapi/specs release scripts/setup fetches (keep the two in step)."""


def asyncapi_3_schema() -> dict[str, Any]:
    """The official AsyncAPI 3.0.0 JSON Schema (draft-07, every definition bundled by $id)."""
    path = (get_settings().home / "cache" / f"asyncapi-specs-{SPECS_VERSION}" / "package"
            / "schemas" / "3.0.0.json")
    if not path.is_file():
        pytest.fail(f"the AsyncAPI 3.0.0 JSON Schema is missing ({path}): run scripts/setup, "
                    f"which fetches it with `npm pack @asyncapi/specs@{SPECS_VERSION}`",
                    pytrace=False)
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def committed_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO_ROOT / files.ASYNCAPI).read_text())
    return document


def test_the_document_is_valid_against_the_official_asyncapi_3_schema() -> None:
    validator = Draft7Validator(asyncapi_3_schema())
    document = committed_document()
    assert document["asyncapi"] == "3.0.0"
    error = best_match(validator.iter_errors(document))
    assert error is None, f"asyncapi.yaml is not valid AsyncAPI 3.0: {error}"


def test_the_official_schema_catches_a_broken_document() -> None:
    """Guards the test above: the bundled $refs resolve, so nested mistakes are found."""
    validator = Draft7Validator(asyncapi_3_schema())
    document = committed_document()
    channel = next(iter(document["channels"].values()))
    channel["bindings"]["kafka"]["partitions"] = 0
    assert not validator.is_valid(document)
    document = committed_document()
    next(iter(document["components"]["messages"].values()))["payload"] = "not a schema"
    assert not validator.is_valid(document)


def test_every_reference_in_the_document_resolves() -> None:
    document = committed_document()
    refs = list(_refs(document))
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"unresolved $ref {ref}"
            node = node[part]


def test_channels_are_the_public_topics_and_messages_their_event_types() -> None:
    document = committed_document()
    addresses = {channel["address"]: channel for channel in document["channels"].values()}
    assert set(addresses) == {topic.name for topic in public_topics()}
    names = {message["name"] for message in document["components"]["messages"].values()}
    assert names == {event.type_name for event in public_event_types()}
    for topic in public_topics():
        kafka = addresses[topic.name]["bindings"]["kafka"]
        assert kafka["partitions"] == topic.partitions
        assert kafka["topicConfiguration"]["retention.ms"] == topic.retention_ms
    for operation in document["operations"].values():
        assert operation["action"] == "send"


def _refs(node: Any) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


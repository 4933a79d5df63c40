"""The public contract as data: which topics are public, which event types and versions each
carries, and a JSON Schema per event type — generated from the pydantic models in
``ingest.contracts`` and the topic catalog in ``ingest.topics``, so that the published files
(``schemas/``, ``asyncapi.yaml``, ``docs/topics.md``) cannot drift from the code.

A model such as ``PaymentEvent`` carries several types (``payment.captured.v1``, ...); each type
gets a model of its own here, the same fields with ``type`` narrowed to that one value, so every
published schema describes exactly one type and version.

The schemas are the validation-mode JSON Schemas of the models with three edits, each part of
the contract stated in docs/topics.md:

- ``additionalProperties: false`` is dropped: consumers must ignore fields they do not know,
  so that adding an optional field is a compatible change;
- the envelope's ``id``, ``type`` and ``time`` are required (producers always set them; their
  defaults are only conveniences of the Python constructors);
- field docstrings become ``description``s.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import re
import textwrap
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel, create_model
from pydantic.json_schema import models_json_schema

from ingest import contracts
from ingest.contracts import (
    Contract,
    DisputeEvent,
    Message,
    PaymentDecided,
    PaymentEvent,
    PayoutEvent,
    RefundEvent,
)
from ingest.topics import CATALOG, PAYMENT_DECISIONS, PAYMENT_EVENTS, PAYOUTS, Topic, Visibility

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE_REQUIRED = ("id", "type", "source", "time", "merchant_id", "subject", "data")

PUBLIC_MESSAGES: dict[str, tuple[type[Message], ...]] = {
    PAYMENT_EVENTS.name: (PaymentEvent, RefundEvent, DisputeEvent),
    PAYMENT_DECISIONS.name: (PaymentDecided,),
    PAYOUTS.name: (PayoutEvent,),
}
"""The message models each public topic carries (a test checks every public topic is here)."""

SUMMARIES: dict[str, str] = {
    "payment.authorized": "The issuer approved a card payment and the amount is held; a capture "
                          "or a void follows.",
    "payment.captured": "Funds were captured: all or part of an authorization, a payment "
                        "created with `capture: true`, or a bank transfer that cleared.",
    "payment.failed": "Declined by the issuer or by risk (`decline_code` says why). Final.",
    "payment.voided": "The authorization was released without a capture. Final.",
    "payment.refunded": "The payment is fully refunded (`refunded_amount == captured_amount`); "
                        "it follows the last `refund.created`.",
    "refund.created": "A full or partial refund; `data` is the refund, with its `payment_id`.",
    "dispute.created": "A chargeback on a captured payment; `data` is the dispute. The payment "
                       "stays `captured` with `disputed_amount` set.",
    "payment.decided": "The risk engine's decision on a new payment: outcome, fraud score, risk "
                       "level, flags, the model version and the feature vector it scored.",
    "payout.created": "Settlement created a payout of a merchant's available balance in one "
                      "currency.",
    "payout.paid": "The payout reached the merchant.",
}
"""What each event name means (all versions of a name share it)."""


@dataclass(frozen=True, slots=True)
class PublicEventType:
    """One published event type and version, e.g. ``payment.captured.v1``."""

    type_name: str
    topic: Topic
    contract: type[Message]
    """The model in ``ingest.contracts`` that producers build (it may carry several types)."""
    model: type[Message]
    """``contract`` with ``type`` narrowed to this one value."""

    @property
    def name(self) -> str:
        """The type without its version (``payment.captured``): the webhook event type."""
        return self.type_name.rsplit(".", 1)[0]

    @property
    def version(self) -> str:
        return self.type_name.rsplit(".", 1)[1]

    @property
    def summary(self) -> str:
        return SUMMARIES[self.name]

    @property
    def schema_path(self) -> str:
        """Where its JSON Schema is published, relative to the repository root."""
        return f"schemas/{self.type_name}.json"


def public_topics() -> tuple[Topic, ...]:
    """The catalog's public topics, in catalog order."""
    return tuple(topic for topic in CATALOG if topic.visibility is Visibility.PUBLIC)


@functools.cache
def public_event_types() -> tuple[PublicEventType, ...]:
    """Every published type, per public topic in catalog order, then in declaration order."""
    found: list[PublicEventType] = []
    for topic in public_topics():
        for contract in PUBLIC_MESSAGES.get(topic.name, ()):
            for type_name in get_args(contract.model_fields["type"].annotation):
                assert isinstance(type_name, str), contract
                found.append(PublicEventType(type_name, topic, contract,
                                             _narrowed(contract, type_name)))
    return tuple(found)


def _narrowed(contract: type[Message], type_name: str) -> type[Message]:
    """``contract`` with ``type: Literal[type_name]`` (required), named ``PaymentCapturedV1``."""
    name = "".join(part.capitalize() for part in re.split(r"[._]", type_name))
    literal: Any = Literal[type_name]  # a Literal built at run time, for pydantic
    model: type[Message] = create_model(
        name, __base__=contract, __module__=__name__, __doc__=contract.__doc__,
        type=(literal, ...),
    )
    return model


def event_schema(event: PublicEventType) -> dict[str, Any]:
    """The published JSON Schema (2020-12) of one event type."""
    schema = event.model.model_json_schema()
    _polish(schema, _known_classes(event.model))
    schema["required"] = _envelope_required(schema)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:payflow:schema:{event.type_name}",
        "title": event.type_name,
        "description": f"{event.summary} Published on `{event.topic.name}`, keyed by "
                       f"{event.topic.key}.",
        **{key: value for key, value in schema.items() if key not in ("title", "description")},
    }


def envelope_schema() -> dict[str, Any]:
    """The envelope every public message shares (``data`` is typed per event type)."""
    schema = Message.model_json_schema()
    _polish(schema, _known_classes(Message))
    schema["properties"]["data"] = {"description": "The payload: the object the event is "
                                                   "about, typed per event type."}
    schema["required"] = list(ENVELOPE_REQUIRED)
    schema["title"] = "Envelope"
    return schema


def components_schemas(ref_prefix: str) -> dict[str, Any]:
    """Every event type's schema and the objects they share, with ``$ref``s under
    ``ref_prefix`` (e.g. ``#/components/schemas/``): for the AsyncAPI document."""
    events = public_event_types()
    _, top = models_json_schema([(event.model, "validation") for event in events],
                                ref_template=ref_prefix + "{model}")
    definitions: dict[str, Any] = top.get("$defs", {})
    classes: dict[str, type[BaseModel]] = {}
    for event in events:
        classes.update(_known_classes(event.model))
    for name, schema in definitions.items():
        _polish(schema, classes)
        if name in {event.model.__name__ for event in events}:
            schema["required"] = _envelope_required(schema)
    return {"Envelope": envelope_schema(), **definitions}


def _envelope_required(schema: dict[str, Any]) -> list[str]:
    required: list[str] = schema.get("required", [])
    return [*ENVELOPE_REQUIRED, *(name for name in required if name not in ENVELOPE_REQUIRED)]


def _polish(node: Any, classes: dict[str, type[BaseModel]]) -> None:
    """Drop ``additionalProperties: false`` and field titles; add field docstrings as
    descriptions."""
    if isinstance(node, list):
        for item in node:
            _polish(item, classes)
        return
    if not isinstance(node, dict):
        return
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    if isinstance(node.get("description"), str):  # reStructuredText ``code`` → Markdown `code`
        node["description"] = node["description"].replace("``", "`")
    if isinstance(node.get("properties"), dict):
        model = classes.get(node.get("title", ""))
        docs = attribute_docs(model) if model is not None else {}
        for field, prop in node["properties"].items():
            prop.pop("title", None)  # pydantic's title-cased field name says nothing new
            if field in docs and "description" not in prop:
                prop["description"] = docs[field].replace("``", "`")
    for value in node.values():
        _polish(value, classes)


def _known_classes(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Models whose schemas may appear in ``model``'s: the contracts and ``model`` itself."""
    known: dict[str, type[BaseModel]] = {
        name: value for name, value in vars(contracts).items()
        if isinstance(value, type) and issubclass(value, Contract)
    }
    known[model.__name__] = model
    return known


def attribute_docs(model: type[BaseModel]) -> dict[str, str]:
    """Field docstrings (a string literal right under a field) of ``model`` and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if issubclass(klass, Contract):
            docs.update(_own_attribute_docs(klass))
    return docs


@functools.cache
def _own_attribute_docs(klass: type[BaseModel]) -> dict[str, str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
    except (OSError, TypeError):  # built at run time (create_model): no source
        return {}
    definition = tree.body[0]
    assert isinstance(definition, ast.ClassDef), klass
    docs: dict[str, str] = {}
    for statement, following in itertools.pairwise(definition.body):
        if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[statement.target.id] = inspect.cleandoc(following.value.value)
    return docs

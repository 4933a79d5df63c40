"""The committed contract files (docs/topics.md, schemas/, asyncapi.yaml) are exactly what the
code generates, every public topic is described, and every message a producer can build is
valid against its published schema."""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ingest.contracts import (
    CardSummary,
    Customer,
    Decision,
    DisputeEvent,
    DisputeObject,
    Message,
    PaymentDecided,
    PaymentEvent,
    PaymentMethodSummary,
    PayoutEvent,
    PayoutObject,
    RefundEvent,
    RefundObject,
    Transaction,
)
from ingest.schema_export import PUBLIC_MESSAGES, SUMMARIES, public_event_types, public_topics
from payflow.contracts import files
from payflow.settings import REPO_ROOT

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ENVELOPE: dict[str, Any] = {"source": "test", "merchant_id": "mer_1", "subject": "pay_1"}


def test_the_committed_contract_files_are_up_to_date() -> None:
    stale = files.stale_files(REPO_ROOT, files.generated_files())
    assert not stale, (f"stale contract files: {stale}. Run `{files.GENERATE_COMMAND}` and "
                       f"commit the result.")


def test_every_public_topic_of_the_catalog_has_its_message_contracts() -> None:
    missing = {topic.name for topic in public_topics()} - set(PUBLIC_MESSAGES)
    assert not missing, (f"public topics without message contracts: {missing}; add their "
                         f"models to PUBLIC_MESSAGES in ingest/schema_export.py")
    assert set(PUBLIC_MESSAGES) <= {topic.name for topic in public_topics()}
    assert {"payments.events", "payments.decisions", "payouts"} <= set(PUBLIC_MESSAGES)


def test_every_event_type_has_a_summary_and_a_version_in_its_name() -> None:
    for event in public_event_types():
        assert re.fullmatch(r"[a-z]+(\.[a-z_]+)+\.v\d+", event.type_name), event.type_name
        assert event.name in SUMMARIES


@pytest.mark.parametrize("event", public_event_types(), ids=lambda e: e.type_name)
def test_each_published_schema_is_valid_json_schema_and_accepts_real_messages(event: Any) -> None:
    schema = json.loads((REPO_ROOT / event.schema_path).read_text())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    message = json.loads(example(event.type_name).encode())
    assert not list(validator.iter_errors(message))
    for required in ("id", "type", "time", "merchant_id", "subject", "data"):
        incomplete = {k: v for k, v in message.items() if k != required}
        assert not validator.is_valid(incomplete), f"{required} must be required"
    assert not validator.is_valid({**message, "type": "something.else.v1"})


def test_a_schema_describes_fields_from_their_docstrings() -> None:
    schema = files.generated_schemas()["payment.captured.v1"]
    assert "deduplicate" in schema["properties"]["id"]["description"]
    card = schema["$defs"]["CardSummary"]["properties"]["fingerprint"]
    assert "HMAC" in card["description"]
    assert "additionalProperties" not in schema["$defs"]["Transaction"]  # tolerant readers


def test_the_example_consumer_in_the_docs_is_valid_python() -> None:
    docs = (REPO_ROOT / files.DOCS).read_text()
    blocks = re.findall(r"```python\n(.*?)```", docs, flags=re.DOTALL)
    assert blocks, "docs/topics.md has no example consumer"
    tree = ast.parse(blocks[-1])
    source = ast.unparse(tree)
    for needed in ("AIOKafkaConsumer", "group_id", "enable_auto_commit=False", "commit()",
                   "event['id']"):
        assert needed in source, needed


def example(type_name: str) -> Message:
    """A message of ``type_name`` as its producer builds it."""
    if type_name.startswith("payment.decided"):
        return PaymentDecided(**ENVELOPE, data=Decision(
            payment_id="pay_1", outcome="approve", fraud_score=12, risk_level="low",
            model_version="m1", features={"amount_z": 0.5}))
    if type_name.startswith("payout."):
        return PayoutEvent(type=type_name, **{**ENVELOPE, "subject": "mer_1"}, data=PayoutObject(
            id="po_1", merchant_id="mer_1", amount=9_680, currency="USD", status="paid",
            settlement_date=date(2025, 3, 1), created_at=NOW))
    if type_name.startswith("refund."):
        return RefundEvent(**ENVELOPE, data=RefundObject(
            id="re_1", payment_id="pay_1", merchant_id="mer_1", amount=500, currency="USD",
            reason="requested_by_customer", created_at=NOW))
    if type_name.startswith("dispute."):
        return DisputeEvent(**ENVELOPE, data=DisputeObject(
            id="dp_1", payment_id="pay_1", merchant_id="mer_1", amount=500, currency="USD",
            reason="fraudulent", card_fingerprint="fp", payment_created_at=NOW,
            created_at=NOW))
    return PaymentEvent(type=type_name, **ENVELOPE, data=transaction())


def transaction() -> Transaction:
    card = CardSummary(brand="visa", funding="credit", last4="4242", exp_month=12,
                       exp_year=2030, fingerprint="fp")
    return Transaction(
        id="pay_1", merchant_id="mer_1", amount=10_000, currency="USD", captured_amount=10_000,
        refunded_amount=0, status="captured", fraud_score=12, risk_level="low", fraud_flags=(),
        decline_code=None, processor_ref="ch_1",
        payment_method=PaymentMethodSummary(id="pm_1", type="card", card=card),
        description=None, customer=Customer(id="cus_1"), metadata={"order": "1"},
        created_at=NOW, updated_at=NOW)

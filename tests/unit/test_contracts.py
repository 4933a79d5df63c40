"""Message contracts: versioned envelopes, strict payloads, no card numbers on the wire."""

from __future__ import annotations

import uuid

import pytest

from ingest.contracts import (
    CardSummary,
    PaymentMethodSummary,
    PaymentRequest,
    PaymentRequested,
    UndecodableMessage,
    decode_request,
    new_message_id,
    new_message_ids,
)
from ingest.topics import CATALOG


def request(**changes: object) -> PaymentRequest:
    fields: dict[str, object] = {
        "payment_id": "pay_1",
        "amount": 2500,
        "currency": "USD",
        "payment_method": PaymentMethodSummary(
            id="pm_1", type="card",
            card=CardSummary(brand="visa", funding="credit", last4="4242", exp_month=12,
                             exp_year=2030, fingerprint="f" * 32),
        ),
    }
    fields.update(changes)
    return PaymentRequest(**fields)  # type: ignore[arg-type]


def test_a_message_round_trips_through_its_bytes_with_id_type_time_and_merchant() -> None:
    message = PaymentRequested(source="test", merchant_id="mer_1", subject="pay_1",
                               data=request())
    decoded = decode_request(message.encode())
    assert decoded == message
    assert decoded.type == "payment.requested.v1"
    assert decoded.time.tzinfo is not None
    assert message.key() == b"pay_1"


def test_garbage_and_unknown_fields_are_undecodable_not_crashes() -> None:
    with pytest.raises(UndecodableMessage):
        decode_request(b"not json")
    with pytest.raises(UndecodableMessage):
        decode_request(None)
    good = PaymentRequested(source="t", merchant_id="m", subject="p", data=request())
    tampered = good.encode().replace(b'"source"', b'"surprise":1,"source"')
    with pytest.raises(UndecodableMessage):
        decode_request(tampered)


def test_amounts_are_strict_integers() -> None:
    with pytest.raises(ValueError):
        request(amount=25.0)
    with pytest.raises(ValueError):
        request(amount=0)


def test_a_card_summary_serializes_without_a_bank_account_and_has_no_number() -> None:
    dumped = request().payment_method.model_dump(mode="json")
    assert "bank_account" not in dumped
    assert set(dumped["card"]) == {"brand", "funding", "last4", "exp_month", "exp_year",
                                   "fingerprint"}


def test_the_catalog_has_unique_names_and_sensible_partitions() -> None:
    names = [topic.name for topic in CATALOG]
    assert len(names) == len(set(names))
    assert all(topic.partitions >= 1 for topic in CATALOG)
    assert CATALOG[0].name_for("test.abc.") == "test.abc.payments.requests"


def test_message_ids_are_random_version_4_uuids_in_hex() -> None:
    ids = [new_message_id() for _ in range(1_000)] + new_message_ids(1_000) + new_message_ids(1)
    assert new_message_ids(0) == []
    assert len(set(ids)) == len(ids) == 2_001
    for message_id in ids:
        parsed = uuid.UUID(hex=message_id)
        assert parsed.hex == message_id
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)

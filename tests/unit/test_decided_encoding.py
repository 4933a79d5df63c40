"""The stream worker's decision encoding without pydantic gives the very bytes the
``PaymentDecided`` contract gives, for any decision it can make."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.contracts import Decision, PaymentDecided, decode_decision, encode_decided

texts = st.text(min_size=1, max_size=40)
decisions = st.fixed_dictionaries({
    "message_id": st.uuids().map(lambda u: u.hex),
    "time": st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                         timezones=st.just(UTC)),
    "source": texts,
    "merchant_id": texts,
    "payment_id": texts,
    "outcome": st.sampled_from(["approve", "review", "decline"]),
    "fraud_score": st.integers(0, 100),
    "risk_level": st.sampled_from(["low", "medium", "high"]),
    "fraud_flags": st.lists(texts, max_size=4).map(tuple),
    "decline_code": st.none() | texts,
    "model_version": texts,
    "features": st.dictionaries(texts, st.integers(-10**6, 10**6)
                                | st.floats(allow_nan=False, allow_infinity=False), max_size=30),
    "degraded": st.booleans(),
    "reply_to": st.none() | texts,
})


def contract(values: dict[str, Any]) -> PaymentDecided:
    data = {name: values[name] for name in (
        "payment_id", "outcome", "fraud_score", "risk_level", "fraud_flags", "decline_code",
        "model_version", "features", "degraded", "reply_to")}
    return PaymentDecided(id=values["message_id"], source=values["source"], time=values["time"],
                          merchant_id=values["merchant_id"], subject=values["payment_id"],
                          data=Decision(**data))


@settings(max_examples=300, deadline=None)
@given(decisions)
def test_the_fast_encoding_is_the_contracts_byte_for_byte(values: dict[str, Any]) -> None:
    encoded = encode_decided(**values)
    assert encoded == contract(values).encode()
    assert decode_decision(encoded) == contract(values)


def test_whole_seconds_and_integral_features_encode_as_the_contract_does() -> None:
    values = {"message_id": "0" * 32, "time": datetime(2026, 11, 27, 3, 0, tzinfo=UTC),
              "source": "payflow/streams", "merchant_id": "m_1", "payment_id": "pay_1",
              "outcome": "decline", "fraud_score": 100, "risk_level": "high",
              "fraud_flags": ("Blocked test card",), "decline_code": "fraudulent",
              "model_version": "rules-only", "features": {"card_count_1m": 3, "amount_log": 0.5},
              "degraded": True, "reply_to": None}
    encoded = encode_decided(**values)
    assert encoded == contract(values).encode()
    assert b'"time":"2026-11-27T03:00:00Z"' in encoded and b'"card_count_1m":3.0' in encoded

"""Webhook signatures: both schemes, checked against the Standard Webhooks reference verifier
and against a second implementation written here from the specification."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as ReferenceError_

from ingest.webhook_signature import (
    WebhookVerificationError,
    secret_from_key,
    secret_key,
    seed_sign,
    sign,
    signature_headers,
    verify,
    verify_seed_signature,
)

SECRET = secret_from_key(bytes(range(32)))
NOW = 1_700_000_000
BODY = b'{"id":"evt_1","type":"payment.captured","created_at":"2024-01-01T00:00:00Z","data":{}}'


def test_the_specification_example_signs_as_published() -> None:
    # The worked example of the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_secret_is_whsec_and_the_base64_of_its_key() -> None:
    assert SECRET.startswith("whsec_")
    assert secret_key(SECRET) == bytes(range(32))
    with pytest.raises(ValueError, match="base64"):
        secret_key("whsec_not base64!")


def test_signed_headers_verify_with_our_verifier_and_the_reference_one() -> None:
    headers = signature_headers([SECRET], "msg_1", NOW, BODY)
    verify(SECRET, headers, BODY, now=NOW + 10)
    reference = Webhook(SECRET)
    fresh = signature_headers([SECRET], "msg_1", int(datetime.now(UTC).timestamp()), BODY)
    assert reference.verify(BODY, fresh)["id"] == "evt_1"


def test_the_signature_is_an_hmac_of_id_timestamp_and_body_keyed_by_the_decoded_secret(
) -> None:
    # A second implementation, straight from the specification's text.
    key = base64.b64decode(SECRET.split("_", 1)[1])
    mac = hmac.new(key, b"msg_1." + str(NOW).encode() + b"." + BODY, hashlib.sha256).digest()
    assert sign(SECRET, "msg_1", NOW, BODY) == "v1," + base64.b64encode(mac).decode()


def test_the_seed_signature_is_hex_hmac_of_the_body_keyed_by_the_secret_string() -> None:
    expected = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert seed_sign(SECRET, BODY) == f"sha256={expected}"
    headers = signature_headers([SECRET], "msg_1", NOW, BODY)
    assert headers["X-Webhook-Signature"] == f"sha256={expected}"
    verify_seed_signature(SECRET, headers["X-Webhook-Signature"], BODY)


@pytest.mark.parametrize("skew", [-301, 301])
def test_a_timestamp_more_than_five_minutes_off_is_refused(skew: int) -> None:
    headers = signature_headers([SECRET], "msg_1", NOW, BODY)
    with pytest.raises(WebhookVerificationError, match="too"):
        verify(SECRET, headers, BODY, now=NOW - skew)
    verify(SECRET, headers, BODY, now=NOW - skew + (-1 if skew < 0 else 1))


def test_a_changed_body_id_or_timestamp_does_not_verify() -> None:
    headers = signature_headers([SECRET], "msg_1", NOW, BODY)
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, headers, BODY + b" ", now=NOW)
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, {**headers, "webhook-id": "msg_2"}, BODY, now=NOW)
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, {**headers, "webhook-timestamp": str(NOW + 1)}, BODY, now=NOW)
    with pytest.raises(WebhookVerificationError):
        verify_seed_signature(SECRET, headers["X-Webhook-Signature"], BODY + b" ")


def test_missing_headers_do_not_verify() -> None:
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify(SECRET, {"webhook-id": "msg_1"}, BODY, now=NOW)


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    new = secret_from_key(bytes(range(1, 33)))
    headers = signature_headers([new, SECRET], "msg_1", NOW, BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert len(headers["X-Webhook-Signature"].split(" ")) == 2
    for secret in (new, SECRET):
        verify(secret, headers, BODY, now=NOW)
        verify_seed_signature(secret, headers["X-Webhook-Signature"], BODY)
    stranger = secret_from_key(bytes(32))
    with pytest.raises(WebhookVerificationError):
        verify(stranger, headers, BODY, now=NOW)


def test_header_names_are_matched_in_any_case() -> None:
    headers = signature_headers([SECRET], "msg_1", NOW, BODY)
    verify(SECRET, {name.upper(): value for name, value in headers.items()}, BODY, now=NOW)


@given(key=st.binary(min_size=24, max_size=64), msg_id=st.text(min_size=1, max_size=40).filter(
    lambda s: " " not in s and "." not in s), body=st.binary(max_size=300))
def test_whatever_we_sign_the_reference_verifier_accepts(key: bytes, msg_id: str,
                                                         body: bytes) -> None:
    secret = secret_from_key(key)
    timestamp = int(datetime.now(UTC).timestamp())
    text = body.decode("latin-1").encode()  # the reference verifier signs the UTF-8 text
    headers = signature_headers([secret], msg_id, timestamp, text)
    Webhook(secret).verify(text, headers, json_parse=False)
    stranger = secret_from_key(hashlib.sha256(key).digest())
    with pytest.raises(ReferenceError_):
        Webhook(stranger).verify(text, headers, json_parse=False)

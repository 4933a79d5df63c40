"""Signing and verifying payflow's webhooks: pure functions, no I/O, for the sender and merchants.

Every delivery carries two signatures over the exact body bytes:

- Standard Webhooks (https://www.standardwebhooks.com): headers ``webhook-id``,
  ``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
  "{id}.{timestamp}.{body}">``, keyed with the base64-decoded bytes after ``whsec_``;
- the seed's ``X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the body>``, keyed with the
  secret string exactly as shown to the merchant (``whsec_...``, UTF-8).

While a rotated secret is still in its overlap period both secrets sign: each header then holds
two signatures separated by a space, the newest first, and a receiver accepts a message when any
of them matches the secret it knows. ``verify`` checks the Standard Webhooks headers and the
timestamp tolerance (5 minutes, against replay); ``verify_seed_signature`` checks the seed header,
which signs no timestamp and so does not protect against replay on its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60
SIGNATURE_VERSION = "v1"
SEED_SCHEME = "sha256"


class WebhookVerificationError(ValueError):
    """The message is not authentic, or too old or too new to be trusted."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of the Standard Webhooks scheme: the bytes behind ``whsec_<base64>``."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as error:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from error
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def secret_from_key(key: bytes) -> str:
    """The secret string shown to merchants for raw key bytes (``whsec_`` + base64)."""
    assert len(key) >= 24, "webhook secrets need at least 24 random bytes"
    return SECRET_PREFIX + base64.b64encode(key).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature, ``v1,<base64>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def seed_sign(secret: str, body: bytes) -> str:
    """The seed's signature, ``sha256=<hex>``, keyed with the secret string itself."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"{SEED_SCHEME}={digest}"


def signature_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Every signing header of one attempt; ``secrets`` newest first (two while rotating)."""
    assert secrets, "a webhook needs at least one signing secret"
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
        "X-Webhook-Signature": " ".join(seed_sign(s, body) for s in secrets),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance_seconds: int = TOLERANCE_SECONDS,
) -> None:
    """Check the Standard Webhooks headers of ``body``; WebhookVerificationError if not valid.

    ``headers`` may use any letter case. ``now`` (Unix seconds) defaults to the clock.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp_text = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (msg_id and timestamp_text and signatures):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or signature")
    timestamp = _timestamp_within(timestamp_text, now, tolerance_seconds)
    expected = sign(secret, msg_id, timestamp, body)
    if not _any_matches(expected, signatures.split()):
        raise WebhookVerificationError("no matching signature")


def verify_seed_signature(secret: str, header: str, body: bytes) -> None:
    """Check an ``X-Webhook-Signature`` header; WebhookVerificationError if none matches."""
    if not _any_matches(seed_sign(secret, body), header.split()):
        raise WebhookVerificationError("no matching X-Webhook-Signature")


def _timestamp_within(text: str, now: float | None, tolerance_seconds: int) -> int:
    try:
        timestamp = int(text)
    except ValueError as error:
        raise WebhookVerificationError("webhook-timestamp is not Unix seconds") from error
    current = time.time() if now is None else now
    if timestamp < current - tolerance_seconds:
        raise WebhookVerificationError("message timestamp too old")
    if timestamp > current + tolerance_seconds:
        raise WebhookVerificationError("message timestamp too new")
    return timestamp


def _any_matches(expected: str, candidates: Sequence[str]) -> bool:
    wanted = expected.encode()
    return any(hmac.compare_digest(wanted, candidate.encode()) for candidate in candidates)

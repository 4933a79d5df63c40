"""Secret API keys: generation, and the split into a lookup prefix and a stored hash.

A key is ``sk_test_`` + 12 characters of lookup prefix + 32 characters of secret, all random.
Only the prefix and SHA-256 of the whole key are stored; a request's key is found by its prefix
and accepted when its hash matches in constant time. SHA-256 (not a slow password hash) is
right here: the key has 256 bits of randomness, nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

KEY_PREFIX = "sk_test_"
LOOKUP_LENGTH = 12
SECRET_LENGTH = 32
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str
    """The whole secret key: shown once to the merchant, never stored."""
    lookup: str
    key_hash: bytes


def generate_key() -> NewKey:
    lookup = "".join(secrets.choice(_ALPHABET) for _ in range(LOOKUP_LENGTH))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))
    key = f"{KEY_PREFIX}{lookup}{secret}"
    return NewKey(key, lookup, hash_key(key))


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def lookup_of(key: str) -> str | None:
    """The lookup prefix of a well-formed key, else None."""
    expected_length = len(KEY_PREFIX) + LOOKUP_LENGTH + SECRET_LENGTH
    if not key.startswith(KEY_PREFIX) or len(key) != expected_length:
        return None
    return key[len(KEY_PREFIX) : len(KEY_PREFIX) + LOOKUP_LENGTH]


def key_matches(key: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)

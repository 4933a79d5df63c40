"""Dashboard login's pure parts: argon2id hashes, password rules, cookie attributes."""

from __future__ import annotations

import pytest

from api.passwords import WeakPassword, burn_time, hash_password, verify
from api.routes.dashboard_auth import cookie_options
from payflow.settings import Settings


def test_passwords_are_stored_as_argon2id_hashes_that_verify() -> None:
    stored = hash_password("a long enough password")
    assert stored.startswith("$argon2id$")
    assert "a long enough password" not in stored
    assert verify(stored, "a long enough password") == (True, False)
    assert verify(stored, "another password") == (False, False)


def test_a_malformed_hash_or_huge_password_is_a_mismatch_not_an_error() -> None:
    assert verify("not-a-hash", "whatever") == (False, False)
    assert verify(hash_password("x" * 20), "x" * 10_000) == (False, False)
    burn_time("anything")


def test_short_passwords_are_refused() -> None:
    with pytest.raises(WeakPassword):
        hash_password("short")


def test_the_session_cookie_is_httponly_lax_and_secure_only_in_production() -> None:
    development = cookie_options(Settings(environment="development"))
    production = cookie_options(Settings(environment="production"))
    assert development == {"path": "/", "httponly": True, "samesite": "lax", "secure": False}
    assert production["secure"] is True and production["httponly"] is True

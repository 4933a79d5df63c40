"""Dashboard password hashing: argon2id (RFC 9106) via argon2-cffi.

Only the encoded hash (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) is stored. ``verify``
also reports when a hash was made with weaker parameters than today's, so a successful login
can upgrade it. For an unknown email, ``burn_time`` verifies against a fixed dummy hash so
that the answer takes as long as for a known one (no user enumeration by timing).
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256

# OWASP's recommended argon2id minimum: 19 MiB memory, 2 iterations, 1 lane.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
_DUMMY_HASH = _hasher.hash("payflow-dummy-password-for-timing")


class WeakPassword(ValueError):
    """A new password that does not meet the length rule."""


def check_new_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise WeakPassword(
            f"a password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )


def hash_password(password: str) -> str:
    check_new_password(password)
    return _hasher.hash(password)


def verify(password_hash: str, password: str) -> tuple[bool, bool]:
    """(matches, needs_rehash). Never raises for a wrong password or a malformed hash."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False, False
    try:
        _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, _hasher.check_needs_rehash(password_hash)


def burn_time(password: str) -> None:
    """Spend one verification's time for a login whose email is unknown."""
    verify(_DUMMY_HASH, password)

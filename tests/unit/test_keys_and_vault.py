"""Secrets at rest: API keys are stored as hashes, card numbers as AES-GCM ciphertext."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag

from api.keys import generate_key, key_matches, lookup_of
from api.vault import Vault


def test_a_new_key_is_found_by_its_prefix_and_matches_only_its_hash() -> None:
    new = generate_key()
    assert new.key.startswith("sk_test_")
    assert lookup_of(new.key) == new.lookup
    assert key_matches(new.key, new.key_hash)
    assert not key_matches(new.key[:-1] + "x", new.key_hash)
    assert new.key.encode() not in new.key_hash


def test_malformed_keys_have_no_lookup_prefix() -> None:
    assert lookup_of("sk_live_abc") is None
    assert lookup_of("") is None


def test_the_vault_round_trips_and_binds_ciphertext_to_its_token() -> None:
    vault = Vault(base64.b64encode(bytes(range(32))).decode())
    sealed = vault.seal("4242424242424242", "pm_1")
    assert b"4242424242424242" not in sealed
    assert vault.open(sealed, "pm_1") == "4242424242424242"
    with pytest.raises(InvalidTag):
        vault.open(sealed, "pm_2")


def test_the_vault_refuses_a_short_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Vault(base64.b64encode(b"short").decode())

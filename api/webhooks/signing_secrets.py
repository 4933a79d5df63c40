"""Endpoint signing secrets: generated once, shown once, stored sealed by the vault.

Why encryption and not a hash (as for API keys): the sender must compute an HMAC with the secret
for every delivery, so it needs the secret itself. It is sealed with AES-256-GCM by
``api.vault.Vault`` (key ``PAYFLOW_VAULT_KEY``, shared by the API and the sender), with the
endpoint id as associated data so a ciphertext copied to another endpoint's row does not open.
A database dump alone therefore reveals no secret.
"""

from __future__ import annotations

import os

from api.vault import Vault
from ingest.webhook_signature import secret_from_key

SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh ``whsec_`` + base64 of 32 random bytes."""
    return secret_from_key(os.urandom(SECRET_BYTES))


def _associated_data(endpoint_id: str) -> str:
    return f"webhook_endpoint:{endpoint_id}"


def seal_secret(vault: Vault, endpoint_id: str, secret: str) -> bytes:
    return vault.seal(secret, _associated_data(endpoint_id))


def open_secret(vault: Vault, endpoint_id: str, ciphertext: bytes) -> str:
    return vault.open(ciphertext, _associated_data(endpoint_id))

"""The card vault's cipher: AES-256-GCM with a key from the environment.

Ciphertext layout: 1 byte key version, 12 bytes nonce, then the sealed bytes. The key version
lets a new key be introduced (``PAYFLOW_VAULT_KEY``) while old rows stay readable during a
rotation. The associated data binds a ciphertext to its token id, so rows cannot be swapped.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_VERSION = 1


class Vault:
    def __init__(self, key_b64: str) -> None:
        key = base64.b64decode(key_b64)
        if len(key) != 32:
            raise ValueError("PAYFLOW_VAULT_KEY must be the base64 of exactly 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, token_id: str) -> bytes:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), token_id.encode())
        return bytes([KEY_VERSION]) + nonce + sealed

    def open(self, ciphertext: bytes, token_id: str) -> str:
        if not ciphertext or ciphertext[0] != KEY_VERSION:
            raise ValueError("unknown vault key version")
        nonce, sealed = ciphertext[1:13], ciphertext[13:]
        return self._aead.decrypt(nonce, sealed, token_id.encode()).decode()

"""Merchant onboarding for the CLI and the demo: a merchant and its first secret API key."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from api.ids import new_id
from api.keys import generate_key
from ingest.money import normalize_currency


@dataclass(frozen=True)
class CreatedMerchant:
    merchant_id: str
    api_key: str
    """Shown once; only its hash is stored."""
    created: bool
    """False when a merchant with that email existed and only a new key was added."""


async def create_or_add_key(
    database_url: str, name: str, email: str, default_currency: str = "USD"
) -> CreatedMerchant:
    currency = normalize_currency(default_currency)
    key = generate_key()
    async with await psycopg.AsyncConnection.connect(database_url) as conn, conn.transaction():
        cursor = await conn.execute("SELECT id FROM merchants WHERE email = %s", (email,))
        row = await cursor.fetchone()
        created = row is None
        merchant_id = new_id("mer") if row is None else row[0]
        if created:
            await conn.execute(
                "INSERT INTO merchants (id, name, email, default_currency) VALUES (%s, %s, %s, %s)",
                (merchant_id, name, email, currency),
            )
        await conn.execute(
            "INSERT INTO api_keys (id, merchant_id, prefix, key_hash) VALUES (%s, %s, %s, %s)",
            (new_id("key"), merchant_id, key.lookup, key.key_hash),
        )
    return CreatedMerchant(merchant_id, key.key, created)

"""Merchant onboarding for the CLI and the demo: a merchant and its secret API keys.

Rolling a key creates a new one and gives every older key of the merchant a grace period
(default ``KEY_ROLL_GRACE_HOURS`` = 24 h) after which it stops working, so integrations can
switch without downtime. API instances cache keys for up to 30 s, so an expiry takes effect
within that time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

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


KEY_ROLL_GRACE_HOURS = 24.0


async def roll_key(database_url: str, merchant_id: str,
                   grace: timedelta = timedelta(hours=KEY_ROLL_GRACE_HOURS)) -> str:
    """A new secret key for the merchant; its other live keys expire after ``grace``."""
    key = generate_key()
    async with await psycopg.AsyncConnection.connect(database_url) as conn, conn.transaction():
        cursor = await conn.execute("SELECT 1 FROM merchants WHERE id = %s", (merchant_id,))
        if await cursor.fetchone() is None:
            raise LookupError(f"no merchant {merchant_id}")
        await conn.execute(
            "UPDATE api_keys SET expires_at = least(coalesce(expires_at, 'infinity'), "
            "now() + %s) WHERE merchant_id = %s",
            (grace, merchant_id),
        )
        await conn.execute(
            "INSERT INTO api_keys (id, merchant_id, prefix, key_hash) VALUES (%s, %s, %s, %s)",
            (new_id("key"), merchant_id, key.lookup, key.key_hash),
        )
        await conn.execute(
            "INSERT INTO audit_log (actor, merchant_id, entity_type, entity_id, action, change) "
            "VALUES ('operator', %s, 'merchant', %s, 'api_key.rolled', "
            "jsonb_build_object('grace_seconds', %s::float))",
            (merchant_id, merchant_id, grace.total_seconds()),
        )
    return key.key

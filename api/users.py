"""Dashboard users in PostgreSQL: create (CLI, demo), find by email (login), list merchants.

Emails are matched case-insensitively. Roles: ``merchant`` users belong to one merchant;
``analyst`` and ``admin`` users may look at any merchant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from psycopg import AsyncConnection

from api.ids import new_id
from api.passwords import hash_password

Role = Literal["merchant", "analyst", "admin"]
ROLES: tuple[Role, ...] = ("merchant", "analyst", "admin")
SWITCHING_ROLES: frozenset[str] = frozenset({"analyst", "admin"})
"""Roles that may look at any merchant (``X-Merchant-Id``)."""

Conn = AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    role: Role
    merchant_id: str | None
    password_hash: str

    @property
    def can_switch_merchant(self) -> bool:
        return self.role in SWITCHING_ROLES


class UnknownMerchant(ValueError):
    """A merchant user was given a merchant id that does not exist."""


async def create_or_update_user(
    conn: Conn, email: str, password: str, role: Role, merchant_id: str | None
) -> tuple[str, bool]:
    """Create the user, or reset its password, role and merchant; (user id, created)."""
    assert role in ROLES, role
    if role == "merchant" and not merchant_id:
        raise UnknownMerchant("a merchant user needs --merchant-id")
    if merchant_id and not await merchant_exists(conn, merchant_id):
        raise UnknownMerchant(f"no merchant {merchant_id}")
    password_hash = hash_password(password)
    cursor = await conn.execute(
        """INSERT INTO dashboard_users (id, email, password_hash, role, merchant_id)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (lower(email)) DO UPDATE SET password_hash = EXCLUDED.password_hash,
                  role = EXCLUDED.role, merchant_id = EXCLUDED.merchant_id
           RETURNING id, (xmax = 0)""",
        (new_id("usr"), email.strip(), password_hash, role, merchant_id),
    )
    row = await cursor.fetchone()
    assert row is not None
    return str(row[0]), bool(row[1])


async def find_by_email(conn: Conn, email: str) -> User | None:
    cursor = await conn.execute(
        "SELECT id, email, role, merchant_id, password_hash FROM dashboard_users "
        "WHERE lower(email) = lower(%s)",
        (email.strip(),),
    )
    row = await cursor.fetchone()
    return User(row[0], row[1], row[2], row[3], row[4]) if row else None


async def record_login(conn: Conn, user_id: str, new_hash: str | None) -> None:
    """Stamp the login; store an upgraded hash when the parameters were outdated."""
    await conn.execute(
        "UPDATE dashboard_users SET last_login_at = now(), "
        "password_hash = coalesce(%s, password_hash) WHERE id = %s",
        (new_hash, user_id),
    )


async def merchant_exists(conn: Conn, merchant_id: str) -> bool:
    cursor = await conn.execute("SELECT 1 FROM merchants WHERE id = %s", (merchant_id,))
    return await cursor.fetchone() is not None


async def list_merchants(conn: Conn, limit: int) -> list[dict[str, str]]:
    cursor = await conn.execute(
        "SELECT id, name, default_currency FROM merchants ORDER BY name, id LIMIT %s", (limit,)
    )
    return [{"id": r[0], "name": r[1], "default_currency": r[2]} for r in await cursor.fetchall()]


async def get_merchant(conn: Conn, merchant_id: str) -> dict[str, str] | None:
    cursor = await conn.execute(
        "SELECT id, name, default_currency FROM merchants WHERE id = %s", (merchant_id,)
    )
    row = await cursor.fetchone()
    return {"id": row[0], "name": row[1], "default_currency": row[2]} if row else None

"""Audit entries for webhook settings: who changed an endpoint, resent or tested a delivery, or
disabled an endpoint automatically — into the append-only ``audit_log``, in the same
transaction as the change. Secrets never appear in an entry.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

SENDER_ACTOR = "webhook-sender"


def get_actor(request: Request) -> str:
    """``user:<email>`` for a dashboard session, else ``api_key`` (the merchant's key)."""
    session = getattr(request.state, "session", None)
    email = getattr(session, "email", None)
    return f"user:{email}" if email else "api_key"


Actor = Annotated[str, Depends(get_actor)]


async def record(
    conn: AsyncConnection[Any], actor: str, merchant_id: str, entity_id: str, action: str,
    change: dict[str, Any], entity_type: str = "webhook_endpoint",
) -> None:
    assert "secret" not in change, "secrets never go into the audit log"
    await conn.execute(
        "INSERT INTO audit_log (actor, merchant_id, entity_type, entity_id, action, change) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (actor, merchant_id, entity_type, entity_id, action, Jsonb(change)),
    )

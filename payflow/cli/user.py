"""``payflow user create``: a dashboard login (argon2id-hashed password) for a merchant or staff.

``merchant`` users see one merchant (``--merchant-id``); ``analyst`` and ``admin`` users may
switch between all merchants. Running it again for the same email resets password and role.
"""

from __future__ import annotations

import asyncio

import psycopg
import typer

from api.passwords import WeakPassword
from api.users import ROLES, Role, UnknownMerchant, create_or_update_user
from payflow.settings import get_settings

app = typer.Typer(help="Manage dashboard users.", no_args_is_help=True)


async def ensure_user(database_url: str, email: str, password: str, role: Role,
                      merchant_id: str | None) -> tuple[str, bool]:
    """Create or update a dashboard user; (user id, created)."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn, conn.transaction():
        return await create_or_update_user(conn, email, password, role, merchant_id)


@app.command()
def create(
    email: str = typer.Option(..., help="Login email (case-insensitive, unique)"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 help="At least 10 characters (prompted when omitted)"),
    role: str = typer.Option("merchant", help="merchant | analyst | admin"),
    merchant_id: str = typer.Option(None, help="The merchant a `merchant` user belongs to"),
) -> None:
    """Create a dashboard user, or reset the password and role of an existing one."""
    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="--role")
    try:
        user_id, created = asyncio.run(
            ensure_user(get_settings().database_url, email, password, role, merchant_id)
        )
    except (WeakPassword, UnknownMerchant) as error:
        typer.secho(f"user: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from error
    verb = "created" if created else "updated"
    scope = f"merchant {merchant_id}" if merchant_id else "all merchants"
    typer.echo(f"dashboard user {user_id} {verb}: {email} ({role}, {scope})")

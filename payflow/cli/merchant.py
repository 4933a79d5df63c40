"""``payflow merchant create``: onboard a merchant and print its secret API key once."""

from __future__ import annotations

import asyncio

import typer

from payflow.merchants import create_or_add_key
from payflow.settings import get_settings

app = typer.Typer(help="Manage merchants and their API keys.", no_args_is_help=True)


@app.command()
def create(
    name: str = typer.Option(..., help="The merchant's display name"),
    email: str = typer.Option(..., help="Login email; one merchant per email"),
    currency: str = typer.Option("USD", help="Default currency (ISO 4217)"),
) -> None:
    """Create a merchant (or add a key to an existing one) and print the secret key."""
    result = asyncio.run(create_or_add_key(get_settings().database_url, name, email, currency))
    verb = "created" if result.created else "exists; added a key to"
    typer.echo(f"merchant {result.merchant_id} {verb} ({email})")
    typer.echo(f"secret API key (shown once): {result.api_key}")

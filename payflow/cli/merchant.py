"""``payflow merchant create``: onboard a merchant and print its secret API key once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import typer

from payflow.merchants import KEY_ROLL_GRACE_HOURS, create_or_add_key, roll_key
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


@app.command("roll-key")
def roll_key_command(
    merchant_id: str = typer.Argument(..., help="The merchant's id (mer_...)"),
    grace_hours: float = typer.Option(KEY_ROLL_GRACE_HOURS, min=0.0,
                                      help="How long the old keys keep working"),
) -> None:
    """Issue a new secret key; the merchant's old keys expire after the grace period."""
    try:
        key = asyncio.run(roll_key(get_settings().database_url, merchant_id,
                                   timedelta(hours=grace_hours)))
    except LookupError as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from error
    typer.echo(f"new secret API key (shown once): {key}")
    typer.echo(f"older keys of {merchant_id} stop working in {grace_hours:g} h")

"""``payflow db migrate | status``: the PostgreSQL schema."""

from __future__ import annotations

import typer

from payflow.db.migrate import available_migrations, current_version, migrate
from payflow.settings import get_settings

app = typer.Typer(help="Apply and inspect database migrations.", no_args_is_help=True)


@app.command("migrate")
def migrate_command() -> None:
    """Apply every pending migration (safe to repeat, safe to run concurrently)."""
    applied = migrate(get_settings().database_url)
    for migration in applied:
        typer.echo(f"applied {migration.version:04d}_{migration.name}")
    if not applied:
        typer.echo("database schema is up to date")


@app.command()
def status() -> None:
    """Print the applied schema version and the newest available."""
    applied = current_version(get_settings().database_url)
    newest = available_migrations()[-1].version
    typer.echo(f"applied: {applied if applied is not None else 'none'}; newest: {newest}")
    if applied != newest:
        raise typer.Exit(1)

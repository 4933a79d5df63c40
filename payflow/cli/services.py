"""``payflow services up | down | status | install``: the local Kafka, PostgreSQL and Redis."""

from __future__ import annotations

import typer

from payflow.services import ServiceError, ServiceStatus, all_services
from payflow.settings import get_settings

app = typer.Typer(help="Start, stop and inspect the local Kafka, PostgreSQL and Redis.",
                  no_args_is_help=True)


@app.command()
def install() -> None:
    """Install what the services need (Debian packages as root, Kafka's jars from Maven)."""
    for service in all_services(get_settings()):
        _attempt(service.name, service.install)
    typer.echo("services: installed")


@app.command()
def up() -> None:
    """Start every service (a no-op for those already running) and print where each listens."""
    for service in all_services(get_settings()):
        _attempt(service.name, service.start)
    status()


@app.command()
def down() -> None:
    """Stop every service payflow started, in reverse order."""
    for service in reversed(all_services(get_settings())):
        _attempt(service.name, service.stop)
    _print_statuses()


@app.command()
def status() -> None:
    """Print each service's state and address; exit 1 unless all are running."""
    if not all(item.running for item in _print_statuses()):
        raise typer.Exit(1)


def _print_statuses() -> list[ServiceStatus]:
    statuses = [service.status() for service in all_services(get_settings())]
    for item in statuses:
        typer.echo(item.line())
    return statuses


def _attempt(name: str, action: object) -> None:
    try:
        action()  # type: ignore[operator]
    except ServiceError as error:
        typer.secho(f"{name}: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from error

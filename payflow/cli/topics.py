"""``payflow topics create | list``: the Kafka topics from the catalog in ``ingest.topics``."""

from __future__ import annotations

import asyncio

import typer

from ingest.topics import CATALOG
from payflow.settings import get_settings
from payflow.topics import create_topics

app = typer.Typer(help="Create and describe the catalog's Kafka topics.", no_args_is_help=True)


@app.command()
def create() -> None:
    """Create every catalog topic that does not exist yet (idempotent)."""
    created = asyncio.run(create_topics(get_settings()))
    for name in created:
        typer.echo(f"created {get_settings().topic_prefix}{name}")
    if not created:
        typer.echo("all topics exist")


@app.command("list")
def list_topics() -> None:
    """Print the catalog: name, key, partitions, retention, visibility."""
    prefix = get_settings().topic_prefix
    for topic in CATALOG:
        days = topic.retention_ms / 86_400_000
        typer.echo(
            f"{topic.name_for(prefix):<28} key={topic.key:<28} partitions={topic.partitions:<3} "
            f"retention={days:g}d {topic.visibility.value}"
        )

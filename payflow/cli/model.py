"""``payflow model list | promote VERSION | rollback | bootstrap``: the fraud model registry.

Promotion and rollback are recorded in PostgreSQL (append-only, with the actor) and announced on
``models.promotions``; running workers reload at once, or within ``model_check_seconds`` if
the announcement cannot be sent. ``bootstrap`` trains a first model on synthetic data so a
fresh stack scores with a model rather than rules alone.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import subprocess

import psycopg
import typer
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ingest.topics import MODEL_PROMOTIONS
from models import registry
from payflow.settings import REPO_ROOT, Settings, get_settings

app = typer.Typer(help="List, promote and roll back fraud models.", no_args_is_help=True)
PUBLISH_TIMEOUT_SECONDS = 10.0


@app.command("list")
def list_command() -> None:
    """Every registered model, its metrics and training window; * marks the champion."""
    with psycopg.connect(get_settings().database_url) as conn:
        models = registry.list_models(conn)
    if not models:
        typer.echo("no models registered (`payflow model bootstrap` trains a first one)")
    for info in models:
        metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(info.metrics.items()))
        typer.echo(f"{'*' if info.champion else ' '} {registry.model_name(info.version):<10} "
                   f"{info.window_start:%Y-%m-%d}..{info.window_end:%Y-%m-%d} "
                   f"code={info.code_version} data={info.data_fingerprint[:12]} {metrics}")


@app.command()
def promote(version: int = typer.Argument(..., help="The version to make champion")) -> None:
    """Make VERSION the champion every worker scores with."""
    _announce(get_settings(), lambda conn: registry.promote(conn, version, _actor()))


@app.command()
def rollback() -> None:
    """Make the model the current champion replaced the champion again."""
    _announce(get_settings(), lambda conn: registry.rollback(conn, _actor()))


@app.command()
def bootstrap(
    force: bool = typer.Option(False, help="Train and promote even if a champion exists"),
    seed: int = typer.Option(7, help="Seed of the synthetic history"),
) -> None:
    """Train a first model on synthetic payments, register it and promote it."""
    version = bootstrap_model(get_settings(), force=force, seed=seed)
    typer.echo("a champion exists; nothing to do" if version is None
               else f"trained, registered and promoted {registry.model_name(version)}")


def bootstrap_model(settings: Settings, *, force: bool = False, seed: int = 7) -> int | None:
    """Train, register and promote a first model unless a champion exists; its version."""
    with psycopg.connect(settings.database_url) as conn:
        if not force and registry.champion(conn) is not None:
            return None
    from models.synthetic import generate  # scikit-learn: not at every payflow command's start
    from models.training import examples, train

    history = generate(seed=seed)
    trained = train(examples(history.events, history.fraud))
    with psycopg.connect(settings.database_url) as conn:
        version = registry.register(conn, trained, code_version(),
                                    f"bootstrap: synthetic history, seed {seed}")
    _announce(settings, lambda conn: registry.promote(conn, version, "bootstrap"))
    return version


def _announce(settings: Settings, change: registry.Change) -> None:
    try:
        with psycopg.connect(settings.database_url) as conn:
            promotion = change(conn)
    except registry.RegistryError as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from error
    previous = promotion.previous_version
    typer.echo(f"{promotion.action}: {registry.model_name(promotion.version)} is the champion "
               f"(was {registry.model_name(previous) if previous else 'none'})")
    try:
        asyncio.run(asyncio.wait_for(_publish(settings, registry.promotion_message(promotion)),
                                     PUBLISH_TIMEOUT_SECONDS))
    except (KafkaError, TimeoutError) as error:
        typer.secho(f"could not announce it on Kafka ({error!r}); workers pick it up within "
                    f"{settings.model_check_seconds:g} s", fg=typer.colors.YELLOW, err=True)


async def _publish(settings: Settings, message: bytes) -> None:
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # a missing topic logs per retry
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap,
                                enable_idempotence=True, request_timeout_ms=5000)
    await producer.start()
    try:
        await producer.send_and_wait(MODEL_PROMOTIONS.name_for(settings.topic_prefix), message,
                                     key=b"fraud")
    finally:
        await producer.stop()


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def code_version() -> str:
    """The git commit the code runs from, else the package version."""
    try:
        result = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=5, check=True)
        return result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import version

        return f"payflow-{version('payflow')}"


@app.command("train")
def train_command(
    days: int = typer.Option(56, min=42, max=3650, help="Days of simulated history"),
    seed: int = typer.Option(7, help="Seed of the simulated history"),
    customers: int = typer.Option(1500, min=10, help="Simulated customers"),
    feature_log: bool = typer.Option(False, help="Train on the feature log and fraud labels "
                                     "in PostgreSQL instead of a simulated history"),
    register: bool = typer.Option(False, help="Register the best candidate"),
    promote_it: bool = typer.Option(False, "--promote", help="Register and promote it"),
) -> None:
    """Train the baseline and the ensemble on point-in-time data; report test metrics."""
    from dataclasses import replace

    from ingest.traffic import SimulationConfig, simulate
    from models.candidates import trained_model
    from models.datasets import from_simulation
    from models.retraining import compare, problems, read_feature_log, report, splits_for

    settings = get_settings()
    if feature_log:
        with psycopg.connect(settings.database_url) as conn:
            data, source = read_feature_log(conn), "feature log"
    else:
        config = replace(SimulationConfig(), days=days, seed=seed, customers=customers)
        data, source = from_simulation(simulate(config)), f"simulation seed {seed}, {days} days"
    if len(data) == 0:
        typer.secho(f"no payments to train on ({source})", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    splits = splits_for(data)
    if found := problems(splits):
        typer.secho("\n".join(found), fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    comparison = compare(splits)
    typer.echo(f"{len(data)} payments ({source}); test period "
               f"{len(comparison.splits.test.data)} payments")
    for line in report(comparison):
        typer.echo(line)
    if register or promote_it:
        best = comparison.best
        with psycopg.connect(settings.database_url) as conn:
            version = registry.register(conn, trained_model(best, comparison.splits),
                                        code_version(), f"{best.kind}: {source}")
        typer.echo(f"registered {registry.model_name(version)} ({best.kind})")
        if promote_it:
            _announce(settings, lambda conn: registry.promote(conn, version, _actor()))

"""``payflow import FILE`` and ``payflow replay``: historical payments into PostgreSQL, and
through a stream worker of their own so the feature log holds the features they would have had.

Both are thin: parsing and checking rows is ``ingest.history``, the file readers
``ingest.history_files``, the database ``payflow.history_store``, the replay's messages and
schedule ``ingest.replay`` and ``ingest.replay_schedule``, its deployment and Kafka I/O
``payflow.replay``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import psycopg
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ingest import history_files
from ingest.history import HeaderError, HistoricalPayment, RowProblem, parse_rows, resolve_columns
from ingest.replay import replay_items
from ingest.replay_schedule import ReplaySchedule
from ingest.sandbox import card_fingerprint
from payflow import history_store
from payflow.replay import (
    ReplayDeployment,
    ReplayFailed,
    ReplayStats,
    accesses,
    run,
    wait_for_feature_log,
)
from payflow.settings import Settings, get_settings

PROGRESS_EVERY_ROWS = 2_000
MIGRATE_HINT = "the history tables are missing: run `payflow db migrate` first"
IMPORT_HELP = (
    "Load historical payments from FILE (CSV, or Parquet) into PostgreSQL, for `payflow "
    "replay` and training.\n\n"
    "Columns, by header name in any order (others are ignored): timestamp (ISO 8601 with a UTC "
    "offset, or Unix seconds), merchant_id, card_id and/or terminal_id, customer_id (may be "
    "empty), amount_minor (integer minor units), currency; optional: payment_id, ip_address, "
    "device_id, country, is_fraud (1/0) and label_seconds or labelled_at (when the fraud "
    "label became known). The names merchant, card, terminal, customer, amount and label are "
    "accepted too. Files written by `payflow simulate generate` import as they are.\n\n"
    "Every bad row is reported with its line, column and reason; one bad row imports nothing "
    "unless --skip-invalid. A re-import of the same file adds nothing (payment ids come from "
    "the file or from each row's content); a changed row is updated."
)
REPLAY_HELP = (
    "Push the imported payments through a stream worker in event-time order, fraud labels as "
    "dispute.created events at the time they became known, so that the feature_log table "
    "holds the features each payment would have had live (train with `payflow model train "
    "--feature-log`).\n\n"
    "The replay runs in a deployment of its own: a fresh topic prefix and its own worker(s), "
    "deleted at the end. No replayed payment reaches a ledger balance, a webhook, the "
    "dashboard's rollups or the live worker's velocity tables. A payment is sent once every "
    "earlier payment or label sharing its card, IP address or device, or customer (for its "
    "merchant: of an earlier day) is decided, so features come out exactly as the offline "
    "replay computes them."
)


def import_history(
    file: Annotated[Path, typer.Argument(help="CSV file (or .parquet, read with pyarrow)",
                                         show_default=False)],
    skip_invalid: bool = typer.Option(
        False, help="Import the valid rows and leave out the bad ones (listed); by default "
        "one bad row imports nothing"),
    show_errors: int = typer.Option(20, min=1, max=10_000, help="How many bad rows to list"),
) -> None:
    """Load historical payments from FILE into PostgreSQL (help: IMPORT_HELP)."""
    settings = get_settings()
    try:
        opened = history_files.open_history(file)
        columns = resolve_columns(opened.header)
    except (history_files.UnreadableFile, HeaderError) as error:
        _fail(str(error), code=2)
    if columns.ignored:
        typer.echo(f"ignoring columns: {', '.join(columns.ignored)}")
    key = settings.card_fingerprint_key.get_secret_value().encode()
    fingerprint = functools.partial(card_fingerprint, key=key)
    tally = _Tally(show_errors)
    try:
        with psycopg.connect(settings.database_url) as conn, _bar() as bar:
            task = bar.add_task("import", total=max(opened.total, 1))
            rows = _counted(parse_rows(opened.rows, columns, fingerprint), tally,
                            lambda: bar.update(task, completed=opened.progress()))
            staged = history_store.stage(conn, rows)
            repeated, problems = history_store.repeated_ids(conn, show_errors)
            tally.add_repeated(repeated, problems)
            if tally.rejected and not skip_invalid:
                conn.rollback()
                _report_and_fail(tally, opened, "nothing imported (--skip-invalid imports the "
                                                "valid rows)")
            if repeated:
                history_store.drop_repeated(conn)
            result = history_store.upsert(conn, str(file), history_files.sha256(file),
                                          tally.read, tally.rejected)
    except psycopg.errors.UndefinedTable:
        _fail(MIGRATE_HINT)
    except history_files.UnreadableFile as error:
        _fail(f"{error}; nothing imported", code=2)
    if tally.rejected:
        _report(tally, opened)
    typer.echo(f"imported {file} (import {result.import_id}): {tally.read} rows read, "
               f"{result.inserted} new, {result.updated} updated, {result.unchanged} unchanged, "
               f"{tally.rejected} rejected; {staged - repeated} payments in the file")


class _Tally:
    """Rows read and rejected, with the first problems kept for the report."""

    def __init__(self, keep: int) -> None:
        self.keep, self.read, self.rejected = keep, 0, 0
        self.problems: list[RowProblem] = []

    def add(self, problems: list[RowProblem]) -> None:
        self.rejected += 1
        self.problems += problems[: max(0, self.keep - len(self.problems))]

    def add_repeated(self, count: int, problems: list[RowProblem]) -> None:
        self.rejected += count
        self.problems = sorted([*self.problems, *problems], key=lambda p: p.line)[: self.keep]


def _counted(parsed: Iterator[HistoricalPayment | list[RowProblem]], tally: _Tally,
             tick: Any) -> Iterator[HistoricalPayment]:
    for item in parsed:
        tally.read += 1
        if tally.read % PROGRESS_EVERY_ROWS == 0:
            tick()
        if isinstance(item, list):
            tally.add(item)
        else:
            yield item
    tick()


def _bar() -> Progress:
    return _progress(TextColumn("importing"), BarColumn(),
                     TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn())


def _progress(*columns: Any) -> Progress:
    """A progress bar on the terminal's stderr; none when stderr is not a terminal."""
    console = Console(stderr=True)
    return Progress(*columns, console=console, transient=True, disable=not console.is_terminal)


def _report(tally: _Tally, opened: history_files.HistoryFile) -> None:
    typer.secho(f"{tally.rejected} bad rows in {opened.path}:", fg=typer.colors.RED, err=True)
    for problem in tally.problems:
        where = f"{opened.position} {problem.line}"
        column = f", column {problem.column}" if problem.column else ""
        typer.echo(f"  {where}{column}: {problem.reason}", err=True)
    if tally.rejected > len({p.line for p in tally.problems}):
        typer.echo(f"  ... (the first {len(tally.problems)} problems are listed)", err=True)


def _report_and_fail(tally: _Tally, opened: history_files.HistoryFile,
                     message: str) -> NoReturn:
    _report(tally, opened)
    _fail(message)


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def replay(
    speed: float = typer.Option(
        0.0, min=0.0, help="Replay N times faster than the history happened (60: an hour per "
        "minute); 0 (default): as fast as the worker decides"),
    workers: int = typer.Option(1, min=1, max=8, help="Stream workers of the replay's own"),
    window: int = typer.Option(10_000, min=1, max=1_000_000,
                               help="Most payments and labels in flight at once"),
    stall_seconds: float = typer.Option(
        120.0, min=1.0, help="Give up when nothing is decided for this long (start-up included)"),
    feature_log_seconds: float = typer.Option(
        120.0, min=1.0, help="How long to wait for the last decisions to reach the feature log"),
) -> None:
    """Push the imported payments through a stream worker (help: REPLAY_HELP)."""
    settings = get_settings()
    try:
        with psycopg.connect(settings.database_url) as conn:
            payments, labels = history_store.counts(conn)
    except psycopg.errors.UndefinedTable:
        _fail(MIGRATE_HINT)
    if payments == 0:
        _fail("nothing imported yet: load a file with `payflow import FILE` first")
    typer.echo(f"replaying {payments} payments and {labels} fraud labels"
               + (f" at {speed:g}x" if speed else " as fast as the worker decides"))
    with _quiet_kafka_client():
        deployment = ReplayDeployment.start(settings, dict(os.environ), workers)
        try:
            stats = _replay(settings, deployment, payments + labels, speed or None, window,
                            stall_seconds)
            logged = _feature_log(settings, deployment, payments, feature_log_seconds)
        except ReplayFailed as error:
            _fail(f"replay failed: {error}")
        finally:
            deployment.remove()
    startup = stats.first_decision_seconds or 0.0
    typer.echo(f"replayed {stats.payments} payments and {stats.labels} labels in "
               f"{stats.seconds:.1f} s ({startup:.1f} s worker start-up, then "
               f"{stats.payments_per_second:,.0f} payments/s, round trip p50 "
               f"{stats.round_trip_ms(0.5):,.0f} ms, p99 {stats.round_trip_ms(0.99):,.0f} ms); "
               f"{logged} in the feature log")


@contextlib.contextmanager
def _quiet_kafka_client() -> Iterator[None]:
    """The deployment's topics are new: until their partitions have leaders, aiokafka logs its
    retries as errors. A real failure shows as a stall or a dead worker, which is reported."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _replay(settings: Settings, deployment: ReplayDeployment, total: int, speed: float | None,
            window: int, stall_seconds: float) -> ReplayStats:
    with psycopg.connect(settings.database_url) as conn, _progress(
            TextColumn("replaying"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn()) as bar:
        task = bar.add_task("replay", total=total)
        items = replay_items(history_store.payments_in_time_order(conn),
                             history_store.labels_in_time_order(conn))
        schedule = ReplaySchedule(items, accesses, window=window, speed=speed)
        return asyncio.run(run(
            deployment.settings, schedule, stall_seconds=stall_seconds,
            failure=deployment.failure,
            progress=lambda _: bar.update(task, completed=schedule.finished)))


def _feature_log(settings: Settings, deployment: ReplayDeployment, payments: int,
                 timeout_seconds: float) -> int:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        return wait_for_feature_log(lambda: history_store.feature_log_rows(conn), payments,
                                    timeout_seconds, deployment.failure)

"""``payflow simulate``: simulated, labelled payment traffic, to a file or through the live API.

``payflow simulate generate --out FILE`` writes a history from ``ingest.traffic`` (seeded: the
same options write the same file); CSV always, Parquet when the name ends in ``.parquet`` and
pyarrow is installed. ``payflow simulate --rate R --duration S`` sends the same kind of traffic,
in the history's order, to the running API at R payments per second for S seconds, with a
progress bar and a tally of outcomes. Payment times are then the API's clock, and the fraud
labels arrive as they do live: each fraudulent payment that the risk engine let through (and
that was captured) is disputed ``--label-delay`` seconds after it was accepted (the history's
days of label delay, compressed), which makes it a fraud label for the worker and for training.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.progress import Progress, TextColumn

from ingest.traffic import (
    COLUMNS,
    SimulatedPayment,
    SimulationConfig,
    api_body,
    simulate,
    to_row,
    write_csv,
)
from payflow.merchants import create_or_add_key
from payflow.settings import get_settings

app = typer.Typer(help="Simulate labelled payment traffic: a file, or live through the API.",
                  invoke_without_command=True)
MAX_IN_FLIGHT = 64
CAPTURED = "captured"


@app.callback()
def live(
    ctx: typer.Context,
    rate: float = typer.Option(10.0, min=0.1, max=2000.0, help="Payments per second"),
    duration: float = typer.Option(30.0, min=0.1, max=86_400.0, help="Seconds to run"),
    seed: int = typer.Option(7, help="Seed of the simulated traffic"),
    api_url: str = typer.Option("", help="API base URL (default: the configured API)"),
    api_key: str = typer.Option("", envvar="PAYFLOW_API_KEY",
                                help="Merchant secret key (default: a new simulator merchant)"),
    label_delay: float = typer.Option(
        10.0, min=0.0, max=3600.0,
        help="Seconds after a fraudulent payment is captured before it is disputed (its fraud "
             "label); the run waits for the last one"),
    labels: bool = typer.Option(True, help="Dispute the fraudulent payments that got through"),
) -> None:
    """Without a command: send simulated payments to the live API at RATE for DURATION."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    base = api_url or f"http://{settings.api_host}:{settings.api_port}"
    key = api_key or asyncio.run(create_or_add_key(
        settings.database_url, "Simulator Merchant", "simulator@payflow.test")).api_key
    total = max(1, int(rate * duration))
    days = max(1, math.ceil(total / 1000))
    payments = simulate(replace(SimulationConfig(), days=days, seed=seed))[:total]
    outcomes = asyncio.run(_drive(base, key, payments, rate,
                                  label_delay if labels else None))
    typer.echo(" ".join(f"{name}={count}" for name, count in sorted(outcomes.items())))
    if outcomes.get("error", 0) == len(payments):
        raise typer.Exit(1)


async def _drive(base: str, key: str, payments: list[SimulatedPayment],
                 rate: float, label_delay: float | None) -> Counter[str]:
    """POST each payment at its slot (rate per second), at most MAX_IN_FLIGHT at once; with a
    ``label_delay``, dispute each captured fraudulent payment that long after (``disputed``)."""
    outcomes: Counter[str] = Counter()
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    start = time.monotonic()
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"},
                                 timeout=10) as client:
        with Progress(*Progress.get_default_columns(), TextColumn("{task.fields[tally]}"),
                      transient=False) as progress:
            task = progress.add_task("payments", total=len(payments), tally="")

            def count(outcome: str) -> None:
                outcomes[outcome] += 1
                progress.update(task, tally=" ".join(
                    f"{k}={v}" for k, v in sorted(outcomes.items())))

            async def send(payment: SimulatedPayment) -> None:
                async with gate:
                    status, payment_id = await _post(client, payment)
                count(status)
                progress.update(task, advance=1)
                if label_delay is not None and payment.is_fraud and status == CAPTURED:
                    await asyncio.sleep(label_delay)
                    async with gate:
                        count(await _dispute(client, payment_id))

            tasks = []
            for index, payment in enumerate(payments):
                await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
                tasks.append(asyncio.create_task(send(payment)))
            await asyncio.gather(*tasks)
    return outcomes


async def _post(client: httpx.AsyncClient, payment: SimulatedPayment) -> tuple[str, str]:
    """The payment's status (``error`` when the API could not be reached or refused it) and
    id."""
    try:
        response = await client.post("/v1/payments", json=api_body(payment))
    except httpx.HTTPError:
        return "error", ""
    if response.status_code not in (201, 202):
        return "error", ""
    transaction = response.json()["transaction"]
    return str(transaction["status"]), str(transaction["id"])


async def _dispute(client: httpx.AsyncClient, payment_id: str) -> str:
    """``disputed``, or ``dispute_error`` when the API could not be reached or refused it."""
    try:
        response = await client.post(f"/v1/payments/{payment_id}/dispute",
                                     json={"reason": "fraudulent"})
    except httpx.HTTPError:
        return "dispute_error"
    return "disputed" if response.status_code == 200 else "dispute_error"


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="File to write (.csv, .parquet)")],
    days: int = typer.Option(56, min=1, max=3650, help="Days of traffic"),
    seed: int = typer.Option(7, help="Random seed: the same seed writes the same history"),
    customers: int = typer.Option(1500, min=1, max=1_000_000, help="Number of customers"),
    merchants: int = typer.Option(120, min=1, max=100_000, help="Merchants (one terminal each)"),
) -> None:
    """Generate DAYS of payments with ground-truth fraud labels and their arrival times."""
    config = replace(SimulationConfig(), days=days, seed=seed, customers=customers,
                     merchants=merchants)
    payments = simulate(config)
    if out.suffix == ".parquet":
        _write_parquet(payments, out)
    else:
        write_csv(payments, out)
    patterns = Counter(p.fraud_pattern for p in payments if p.is_fraud)
    frauds = sum(patterns.values())
    typer.echo(f"wrote {len(payments)} payments ({frauds} fraudulent, "
               f"{frauds / max(len(payments), 1):.2%}) to {out}")
    for pattern, count in sorted(patterns.items()):
        typer.echo(f"  {pattern:<13} {count}")


def _write_parquet(payments: list[SimulatedPayment], out: Path) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:
        typer.secho("Parquet needs pyarrow, which is not installed; write .csv instead",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from error
    rows = [to_row(p) for p in payments]
    columns = ("timestamp", *COLUMNS)
    pq.write_table(pa.table({c: [r[c] for r in rows] for c in columns}), out)

"""``payflow simulate generate``: write a simulated, labelled payment history to a file.

The history comes from ``ingest.traffic`` (seeded: the same options write the same file). CSV
always; Parquet when the file name ends in ``.parquet`` and pyarrow is installed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from ingest.traffic import (
    COLUMNS,
    SimulatedPayment,
    SimulationConfig,
    simulate,
    to_row,
    write_csv,
)

app = typer.Typer(help="Simulate labelled payment traffic.", no_args_is_help=True)


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

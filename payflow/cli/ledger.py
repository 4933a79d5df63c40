"""``payflow settle`` and ``payflow reconcile``: the ledger's operator commands."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from psycopg import AsyncConnection

from ledger.reconcile import reconcile as run_reconcile
from ledger.settle import settle_day
from payflow.settings import get_settings


def settle(
    day: Annotated[str | None, typer.Option(
        "--date", help="Settlement day, YYYY-MM-DD (default: today, UTC)")] = None,
    reports: Annotated[Path | None, typer.Option(
        help="Folder for the CSV settlement reports (default: $PAYFLOW_HOME/reports)")] = None,
) -> None:
    """Settle every merchant's funds due on a day and pay them out (a day settles once)."""
    settings = get_settings()
    try:
        when = date.fromisoformat(day) if day else datetime.now(UTC).date()
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD", param_hint="--date") from None
    folder = reports or settings.home / "reports"
    results = asyncio.run(settle_day(settings.database_url, when, folder))
    for result in results:
        plan = result.plan
        typer.echo(f"{plan.merchant_id} {plan.currency}: {len(plan.lines)} entries, net "
                   f"{plan.net}, payout {plan.payout_amount} ({result.payout_id or 'none'})")
    typer.echo(f"settled {len(results)} merchant balances for {when}; reports in {folder}")


def reconcile(
    kafka: Annotated[bool, typer.Option(
        help="Also compare the outbox with payments.events")] = True,
) -> None:
    """Check every ledger invariant; print each difference; exit 1 if there is any."""
    settings = get_settings()

    async def run() -> int:
        async with await AsyncConnection.connect(settings.database_url,
                                                 autocommit=True) as conn:
            report = await run_reconcile(conn, settings, with_kafka=kafka)
        for problem in report.problems:
            typer.secho(f"  ✗ {problem}", fg=typer.colors.RED)
        verdict = "ok" if report.ok else f"{len(report.problems)} problems"
        typer.echo(f"reconciliation: {report.checks} checks, {verdict}")
        return 0 if report.ok else 1

    raise typer.Exit(asyncio.run(run()))

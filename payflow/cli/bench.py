"""``payflow bench``: run payflow's benchmarks against the local services, one command.

The benchmarks live in ``bench/`` at the top of the checkout (development tooling, not part of
the installed package), so this command runs from a checkout: it puts the checkout on the
import path before loading them. ``python -m bench`` is the same command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from payflow.settings import REPO_ROOT

HELP = (
    "Run the benchmarks, each with a reference measured in the same run; write results.json, "
    "summary.md and bench.png.\n\n"
    "Each benchmark uses a database and topic prefix of its own, removed afterwards (also on "
    "Ctrl-C). The machine's load changes the figures: each result records the load average. "
    "The full run takes longer than --quick by far: its streams benchmark installs Quix "
    "Streams into its own venv on first use, and scaleout starts two stacks."
)


def bench(
    quick: Annotated[bool, typer.Option(
        "--quick", help="Small sizes and short runs: the whole suite in under 5 minutes "
        "(end to end at 100 and 200 payments/s for 20 s each)")] = False,
    only: Annotated[str, typer.Option(
        "--only", metavar="NAME[,NAME]",
        help="Run only these: scoring, api, streams, ledger, dashboard, e2e, scaleout "
        "(default: all; --quick leaves out scaleout unless named here)")] = "",
    out: Annotated[Path | None, typer.Option(
        "--out", help="Directory for results.json, summary.md and bench.png "
        "(default: PAYFLOW_HOME/bench/<UTC timestamp>/)")] = None,
    list_only: Annotated[bool, typer.Option("--list", help="List the benchmarks and exit")] = False,
) -> None:
    """Run the benchmarks; write results.json, summary.md and bench.png (see ``HELP``)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from bench import runner, suite
    from bench.sandbox import stop_on_terminate

    if list_only:
        for benchmark in suite.BENCHMARKS:
            typer.echo(f"{benchmark.name:10} {benchmark.description}")
        return
    try:
        selected = suite.select(only, quick)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--only") from error
    stop_on_terminate()
    try:
        runner.run(selected, quick, out, _command())
    except runner.ServicesUnreachable as error:
        typer.secho(f"bench: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from error
    except KeyboardInterrupt:
        typer.secho("bench: interrupted; the partial results are written", err=True)
        raise typer.Exit(130) from None


def _command() -> str:
    program = Path(sys.argv[0]).name
    program = "python -m bench" if program == "__main__.py" else program
    return " ".join([program, *sys.argv[1:]])

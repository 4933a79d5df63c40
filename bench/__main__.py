"""``python -m bench``: the same command as ``payflow bench`` (see ``payflow/cli/bench.py``)."""

from __future__ import annotations

import typer

from payflow.cli.bench import HELP, bench

if __name__ == "__main__":
    app = typer.Typer(add_completion=False)
    app.command(help=HELP)(bench)
    app()

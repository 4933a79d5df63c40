"""The root Typer application; each command group lives in its own module."""

from __future__ import annotations

import typer

from payflow.cli import db, demo, ledger, merchant, processes, services, topics, user
from payflow.cli import model as model_commands

app = typer.Typer(
    name="payflow",
    help="Operate payflow: services, database, topics, processes and the demo.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(services.app, name="services")
app.add_typer(db.app, name="db")
app.add_typer(topics.app, name="topics")
app.add_typer(merchant.app, name="merchant")
app.add_typer(model_commands.app, name="model")
app.add_typer(user.app, name="user")
for command in (processes.api, processes.worker, processes.ledger, processes.analytics,
                processes.dashboard):
    app.command()(command)
app.command()(processes.webhooks)
app.command()(demo.demo)
app.command()(ledger.settle)
app.command()(ledger.reconcile)

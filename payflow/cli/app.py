"""The root Typer application; each command group lives in its own module."""

from __future__ import annotations

import typer

from payflow.cli import bench as bench_command
from payflow.cli import contracts as contract_commands
from payflow.cli import (
    db,
    demo,
    history,
    ledger,
    merchant,
    processes,
    services,
    simulate,
    topics,
    user,
)
from payflow.cli import model as model_commands
from payflow.cli import tail as tail_command

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
app.add_typer(simulate.app, name="simulate")
app.add_typer(user.app, name="user")
app.add_typer(contract_commands.app, name="contracts")
for command in (processes.api, processes.worker, processes.ledger, processes.analytics,
                processes.dashboard):
    app.command()(command)
app.command("feature-log")(processes.feature_log)
app.command()(processes.webhooks)
app.command()(demo.demo)
app.command()(ledger.settle)
app.command()(ledger.reconcile)
app.command()(tail_command.tail)
app.command("import", help=history.IMPORT_HELP)(history.import_history)
app.command(help=history.REPLAY_HELP)(history.replay)
app.command(help=bench_command.HELP)(bench_command.bench)

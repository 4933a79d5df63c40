"""``payflow contracts generate``: write the public topics' contract files.

docs/topics.md, schemas/<type>.json and asyncapi.yaml are generated from ingest/topics.py and
ingest/contracts/ and committed. Before writing, every generated schema is checked against the
committed one: an incompatible change to a published version is refused (publish a new version
instead), and so is dropping a published type unless it is retired explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from payflow.contracts import files
from payflow.settings import REPO_ROOT

app = typer.Typer(help="The public topics' contract: docs/topics.md, schemas/, asyncapi.yaml.",
                  no_args_is_help=True)


@app.command()
def generate(
    check: Annotated[bool, typer.Option(
        "--check", help="Write nothing; exit 1 if a committed file is stale")] = False,
    retire: Annotated[list[str] | None, typer.Option(
        "--retire", help="A published type no longer produced (its migration window ended); "
                         "its schema is removed. Repeatable.")] = None,
    root: Annotated[Path, typer.Option(help="The repository root")] = REPO_ROOT,
) -> None:
    """Generate docs/topics.md, schemas/ and asyncapi.yaml from the catalog and the models."""
    retired = tuple(retire or ())
    generated = files.generated_files()
    if still := [t for t in retired if f"{files.SCHEMAS_DIR}/{t}.json" in generated]:
        _fail([f"{t}: still produced; remove it from the contracts before retiring it"
               for t in still])
    if problems := files.compatibility_problems(root, retired):
        _fail([*problems, "A published version may only change compatibly (see "
                          "docs/topics.md): publish the change as a new version (.v2) instead."])
    if check:
        if stale := files.stale_files(root, generated):
            _fail([f"stale: {path}" for path in stale] + [f"run `{files.GENERATE_COMMAND}`"])
        typer.echo("contract files are up to date")
        return
    changed = files.write(root, generated, retired)
    for path in changed:
        typer.echo(f"wrote {path}")
    typer.echo(f"{len(changed)} files changed" if changed else "contract files are up to date")


def _fail(lines: list[str]) -> None:
    for line in lines:
        typer.secho(line, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)

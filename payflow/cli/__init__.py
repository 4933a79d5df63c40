"""The ``payflow`` command: operate the stack (services, database, topics, processes, demo)."""

from __future__ import annotations

from payflow.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]

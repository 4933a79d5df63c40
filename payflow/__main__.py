"""``python -m payflow`` is the ``payflow`` command (used to start child processes)."""

from payflow.cli import main

main()

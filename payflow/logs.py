"""Logging set-up shared by payflow's processes: one line per record, levels really applied.

Faust, mode and aiokafka log a record per message at DEBUG if their loggers are left alone,
which costs measurable throughput, so their levels are pinned here too.
"""

from __future__ import annotations

import logging

NOISY_LOGGERS = ("aiokafka", "faust", "mode", "kafka", "uvicorn.access", "httpx")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))

"""The streaming benchmark's Python peer: Quix Streams doing the worker's work, in its own venv.

quixstreams pulls confluent-kafka (librdkafka) and pins its own pydantic, so it is never a
payflow dependency: ``ensure_venv`` creates ``<home>/bench-venvs/quix`` with pip on first use
(a few minutes; reused while its pinned requirements are unchanged) and ``measure`` runs
``bench.quix_app`` there as a subprocess, with the repository on ``PYTHONPATH`` so that the app
calls payflow's own feature and decision code. It reads the same pre-filled
``payments.requests`` the worker benchmark filled, from the beginning, under a group of the
sandbox's prefix, and writes decisions and feature-log entries to topics of its own; its
internal repartition and changelog topics are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.passthrough import _create_topic
from ingest.topics import PAYMENT_REQUESTS
from models import registry
from payflow.settings import REPO_ROOT, Settings

QUIXSTREAMS = "quixstreams==3.28.1"
SAME_AS_PAYFLOW = ("numpy", "scipy", "scikit-learn", "skops", "joblib", "threadpoolctl")
"""Pinned to the versions payflow runs, so the champion's skops artifact loads the same."""
INSTALL_TIMEOUT_SECONDS, RUN_TIMEOUT_SECONDS = 1800, 600


def requirements() -> list[str]:
    return [QUIXSTREAMS, *(f"{name}=={metadata.version(name)}" for name in SAME_AS_PAYFLOW)]


def ensure_venv(home: Path) -> Path:
    """The venv's python, created and installed on first use (progress on stdout)."""
    venv = home / "bench-venvs" / "quix"
    python, marker = venv / "bin" / "python", venv / "payflow-requirements.txt"
    wanted = "\n".join(requirements()) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"bench quix: creating {venv} and installing {QUIXSTREAMS} with pip (first use "
          "only, a few minutes) ...", flush=True)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True,
                   timeout=120)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *requirements()], check=True, timeout=INSTALL_TIMEOUT_SECONDS)
    marker.write_text(wanted)
    print(f"bench quix: venv ready in {time.monotonic() - started:.0f} s", flush=True)
    return python


def measure(settings: Settings) -> dict[str, Any]:
    """Run the Quix Streams app over everything on the sandbox's ``payments.requests``."""
    python = ensure_venv(settings.home)
    prefix = settings.topic_prefix
    group = f"{prefix}quix"
    decisions, feature_log = f"{prefix}bench.quix.decisions", f"{prefix}bench.quix.feature-log"
    expected = asyncio.run(_prepare(settings, decisions, feature_log))
    with tempfile.TemporaryDirectory(prefix="payflow-bench-quix-") as scratch:
        model = _export_champion(settings, Path(scratch))
        command = [str(python), "-m", "bench.quix_app", "--broker", settings.kafka_bootstrap,
                   "--group", group, "--input", PAYMENT_REQUESTS.name_for(prefix),
                   "--stage-prefix", f"{prefix}bench.quix.", "--partitions",
                   str(PAYMENT_REQUESTS.partitions),
                   "--decisions", decisions, "--feature-log", feature_log,
                   "--state-dir", str(settings.home / "streams" / f"{prefix}quix"),
                   "--fingerprint-key", settings.card_fingerprint_key.get_secret_value(),
                   "--expected", str(expected), "--batch-size", str(settings.stream_batch_size),
                   *model]
        print(f"bench quix: Quix Streams app over {expected:,} requests ...", flush=True)
        try:
            done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                                  timeout=RUN_TIMEOUT_SECONDS,
                                  env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        finally:
            asyncio.run(_delete_internal_topics(settings, group))
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the Quix Streams app failed ({done.returncode}): "
                           f"{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(lines[-1])
    return {**figures, "quixstreams": QUIXSTREAMS.split("==")[1],
            "commit_interval_seconds": 1.0, "python": str(python)}


async def _prepare(settings: Settings, *outputs: str) -> int:
    """Create the output topics; the number of requests on the input topic."""
    for topic in outputs:
        await _create_topic(settings, topic, PAYMENT_REQUESTS.partitions)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        source = PAYMENT_REQUESTS.name_for(settings.topic_prefix)
        partitions = [TopicPartition(source, p) for p in range(PAYMENT_REQUESTS.partitions)]
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        await consumer.stop()


def _export_champion(settings: Settings, folder: Path) -> list[str]:
    """The app's model arguments: the champion's artifact written to ``folder`` (the venv has
    no PostgreSQL client), or none (rules only, as a worker without a champion decides)."""
    with psycopg.connect(settings.database_url, connect_timeout=5) as conn:
        version = registry.champion(conn)
        if version is None:
            return []
        row = conn.execute("SELECT artifact, feature_names FROM fraud_models WHERE version = %s",
                           (version,)).fetchone()
    assert row is not None, version
    path = folder / "model.skops"
    path.write_bytes(bytes(row[0]))
    return ["--model", str(path), "--model-version", registry.model_name(version),
            "--model-features", json.dumps(list(row[1]))]


async def _delete_internal_topics(settings: Settings, group: str) -> None:
    """Quix's repartition and changelog topics (``<type>__<group>--...``): outside the
    prefix, so the sandbox would not find them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if f"__{group}--" in t]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


def main() -> None:
    """``python -m bench.quix [--payments N]``: fill a sandbox's topic and run only the peer."""
    import argparse

    from bench import streams
    from bench.sandbox import sandbox, stop_on_terminate
    from payflow.cli.model import bootstrap_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--payments", type=int, default=20_000)
    args = parser.parse_args()
    assert 0 < args.payments <= streams.MAX_PAYMENTS
    stop_on_terminate()
    with sandbox("quix") as box:
        bootstrap_model(box.settings)
        asyncio.run(streams.fill(box.settings, args.payments))
        print(json.dumps(measure(box.settings), indent=2))


if __name__ == "__main__":
    main()

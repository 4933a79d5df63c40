"""Fraud scoring benchmark: rows/s of the model's batch path and of its single-row path.

    .venv/bin/python -m bench.scoring [--rows 20000] [--batch 500] [--single 2000]

The model is trained exactly as ``payflow model bootstrap`` trains it (synthetic history, seed
7) and goes through the registry's skops round trip, as the worker loads it. Its feature rows are
the training history's own, replayed by the worker's feature code, as mappings of feature name
to value (what the stream worker hands ``FraudModel.opinions``). Figures, in-process, no
services:

- batch: ``opinions`` on micro-batches of ``--batch`` rows (the worker's batch size);
- single row: ``opinions`` on one row at a time (a per-event design's cost);
- reference: the estimator's bare ``predict_proba`` on the same rows as a ready float matrix,
  in the same batches: the floor under the batch path (no mapping-to-matrix step, no top
  features).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from models.scoring import FraudModel, dump_estimator, load_estimator
from models.synthetic import generate
from models.training import examples, train

MAX_ROWS = 1_000_000


def bootstrapped_model(seed: int = 7) -> tuple[FraudModel, np.ndarray]:
    """The bootstrap model (as the registry would load it) and its training rows."""
    history = generate(seed=seed)
    data = examples(history.events, history.fraud)
    trained = train(data)
    estimator = load_estimator(dump_estimator(trained.estimator))
    return FraudModel("bench", estimator, trained.feature_names), data.matrix


def _timed(work: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``work()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def _batches(items: Sequence[Any] | np.ndarray, size: int) -> list[Any]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def measure(rows: int = 20_000, batch: int = 500, single: int = 2_000) -> dict[str, Any]:
    """Every figure of the scoring benchmark (rows/s and µs of CPU per row, for each path)."""
    assert 0 < rows <= MAX_ROWS and 0 < batch <= rows and 0 < single <= rows
    model, matrix = bootstrapped_model()
    names = model.feature_names
    repeated = np.resize(matrix, (rows, matrix.shape[1]))
    mappings: list[Mapping[str, float]] = [dict(zip(names, map(float, row), strict=True))
                                           for row in repeated]
    model.opinions(mappings[:batch])  # warm: first calls allocate
    paths = {
        "batch": (rows, lambda: [model.opinions(b) for b in _batches(mappings, batch)]),
        "single_row": (single, lambda: [model.opinions([row]) for row in mappings[:single]]),
        "reference_predict_proba": (rows, lambda: [
            model.estimator.predict_proba(b) for b in _batches(repeated, batch)]),
    }
    figures: dict[str, Any] = {"model": type(model.estimator).__name__,
                               "estimator_steps": [name for name, _ in getattr(
                                   model.estimator, "steps", [])],
                               "features": len(names), "batch_size": batch}
    for name, (count, work) in paths.items():
        wall, cpu = _timed(work)
        figures[name] = {"rows": count, "seconds": round(wall, 4),
                         "rows_per_second": round(count / wall),
                         "cpu_us_per_row": round(cpu / count * 1e6, 2)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--single", type=int, default=2_000)
    args = parser.parse_args()
    print(json.dumps(measure(args.rows, args.batch, args.single), indent=2))


if __name__ == "__main__":
    main()

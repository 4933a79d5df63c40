"""The data-science notebooks run end to end on small simulated data against the real test
database: a failing cell fails the test. The retraining notebook registers a model and makes it
the champion in this session's database."""

from __future__ import annotations

from pathlib import Path

import papermill
import psycopg
import pytest

from models import registry
from tests.harness import IsolatedEnvironment

pytestmark = pytest.mark.integration
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SMALL = {"days": 43, "customers": 300, "seed": 3}


def run(name: str, output: Path, parameters: dict[str, object]) -> None:
    papermill.execute_notebook(
        str(NOTEBOOKS / name), str(output), parameters=parameters, kernel_name="python3",
        cwd=str(NOTEBOOKS.parent), progress_bar=False, execution_timeout=120,
    )


def test_the_exploration_notebook_runs(tmp_path: Path) -> None:
    run("explore_payments.ipynb", tmp_path / "explore.ipynb", {**SMALL, "merchants": 30})


def test_the_retraining_notebook_registers_and_promotes_a_model(
    environment: IsolatedEnvironment, tmp_path: Path
) -> None:
    url = environment.settings.database_url
    with psycopg.connect(url) as conn:
        before = {m.version for m in registry.list_models(conn)}
    run("retrain_fraud_model.ipynb", tmp_path / "retrain.ipynb",
        {**SMALL, "database_url": url, "min_feature_log_rows": 10**9, "promote": True})
    with psycopg.connect(url) as conn:
        models = registry.list_models(conn)
        champion = registry.champion(conn)
    (new,) = [m for m in models if m.version not in before]
    assert len(new.data_fingerprint) == 64 and new.metrics["test_rows"] > 0
    if not before:
        assert champion == new.version, "with no champion before, the new model is promoted"

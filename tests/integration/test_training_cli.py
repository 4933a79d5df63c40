"""`payflow model train --promote` on a small simulated history: both candidates reported, the
best registered with its metrics and promoted in this session's database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from models import registry
from tests.harness import IsolatedEnvironment

pytestmark = pytest.mark.integration
PAYFLOW = Path(sys.executable).parent / "payflow"


def test_train_registers_and_promotes_the_best_candidate(environment: IsolatedEnvironment) -> None:
    result = subprocess.run(
        [str(PAYFLOW), "model", "train", "--days", "43", "--customers", "300", "--seed", "4",
         "--promote"],
        env=environment.env, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "logistic_regression" in result.stdout and "hist_gradient_boosting" in result.stdout
    assert "AUC ROC" in result.stdout and "card P@100/day" in result.stdout
    with psycopg.connect(environment.settings.database_url) as conn:
        champion = registry.champion(conn)
        (info,) = [m for m in registry.list_models(conn) if m.version == champion]
        loaded = registry.load(conn, info.version)
    assert f"registered {registry.model_name(info.version)}" in result.stdout
    assert {"test_auc_roc", "test_average_precision", "test_card_precision_at_100"} <= set(
        info.metrics)
    assert loaded.feature_names == info.feature_names and info.window_start < info.window_end


def test_train_on_a_feature_log_without_fraud_labels_says_why_it_cannot(
    environment: IsolatedEnvironment,
) -> None:
    result = subprocess.run([str(PAYFLOW), "model", "train", "--feature-log"],
                            env=environment.env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "no payments to train on" in result.stderr or "fraud labels" in result.stderr

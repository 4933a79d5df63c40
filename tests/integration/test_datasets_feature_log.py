"""Training rows from the feature log in PostgreSQL: the features each decision saw, in time
order, with entries from an older feature set left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

from models.features import FEATURE_NAMES
from models.retraining import read_feature_log
from tests.harness import IsolatedEnvironment

pytestmark = pytest.mark.integration
T0 = datetime(2026, 2, 1, tzinfo=UTC)


def test_the_feature_log_reads_back_as_point_in_time_rows(
    environment: IsolatedEnvironment,
) -> None:
    features = {name: float(i) for i, name in enumerate(FEATURE_NAMES)}
    entries = [("pay_fl_2", T0 + timedelta(hours=2), features),
               ("pay_fl_1", T0, features),
               ("pay_fl_old", T0 + timedelta(hours=1), {"amount_log": 1.0})]
    with psycopg.connect(environment.settings.database_url) as conn:
        for payment_id, at, values in entries:
            conn.execute(
                """INSERT INTO feature_log (payment_id, merchant_id, message_id, requested_at,
                       model_version, features, fraud_score, outcome, degraded)
                   VALUES (%s, 'm_fl', %s, %s, 'fraud-v1', %s, 10, 'approve', false)""",
                (payment_id, f"msg_{payment_id}", at, Jsonb(values)))
        data = read_feature_log(conn)
        conn.rollback()
    ids = list(data.payment_ids)
    assert ids.index("pay_fl_1") < ids.index("pay_fl_2") and "pay_fl_old" not in ids
    row = data.matrix[ids.index("pay_fl_1")]
    assert list(row) == [float(i) for i in range(len(FEATURE_NAMES))]
    assert data.cards[ids.index("pay_fl_1")] == "pay_fl_1", "no payment row: the id stands in"
    assert data.truth()[ids.index("pay_fl_1")] == 0

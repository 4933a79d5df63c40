"""`payflow import` and `payflow replay` on the real Kafka and PostgreSQL (issue 7's acceptance):
a labelled simulated history, imported from its file and replayed through a real stream worker
of its own, leaves in the feature log exactly the vectors the offline path computes from the same
file; training on either gives the same model; and nothing reached the live deployment.

The module has a database and a "live" topic prefix of its own (the session's feature log holds
other tests' decisions, and the live topics must be checked for leaks).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from typer.testing import CliRunner, Result

from ingest.topics import PAYMENT_DECISIONS, PAYMENT_EVENTS, PAYMENT_REQUESTS, Topic
from ingest.traffic import SimulationConfig, read_csv, simulate, write_csv
from models.candidates import FEATURES, KINDS, train_candidate
from models.datasets import Dataset, from_simulation, time_splits
from models.retraining import read_feature_log
from payflow.cli.app import app
from payflow.db.databases import drop_database
from payflow.db.migrate import migrate
from payflow.settings import Settings, get_settings
from payflow.topics import create_topics, delete_topics
from tests.harness import IsolatedEnvironment

pytestmark = pytest.mark.integration
HISTORY = SimulationConfig(days=9, customers=60, merchants=8, seed=3, label_delay_days=(0.2, 1.5),
                           compromised_terminals_per_day=0.2, compromised_cards_per_day=15,
                           high_amount_per_day=15, takeovers_per_day=8, card_testing_per_day=2)
"""~500 payments, ~60 of them fraud, labels within 1.5 days: past day 7 the merchants' fraud
share counts labels that came through the pipeline."""


@dataclass
class Deployment:
    settings: Settings
    env: dict[str, str]

    def payflow(self, *args: str) -> Result:
        """Run a payflow command in this process against this deployment."""
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args), env=self.env)
        finally:
            get_settings.cache_clear()


@pytest.fixture(scope="module")
def deployment(environment: IsolatedEnvironment) -> Iterator[Deployment]:
    run = uuid.uuid4().hex[:6]
    database = f"{environment.settings.database_url.rsplit('/', 1)[1]}_history_{run}"
    admin = environment.admin_database_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    url = admin.rsplit("/", 1)[0] + f"/{database}"
    prefix = f"{environment.settings.topic_prefix}history{run}."
    settings = environment.settings.model_copy(update={"database_url": url,
                                                       "topic_prefix": prefix})
    migrate(url)
    asyncio.run(create_topics(settings))
    try:
        yield Deployment(settings, {**environment.env, "PAYFLOW_DATABASE_URL": url,
                                    "PAYFLOW_TOPIC_PREFIX": prefix,
                                    "PAYFLOW_STREAM_BATCH_WAIT_SECONDS": "0.005"})
    finally:
        asyncio.run(delete_topics(settings))
        drop_database(admin, database)


@pytest.fixture(scope="module")
def history_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "history.csv"
    write_csv(simulate(HISTORY), path)
    return path


@pytest.fixture(scope="module")
def imported(deployment: Deployment, history_file: Path) -> str:
    """`payflow import` of the history file; its output."""
    result = deployment.payflow("import", str(history_file))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_file_with_bad_rows_imports_nothing_and_says_where(deployment: Deployment,
                                                             tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,merchant,card,customer,amount,currency\n"
                   "2026-01-02T10:00:00Z,m_bad,card_1,cus_1,1250,USD\n"
                   "2026-01-02T10:05:00Z,m_bad,card_1,cus_1,12.50,USD\n"
                   "2026-01-02T10:06:00,m_bad,card_1,cus_1,100,EURO\n")
    result = deployment.payflow("import", str(bad))
    assert result.exit_code == 1, result.output
    assert "line 3, column amount_minor: '12.50' is not a whole number" in result.output
    assert "line 4, column timestamp: '2026-01-02T10:06:00' has no UTC offset" in result.output
    assert "line 4, column currency: 'EURO' is not a supported ISO 4217" in result.output
    assert "nothing imported" in result.output
    count = "SELECT count(*) FROM history_payments WHERE merchant_id = 'm_bad'"
    assert _count(deployment, count) == 0
    skipped = deployment.payflow("import", "--skip-invalid", str(bad))
    assert skipped.exit_code == 0, skipped.output
    assert "1 new, 0 updated, 0 unchanged, 2 rejected" in skipped.output
    assert _count(deployment, count) == 1
    with psycopg.connect(deployment.settings.database_url) as conn:
        conn.execute("DELETE FROM history_payments WHERE merchant_id = 'm_bad'")


def test_a_reimport_of_the_same_file_adds_nothing(deployment: Deployment, history_file: Path,
                                                  imported: str) -> None:
    payments = len(simulate(HISTORY))
    assert f"{payments} new, 0 updated, 0 unchanged, 0 rejected" in imported
    again = deployment.payflow("import", str(history_file))
    assert again.exit_code == 0, again.output
    assert f"0 new, 0 updated, {payments} unchanged" in again.output
    assert _count(deployment, "SELECT count(*) FROM history_payments") == payments


def test_replay_then_training_reproduces_the_offline_features_and_model(
    deployment: Deployment, history_file: Path, imported: str,
) -> None:
    replayed = deployment.payflow("replay")
    assert replayed.exit_code == 0, replayed.output
    print(replayed.output)  # the replay's figures (pytest -s shows them)
    with psycopg.connect(deployment.settings.database_url) as conn:
        online = read_feature_log(conn)
    offline = from_simulation(read_csv(history_file))
    online = _aligned(online, offline)
    assert np.array_equal(online.matrix, offline.matrix), "the worker's features are the offline"
    assert np.array_equal(online.times, offline.times)
    assert np.array_equal(online.label_times, offline.label_times)
    assert list(online.cards) == list(offline.cards)
    share = offline.feature_names.index("merchant_fraud_share_28d")
    assert (online.matrix[:, share] > 0).any(), "labels reached the merchant stage"
    for kind in KINDS:
        _assert_same_model(kind, online, offline)
    _assert_nothing_reached_the_live_deployment(deployment)


def _aligned(online: Dataset, offline: Dataset) -> Dataset:
    """``online``'s rows in ``offline``'s order (rows of equal time may come in either)."""
    assert sorted(online.payment_ids) == sorted(offline.payment_ids), "one row per payment"
    position = {pid: i for i, pid in enumerate(online.payment_ids)}
    order = np.array([position[pid] for pid in offline.payment_ids])
    return online.select(order)


def _assert_same_model(kind: str, online: Dataset, offline: Dataset) -> None:
    def trained(data: Dataset) -> tuple[str, np.ndarray, np.ndarray]:
        splits = time_splits(data, train_days=4, validation_days=1.75, test_days=1.75,
                             gap_days=0.75, start_seconds=HISTORY.start_seconds)
        assert 0 < splits.train.labels.sum() < len(splits.train.labels), "both classes"
        candidate = train_candidate(kind, splits)
        test = splits.test.data.columns(FEATURES[kind])
        return (splits.train.data.fingerprint(splits.train.labels),
                candidate.estimator.predict_proba(test)[:, 1], _parameters(candidate.estimator))

    (online_rows, online_scores, online_weights) = trained(online)
    (offline_rows, offline_scores, offline_weights) = trained(offline)
    assert online_rows == offline_rows, f"{kind}: the same training rows and labels"
    np.testing.assert_allclose(online_scores, offline_scores, rtol=0, atol=1e-9)
    np.testing.assert_allclose(online_weights, offline_weights, rtol=0, atol=1e-9)


def _parameters(estimator: object) -> np.ndarray:
    """The fitted numbers: coefficients and intercept, or the trees' leaf values."""
    steps = getattr(estimator, "steps", None)
    if steps is not None:
        final = steps[-1][1]
        return np.concatenate([final.coef_.ravel(), final.intercept_])
    predictors = estimator._predictors  # type: ignore[attr-defined]
    return np.concatenate([tree.nodes["value"] for trees in predictors for tree in trees])


def _assert_nothing_reached_the_live_deployment(deployment: Deployment) -> None:
    settings = deployment.settings
    assert _count(deployment, "SELECT count(*) FROM payments") == 0
    assert _count(deployment, "SELECT count(*) FROM journal_entries") == 0
    for topic in (PAYMENT_REQUESTS, PAYMENT_DECISIONS, PAYMENT_EVENTS):
        assert asyncio.run(_messages(settings, topic)) == 0, f"{topic.name} of the live prefix"
    leftovers = asyncio.run(_topics(settings, f"{settings.topic_prefix}replay."))
    assert leftovers == [], "the replay deleted its deployment's topics"


def _count(deployment: Deployment, query: str) -> int:
    with psycopg.connect(deployment.settings.database_url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


async def _messages(settings: Settings, topic: Topic) -> int:
    """How many messages the deployment's ``topic`` holds."""
    name = topic.name_for(settings.topic_prefix)
    partitions = [TopicPartition(name, p) for p in range(topic.partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        return sum(ends[p] - starts[p] for p in partitions)
    finally:
        await consumer.stop()


async def _topics(settings: Settings, prefix: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        return [t for t in await admin.list_topics() if t.startswith(prefix)]
    finally:
        await admin.close()

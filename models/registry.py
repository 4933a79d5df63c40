"""The fraud model registry in PostgreSQL: versioned skops artifacts and their promotions.

Every worker reads the champion from here at start-up and again when a promotion event arrives
(or, as a safety net, when its periodic check finds a newer promotion). The promotion history is
append-only; ``rollback`` promotes the model the current champion replaced.

``list_models`` (CLI, sync) and ``list_models_async`` (the API's pool) run the same query
(``LIST_SQL``). numpy and the artifact code (``models.scoring``) are imported only by what
loads or stores an artifact, so the API can list models without them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

if TYPE_CHECKING:  # numpy and scikit-learn: only what loads or trains needs them at run time
    from models.scoring import FraudModel
    from models.training import TrainedModel


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (unknown version, nothing to roll back to)."""


@dataclass(frozen=True)
class ModelInfo:
    """A registered model's lineage, without its artifact."""

    version: int
    metrics: dict[str, float]
    """What training measured (``rows``, ``fraud_rate``, ``test_auc_roc``, ...)."""
    feature_names: tuple[str, ...]
    window_start: datetime
    window_end: datetime
    """The event-time window of the training rows."""
    data_fingerprint: str
    """SHA-256 of the training rows and labels."""
    code_version: str
    created_at: datetime
    champion: bool
    """The newest promotion names it: the model every worker scores with."""
    description: str = ""
    last_promoted_at: datetime | None = None
    """When it was last promoted or rolled back to (None: never champion)."""
    last_promoted_by: str | None = None


@dataclass(frozen=True)
class Promotion:
    version: int
    previous_version: int | None
    action: str
    actor: str


Change = Callable[[psycopg.Connection[Any]], Promotion]
"""A registry change that yields a promotion (promote or rollback)."""


def model_name(version: int) -> str:
    """The ``model_version`` decisions carry."""
    return f"fraud-v{version}"


def register(conn: psycopg.Connection[Any], trained: TrainedModel, code_version: str,
             description: str = "") -> int:
    """Store a trained model as the next version (not promoted); return its version."""
    from models.scoring import dump_estimator

    with conn.transaction():
        conn.execute("LOCK TABLE fraud_models IN SHARE ROW EXCLUSIVE MODE")
        row = conn.execute(
            """INSERT INTO fraud_models (version, artifact, feature_names, metrics,
                   training_window_start, training_window_end, data_fingerprint, code_version,
                   description)
               SELECT coalesce(max(version), 0) + 1, %s, %s, %s, %s, %s, %s, %s, %s
               FROM fraud_models RETURNING version""",
            (dump_estimator(trained.estimator), Jsonb(list(trained.feature_names)),
             Jsonb(trained.metrics), trained.window_start, trained.window_end,
             trained.data_fingerprint, code_version, description),
        ).fetchone()
    assert row is not None
    return int(row[0])


def champion(conn: psycopg.Connection[Any]) -> int | None:
    row = conn.execute(
        "SELECT version FROM fraud_model_promotions ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return None if row is None else int(row[0])


def load(conn: psycopg.Connection[Any], version: int) -> FraudModel:
    """The model of ``version``, deserialized (ModelLoadError when the artifact is bad)."""
    from models.scoring import FraudModel, load_estimator

    row = conn.execute(
        "SELECT artifact, feature_names FROM fraud_models WHERE version = %s", (version,)
    ).fetchone()
    if row is None:
        raise RegistryError(f"no model version {version}")
    artifact, names = row
    return FraudModel(model_name(version), load_estimator(bytes(artifact)), tuple(names))


LIST_SQL = """
    WITH champion AS (SELECT version FROM fraud_model_promotions ORDER BY seq DESC LIMIT 1)
    SELECT m.version, m.metrics, m.feature_names, m.training_window_start,
           m.training_window_end, m.data_fingerprint, m.code_version, m.created_at,
           coalesce(m.version = (SELECT version FROM champion), false), m.description,
           p.promoted_at, p.actor
    FROM fraud_models m
    LEFT JOIN LATERAL (SELECT promoted_at, actor FROM fraud_model_promotions
                       WHERE version = m.version ORDER BY seq DESC LIMIT 1) p ON true
    ORDER BY m.version"""
"""Every model, oldest first, with its champion flag and its latest promotion."""


def _model_info(row: tuple[Any, ...]) -> ModelInfo:
    return ModelInfo(int(row[0]), dict(row[1]), tuple(row[2]), row[3], row[4], row[5], row[6],
                     row[7], champion=bool(row[8]), description=row[9],
                     last_promoted_at=row[10], last_promoted_by=row[11])


def list_models(conn: psycopg.Connection[Any]) -> list[ModelInfo]:
    return [_model_info(row) for row in conn.execute(LIST_SQL).fetchall()]


async def list_models_async(conn: psycopg.AsyncConnection[Any]) -> list[ModelInfo]:
    """``list_models`` on an async connection (the API's pool)."""
    cursor = await conn.execute(LIST_SQL)
    return [_model_info(row) for row in await cursor.fetchall()]


def promote(conn: psycopg.Connection[Any], version: int, actor: str,
            action: str = "promote") -> Promotion:
    """Make ``version`` the champion (it must load cleanly first)."""
    load(conn, version)
    with conn.transaction():
        conn.execute("LOCK TABLE fraud_model_promotions IN SHARE ROW EXCLUSIVE MODE")
        previous = champion(conn)
        conn.execute(
            """INSERT INTO fraud_model_promotions (version, previous_version, action, actor)
               VALUES (%s, %s, %s, %s)""",
            (version, previous, action, actor),
        )
    return Promotion(version, previous, action, actor)


def rollback(conn: psycopg.Connection[Any], actor: str) -> Promotion:
    """Promote the model that the current champion replaced when it was last promoted."""
    current = champion(conn)
    if current is None:
        raise RegistryError("no model has been promoted")
    row = conn.execute(
        """SELECT previous_version FROM fraud_model_promotions
           WHERE version = %s AND action = 'promote' ORDER BY seq DESC LIMIT 1""",
        (current,),
    ).fetchone()
    if row is None or row[0] is None or row[0] == current:
        raise RegistryError(f"fraud-v{current} replaced no other model: nothing to roll back to")
    return promote(conn, int(row[0]), actor, action="rollback")


def promotion_message(promotion: Promotion) -> bytes:
    """The ``models.promotions`` event announcing a promotion (key: ``fraud``)."""
    return json.dumps({
        "id": uuid.uuid4().hex,
        "type": "model.promoted.v1",
        "time": datetime.now(UTC).isoformat(),
        "model": model_name(promotion.version),
        "version": promotion.version,
        "previous_version": promotion.previous_version,
        "action": promotion.action,
        "actor": promotion.actor,
    }).encode()

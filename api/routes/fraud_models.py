"""``GET /api/models``: the fraud model registry, for analysts and admins.

The fraud model is platform-internal (it scores every merchant's payments), so merchant users
and API keys get 403. Read with the API's pool through ``models.registry.list_models_async``,
the same query the ``payflow model list`` CLI runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import ServicesDep, StaffSession
from models import registry

router = APIRouter(prefix="/api", tags=["dashboard"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not logged in and no API key"},
    403: {"description": "Not an analyst's or admin's dashboard session (merchant users and "
                         "API keys may not see the fraud model)"},
}


class FraudModelPublic(BaseModel):
    """One registered fraud model and its lineage (never its artifact)."""

    version: int = Field(description="Registry version, 1 upwards")
    name: str = Field(description="The model_version decisions carry, e.g. fraud-v3")
    champion: bool = Field(description="The model every worker scores with now")
    metrics: dict[str, float] = Field(
        description="What training measured: rows, fraud_rate, test_auc_roc, "
                    "test_average_precision (whichever were computed)")
    training_window_start: datetime
    training_window_end: datetime = Field(description="Event-time window of the training rows")
    data_fingerprint: str = Field(description="SHA-256 of the training rows and labels")
    code_version: str = Field(description="Git commit (or package version) that trained it")
    description: str
    feature_count: int = Field(ge=0, description="Length of the model's input vector")
    created_at: datetime = Field(description="When it was registered")
    last_promoted_at: datetime | None = Field(
        description="Its latest promotion or rollback to it; null if never champion")
    last_promoted_by: str | None = Field(description="Who made that promotion")


class FraudModelList(BaseModel):
    data: list[FraudModelPublic] = Field(description="Oldest version first")
    champion_version: int | None = Field(description="null until a model is promoted")


def _public(info: registry.ModelInfo) -> FraudModelPublic:
    return FraudModelPublic(
        version=info.version, name=registry.model_name(info.version), champion=info.champion,
        metrics=info.metrics, training_window_start=info.window_start,
        training_window_end=info.window_end, data_fingerprint=info.data_fingerprint,
        code_version=info.code_version, description=info.description,
        feature_count=len(info.feature_names), created_at=info.created_at,
        last_promoted_at=info.last_promoted_at, last_promoted_by=info.last_promoted_by)


@router.get("/models", response_model=FraudModelList, responses=ERRORS)
async def list_models(_: StaffSession, services: ServicesDep) -> FraudModelList:
    """The fraud models of the registry with their metrics and lineage; the champion flagged."""
    async with services.pool.connection() as conn:
        infos = await registry.list_models_async(conn)
    champions = [info.version for info in infos if info.champion]
    assert len(champions) <= 1, champions
    return FraudModelList(data=[_public(info) for info in infos],
                          champion_version=champions[0] if champions else None)

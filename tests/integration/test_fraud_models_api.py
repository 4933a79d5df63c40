"""``GET /api/models`` on the real services: analysts and admins see the registry's models with
the champion flagged; merchant users and merchant API keys get 403; the Risk page shows them.

Promoting a model changes what every worker on the same database scores with, so this module
runs an API process of its own on a database of its own (the session's stack and its workers
never see these models); Kafka and Redis are the session's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import client
from models import registry
from models.features import FEATURE_NAMES
from models.synthetic import generate
from models.training import TrainedModel, examples, train
from payflow.cli.user import ensure_user
from payflow.merchants import create_or_add_key
from payflow.settings import REPO_ROOT
from payflow.supervisor import Supervisor, free_port
from tests.harness import IsolatedEnvironment, derived_environment

pytestmark = pytest.mark.integration
PASSWORD = "fraud models test password"
RISK_PAGE = REPO_ROOT / "dashboard" / "app_pages" / "risk.py"


@dataclass
class Registry:
    base_url: str
    trained: TrainedModel
    versions: list[int]
    """Registered in this order: the first promoted, then the second (champion); the third
    never promoted."""
    analyst: str
    admin: str
    merchant_user: str
    merchant_id: str
    api_key: str


@pytest.fixture(scope="module")
def models_api(environment: IsolatedEnvironment) -> Iterator[Registry]:
    run = uuid.uuid4().hex[:6]
    models = derived_environment(environment, f"models{run}")
    url = models.settings.database_url
    port = free_port()
    supervisor = Supervisor(environment.settings.home / "logs" / f"test-models-{run}",
                            env={**models.env, "PAYFLOW_API_PORT": str(port)})
    try:
        history = generate(seed=9, customers=120, days=8)
        trained = train(examples(history.events, history.fraud))
        with psycopg.connect(url) as conn:
            versions = [registry.register(conn, trained, f"code{n}", f"model {n}")
                        for n in range(3)]
            registry.promote(conn, versions[0], "first-analyst")
            registry.promote(conn, versions[1], "second-analyst")
        merchant = asyncio.run(create_or_add_key(url, "Model Shop", f"{run}@models.test"))
        emails = {role: f"{role}-{run}@models.test" for role in ("analyst", "admin", "merchant")}
        for role, email in emails.items():
            asyncio.run(ensure_user(url, email, PASSWORD, role,  # type: ignore[arg-type]
                                    merchant.merchant_id if role == "merchant" else None))
        supervisor.start("api", "api")
        base_url = f"http://127.0.0.1:{port}"
        _wait_ready(base_url, supervisor, timeout_seconds=60)
        yield Registry(base_url, trained, versions, emails["analyst"], emails["admin"],
                       emails["merchant"], merchant.merchant_id, merchant.api_key)
    finally:
        supervisor.stop_all()
        models.teardown()


def _wait_ready(base_url: str, supervisor: Supervisor, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if supervisor.dead():
            pytest.fail(f"the API exited: {supervisor.dead()[0].log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the models API was not ready within {timeout_seconds}s")


@contextmanager
def _logged_in(api: Registry, email: str) -> Iterator[httpx.Client]:
    """An HTTP client holding ``email``'s session cookie."""
    with httpx.Client(base_url=api.base_url, timeout=10) as http:
        response = http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        yield http


def test_an_analyst_sees_every_model_with_its_lineage_and_the_champion_flagged(
    models_api: Registry
) -> None:
    with _logged_in(models_api, models_api.analyst) as http:
        response = http.get("/api/models")  # no merchant chosen: the model is platform-wide
    assert response.status_code == 200, response.text
    body = response.json()
    first, second, third = models_api.versions
    assert [m["version"] for m in body["data"]] == [first, second, third]
    assert [m["champion"] for m in body["data"]] == [False, True, False]
    assert body["champion_version"] == second
    champion = body["data"][1]
    trained = models_api.trained
    assert champion["name"] == f"fraud-v{second}" and champion["code_version"] == "code1"
    assert champion["metrics"] == pytest.approx(trained.metrics)
    assert {"test_auc_roc", "test_average_precision"} <= champion["metrics"].keys()
    assert champion["feature_count"] == len(FEATURE_NAMES)
    assert champion["data_fingerprint"] == trained.data_fingerprint
    assert (champion["training_window_start"][:19], champion["training_window_end"][:19]) == (
        trained.window_start.isoformat()[:19], trained.window_end.isoformat()[:19])
    assert champion["last_promoted_by"] == "second-analyst"
    assert body["data"][0]["last_promoted_by"] == "first-analyst"
    assert body["data"][2]["last_promoted_at"] is None
    assert "artifact" not in champion


def test_an_admin_acting_for_a_merchant_sees_the_same_models(models_api: Registry) -> None:
    with _logged_in(models_api, models_api.admin) as http:
        response = http.get("/api/models", headers={"X-Merchant-Id": models_api.merchant_id})
    assert response.status_code == 200, response.text
    assert response.json()["champion_version"] == models_api.versions[1]


@pytest.mark.parametrize("caller", ["merchant session", "merchant api key"])
def test_merchants_may_not_see_the_fraud_model(models_api: Registry, caller: str) -> None:
    if caller == "merchant session":
        with _logged_in(models_api, models_api.merchant_user) as http:
            response = http.get("/api/models")
    else:
        response = httpx.get(f"{models_api.base_url}/api/models", timeout=10,
                             headers={"Authorization": f"Bearer {models_api.api_key}"})
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error", "staff_only", None)
    assert "fraud" not in response.text and "code1" not in response.text


def test_without_credentials_the_models_are_401(models_api: Registry) -> None:
    response = httpx.get(f"{models_api.base_url}/api/models", timeout=10)
    assert response.status_code == 401, response.text


def _risk_page(api: Registry, email: str) -> AppTest:
    app = AppTest.from_file(str(RISK_PAGE), default_timeout=30)
    auth = client.login(api.base_url, email, PASSWORD)
    app.session_state["auth"] = auth if auth.merchant_id else auth.acting_for(api.merchant_id)
    return app.run()


def test_the_risk_page_shows_an_analyst_the_models_with_the_champion_starred(
    models_api: Registry
) -> None:
    app = _risk_page(models_api, models_api.analyst)
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    (table,) = [frame.value for frame in app.dataframe]
    assert list(table["model"]) == [f"fraud-v{v}" for v in reversed(models_api.versions)]
    assert list(table["champion"]) == ["", "★ champion", ""]
    assert all(value != "—" for value in table["AUC"])


def test_the_risk_page_tells_a_merchant_user_the_model_is_for_analysts(
    models_api: Registry
) -> None:
    app = _risk_page(models_api, models_api.merchant_user)
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    assert any("visible to analysts" in str(info.value) for info in app.info)
    assert not app.dataframe

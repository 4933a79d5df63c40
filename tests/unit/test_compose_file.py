"""Offline checks of docker-compose.yml.

Development machines and CI have the Docker client but no engine and no compose plugin, so
``docker compose config`` cannot check the file. Instead it is validated here against the
official Compose Specification JSON schema, which the dev dependency ``check-jsonschema``
vendors (see SCHEMA_PATH), plus the project's own rules: loopback-only ports, healthchecks on
the infrastructure, one shared environment block.
"""

from __future__ import annotations

import copy
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

SCHEMA_PATH = "check_jsonschema/builtin_schemas/vendor/compose-spec.json"
COMPOSE_FILE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
INFRA = {"kafka", "postgres", "redis"}
APPS = {"migrate", "api", "worker", "feature-log", "ledger", "dashboard"}
SHARED_ENV = {
    "PAYFLOW_KAFKA_BOOTSTRAP": "kafka:29092",
    "PAYFLOW_DATABASE_URL": "postgresql://payflow:payflow@postgres:5432/payflow",
    "PAYFLOW_REDIS_URL": "redis://redis:6379/0",
    "PAYFLOW_API_HOST": "0.0.0.0",
    "PAYFLOW_ENVIRONMENT": "development",
}


@pytest.fixture(scope="session")
def validator() -> Validator:
    # Read the file from the distribution without importing check_jsonschema (whose CLI import
    # needs a newer click than faust-streaming allows in some releases).
    try:
        schema_file = metadata.distribution("check-jsonschema").locate_file(SCHEMA_PATH)
        schema = json.loads(Path(str(schema_file)).read_bytes())
    except (metadata.PackageNotFoundError, FileNotFoundError) as exc:
        pytest.fail(
            f"cannot load the Compose Specification schema ({exc!r}); it ships with the dev "
            "dependency check-jsonschema: .venv/bin/pip install -e '.[dev]'",
            pytrace=False,
        )
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.fixture()
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


def test_matches_the_compose_specification(validator: Validator, compose: dict[str, Any]) -> None:
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    assert "version" not in compose, "the top-level `version` key is obsolete"
    assert set(compose["services"]) == INFRA | APPS


def test_validator_catches_a_misspelt_key(validator: Validator, compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    postgres = broken["services"]["postgres"]
    postgres["healtcheck"] = postgres.pop("healthcheck")
    messages = [e.message for e in validator.iter_errors(broken)]
    assert any("healtcheck" in m for m in messages), messages


def test_depends_on_names_existing_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        missing = set(service.get("depends_on", {})) - set(services)
        assert not missing, f"{name} depends on unknown services {missing}"
    for name in APPS - {"migrate"}:
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name
    for name in APPS:
        for infra in INFRA:
            assert services[name]["depends_on"][infra]["condition"] == "service_healthy"


def test_ports_bind_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port!r} beyond loopback"


def test_infrastructure_has_healthchecks(compose: dict[str, Any]) -> None:
    for name in INFRA:
        healthcheck = compose["services"][name].get("healthcheck", {})
        assert healthcheck.get("test") and not healthcheck.get("disable"), name


def test_app_services_share_the_environment(compose: dict[str, Any]) -> None:
    assert compose["x-payflow-env"] == SHARED_ENV
    for name in APPS:
        env = compose["services"][name]["environment"]
        shared = {k: v for k, v in env.items() if k in SHARED_ENV}
        assert shared == SHARED_ENV, name
    advertised = compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"://{SHARED_ENV['PAYFLOW_KAFKA_BOOTSTRAP']}" in advertised


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":")[0]
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} uses undeclared volume {source!r}"

"""The one settings model for every payflow process.

Every value comes from an environment variable prefixed ``PAYFLOW_`` (or a ``.env`` file in the
working directory) and has a documented default for local development. The defaults point at
the services that ``payflow services up`` starts on 127.0.0.1; nothing else in the code names a
host, a port or a secret.

Development defaults for secrets are marked ``DEV ONLY``: ``Settings.check_production`` refuses
to start a process in production mode while any of them is still in use.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

# DEV ONLY: well-known development secrets. Production mode refuses to start with them.
_DEV_CARD_FINGERPRINT_KEY = "dev-only-fingerprint-key-change-me"
_DEV_VAULT_KEY = "ZGV2LW9ubHktdmF1bHQta2V5LTMyLWJ5dGVzLWxvbmc="  # base64 of 32 bytes, DEV ONLY
_DEV_SESSION_SECRET = "dev-only-session-secret-change-me"


class Settings(BaseSettings):
    """Configuration shared by the API, the stream worker, the ledger and the CLI."""

    model_config = SettingsConfigDict(
        env_prefix="PAYFLOW_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Literal["development", "test", "production"] = Field(
        "development", description="production refuses development secrets and plain http"
    )
    home: Path = Field(
        REPO_ROOT / ".payflow",
        description="where locally managed services keep jars, data, logs and pid files",
    )

    # --- Kafka
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    kafka_controller_port: int = Field(9093, description="KRaft controller port (local broker)")
    topic_prefix: str = Field(
        "", description="prefix for every topic name; tests use it to isolate runs"
    )
    kafka_partitions: int = Field(
        6, ge=1, description="partitions for topics the catalog does not pin"
    )

    # --- PostgreSQL
    database_url: str = Field(
        "postgresql://payflow:payflow@127.0.0.1:5432/payflow",
        description="libpq URL of the system-of-record database (DEV ONLY password)",
    )
    database_pool_min: int = Field(2, ge=1)
    database_pool_max: int = Field(10, ge=1)

    # --- Redis
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL")

    # --- API
    api_host: str = Field("127.0.0.1", description="address the API binds")
    api_port: int = Field(8000, description="port the API binds")
    decision_budget_seconds: float = Field(
        1.5, gt=0, le=30, description="how long POST /v1/payments waits before answering pending"
    )
    api_url: str = Field(
        "", description="base URL clients (the dashboard) use to reach the API; "
        "empty means http://{api_host}:{api_port}"
    )
    dashboard_port: int = Field(8501, description="port of the Streamlit dashboard")
    dashboard_api_key: SecretStr = Field(
        SecretStr(""), description="API key the dashboard uses until login arrives (demo sets it)"
    )

    # --- Stream worker
    worker_web_port: int = Field(6066, description="Faust worker's web port (metrics, health)")
    stream_batch_size: int = Field(500, ge=1, description="requests scored per micro-batch")
    stream_batch_wait_seconds: float = Field(
        0.01, ge=0, description="longest wait to fill a micro-batch"
    )

    # --- Secrets (DEV ONLY defaults)
    card_fingerprint_key: SecretStr = Field(
        SecretStr(_DEV_CARD_FINGERPRINT_KEY),
        description="HMAC key for card fingerprints (DEV ONLY default)",
    )
    vault_key: SecretStr = Field(
        SecretStr(_DEV_VAULT_KEY),
        description="base64 AES-256-GCM key for the card vault (DEV ONLY default)",
    )
    session_secret: SecretStr = Field(
        SecretStr(_DEV_SESSION_SECRET), description="dashboard session signing key (DEV ONLY)"
    )

    log_level: str = Field("INFO", description="root log level for payflow processes")

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_is_topic_safe(cls, value: str) -> str:
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        if not set(value) <= allowed:
            raise ValueError("topic_prefix may hold only letters, digits, '.', '_' and '-'")
        return value

    @property
    def api_base_url(self) -> str:
        return self.api_url.rstrip("/") or f"http://{self.api_host}:{self.api_port}"

    def check_production(self) -> list[str]:
        """Problems that make these settings unfit for production (empty when fine)."""
        if self.environment != "production":
            return []
        problems = []
        dev_secrets = {
            "PAYFLOW_CARD_FINGERPRINT_KEY": (self.card_fingerprint_key, _DEV_CARD_FINGERPRINT_KEY),
            "PAYFLOW_VAULT_KEY": (self.vault_key, _DEV_VAULT_KEY),
            "PAYFLOW_SESSION_SECRET": (self.session_secret, _DEV_SESSION_SECRET),
        }
        for name, (value, dev_default) in dev_secrets.items():
            if value.get_secret_value() == dev_default:
                problems.append(f"{name} still has its development default")
        if ":payflow@" in self.database_url:
            problems.append("PAYFLOW_DATABASE_URL still uses the development password")
        return problems


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()

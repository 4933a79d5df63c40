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
    database_pool_timeout_seconds: float = Field(
        2.0, gt=0, le=30, description="how long an API request waits for a PostgreSQL "
        "connection before answering 503 (with PostgreSQL down the pool holds none)"
    )

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
    api_max_in_flight: int = Field(
        256, ge=1, description="concurrent requests one API process serves; past it, 503 at once"
    )
    api_min_in_flight: int = Field(
        16, ge=1, description="concurrent requests one API process always admits (the adaptive "
        "bound between this and api_max_in_flight never sheds below it)"
    )
    api_latency_target_seconds: float | None = Field(
        None, gt=0, description="answer time the API keeps: it admits what it answers in a "
        "share of it (0.2-0.7, lowered on answers past it, raised on answers within); empty: "
        "the decision budget"
    )
    rate_limit_per_second: float = Field(
        100.0, gt=0, description="API requests per second per merchant (token bucket refill)"
    )
    rate_limit_burst: int = Field(
        200, ge=1, description="requests a merchant may send at once before the rate applies"
    )
    dashboard_refresh_seconds: int = Field(
        30, ge=5, le=3600, description="how often the dashboard's Overview refreshes itself"
    )

    # --- Dashboard sessions (cookie + Redis) and login limits
    session_ttl_seconds: int = Field(
        8 * 3600, ge=60, le=30 * 24 * 3600, description="a dashboard session's lifetime"
    )
    session_cookie_name: str = Field(
        "payflow_session", pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="name of the dashboard session cookie",
    )
    login_max_failures: int = Field(
        5, ge=1, description="failed logins per email within the window before 429"
    )
    login_max_failures_per_ip: int = Field(
        50, ge=1, description="failed logins per client address within the window before 429"
    )
    login_failure_window_seconds: int = Field(
        900, ge=1, description="window over which failed logins are counted"
    )

    # --- Stream worker
    worker_web_port: int = Field(6066, description="Faust worker's web port (metrics, health)")
    stream_batch_size: int = Field(500, ge=1, description="requests scored per micro-batch")
    stream_batch_wait_seconds: float = Field(
        0.01, ge=0, description="longest wait to fill a micro-batch"
    )
    worker_name: str = Field(
        "worker-1", pattern=r"^[A-Za-z0-9_.-]+$",
        description="names this worker's local table state (RocksDB) under home/streams/; "
        "each worker on one machine needs its own, and keeps it across restarts",
    )
    model_check_seconds: float = Field(
        30.0, gt=0, description="how often a worker re-reads the champion model and the "
        "merchants' risk thresholds (promotion events make it reload at once as well)"
    )
    liveness_stall_seconds: float = Field(
        60.0, ge=0, description="a worker or consumer whose committed offset has not moved "
        "for this long while records wait on a partition it owns (the broker answering and no "
        "dependency away) logs why and exits with status 75 for its supervisor to restart it; "
        "0 turns the check off (payflow.liveness)"
    )
    liveness_check_seconds: float = Field(
        5.0, gt=0, description="how often the liveness check reads the offsets from the broker"
    )
    liveness_recovery_seconds: float = Field(
        900.0, ge=0, description="how long a stream worker's stall is excused while Faust "
        "rebalances or recovers its tables from their changelogs (a long recovery is not a "
        "hang; one past this is)"
    )

    # --- Webhook sender (payflow webhooks); README "Webhooks" documents the policy
    webhooks_allow_private_urls: bool | None = Field(
        None, description="accept webhook URLs on private, loopback, link-local or reserved "
        "addresses; unset means true in development/test and false in production, where true "
        "is refused"
    )
    webhooks_timeout_seconds: float = Field(
        10.0, gt=0, le=60, description="how long one delivery attempt may take"
    )
    webhooks_retry_schedule_seconds: tuple[float, ...] = Field(
        (5, 300, 1800, 7200, 18000, 36000, 36000), min_length=1, max_length=20,
        description="delay before each retry after a failed attempt (JSON list); after the "
        "last one the delivery is dead-lettered",
    )
    webhooks_retry_jitter: float = Field(
        0.1, ge=0, le=1, description="each retry waits up to this fraction longer, at random"
    )
    webhooks_disable_after_seconds: float = Field(
        3 * 24 * 3600, gt=0, description="an endpoint whose attempts have all failed for this "
        "long is disabled"
    )
    webhooks_disable_min_failures: int = Field(
        10, ge=1, description="... and only after at least this many failed attempts in a row"
    )
    webhooks_max_in_flight: int = Field(
        128, ge=1, le=1000, description="concurrent delivery attempts per sender process"
    )
    webhooks_max_in_flight_per_endpoint: int = Field(
        4, ge=1, le=100, description="concurrent attempts to one endpoint per sender process"
    )
    webhooks_max_in_flight_per_merchant: int = Field(
        16, ge=1, le=1000, description="concurrent attempts to one merchant's endpoints per "
        "sender process"
    )
    webhooks_poll_seconds: float = Field(
        0.5, gt=0, le=60, description="how often the sender looks for due retries"
    )
    webhooks_secret_overlap_seconds: int = Field(
        24 * 3600, ge=0, le=7 * 24 * 3600,
        description="how long a rotated-out secret keeps signing, by default",
    )

    # --- Ledger
    bank_transfer_clearing_seconds: float = Field(
        60.0, ge=0, description="sandbox: how long an approved bank transfer takes to clear"
    )
    sandbox_dispute_seconds: float = Field(
        30.0, ge=0, description="sandbox: delay before the dispute test card is disputed"
    )
    settlement_delay_days: int = Field(2, ge=0, description="captured funds available T+N")

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

    @field_validator("webhooks_retry_schedule_seconds")
    @classmethod
    def _retry_delays_are_positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay <= 0 for delay in value):
            raise ValueError("every webhook retry delay must be positive")
        return value

    @property
    def api_base_url(self) -> str:
        return self.api_url.rstrip("/") or f"http://{self.api_host}:{self.api_port}"

    @property
    def webhooks_private_urls_allowed(self) -> bool:
        """Whether webhook URLs may point at private addresses (never in production)."""
        if self.environment == "production":
            return False
        if self.webhooks_allow_private_urls is None:
            return True
        return self.webhooks_allow_private_urls

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
        if self.webhooks_allow_private_urls:
            problems.append("PAYFLOW_WEBHOOKS_ALLOW_PRIVATE_URLS is true (SSRF)")
        return problems


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()

"""Locally managed real services: Kafka (KRaft, Maven jars), PostgreSQL and Redis (Debian)."""

from __future__ import annotations

from payflow.services.base import Service, ServiceError, ServiceStatus
from payflow.services.kafka import Kafka
from payflow.services.postgres import Postgres
from payflow.services.redis import Redis
from payflow.settings import Settings

__all__ = ["Service", "ServiceError", "ServiceStatus", "all_services"]


def all_services(settings: Settings) -> list[Service]:
    """Every service in start order (stop in reverse)."""
    return [Postgres(settings), Redis(settings), Kafka(settings)]

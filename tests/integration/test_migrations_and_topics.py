"""Migrations and topic creation are repeatable, and edited history is refused."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from payflow.db import migrate as migrate_module
from payflow.db.databases import drop_database
from payflow.db.migrate import Migration, MigrationError, available_migrations, migrate
from payflow.topics import create_topics
from tests.harness import IsolatedEnvironment

pytestmark = pytest.mark.integration


def test_migrating_twice_applies_nothing_the_second_time(
    environment: IsolatedEnvironment,
) -> None:
    assert migrate(environment.settings.database_url) == []
    with psycopg.connect(environment.settings.database_url) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [m.version for m in available_migrations()]


def test_an_edited_migration_is_refused(
    environment: IsolatedEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = available_migrations()
    edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in original]
    monkeypatch.setattr(migrate_module, "available_migrations", lambda: edited)
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(environment.settings.database_url)


def test_concurrent_migrations_on_a_fresh_database_apply_once(
    environment: IsolatedEnvironment,
) -> None:
    name = f"payflow_migrate_{uuid.uuid4().hex[:8]}"
    admin = environment.admin_database_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        async def both() -> list[list[Migration]]:
            return await asyncio.gather(asyncio.to_thread(migrate, url),
                                        asyncio.to_thread(migrate, url))

        first, second = asyncio.run(both())
        assert len(first) + len(second) == len(available_migrations())
    finally:
        drop_database(admin, name)


async def test_creating_topics_again_creates_nothing(environment: IsolatedEnvironment) -> None:
    assert await create_topics(environment.settings) == []

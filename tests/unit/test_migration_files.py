"""The migration files themselves: numbered, unique, loadable from the installed package."""

from __future__ import annotations

from payflow.db.migrate import available_migrations


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    versions = [migration.version for migration in available_migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_every_migration_has_sql_and_a_stable_checksum() -> None:
    for migration in available_migrations():
        assert "CREATE" in migration.sql.upper()
        assert len(migration.checksum) == 64

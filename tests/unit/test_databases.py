"""``payflow.db.databases.drop_database`` outlasts an autovacuum worker in the database: FORCE
cannot end it for a role that is not a superuser (InsufficientPrivilege), and it soon leaves."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from payflow.db import databases


class RefusingConnection:
    """A connection whose DROP fails while ``refusals`` last (an autovacuum worker is in)."""

    def __init__(self, log: list[str], refusals: list[int]) -> None:
        self.log, self.refusals = log, refusals

    def __enter__(self) -> RefusingConnection:
        return self

    def __exit__(self, *_: Any) -> None:
        return None

    def execute(self, query: Any) -> None:
        self.log.append("drop")
        if self.refusals[0] > 0:
            self.refusals[0] -= 1
            raise psycopg.errors.InsufficientPrivilege("must be a member of the role whose "
                                                       "process is being terminated")


def connecting(log: list[str], refusals: int, monkeypatch: pytest.MonkeyPatch) -> None:
    left = [refusals]
    monkeypatch.setattr(databases.psycopg, "connect",
                        lambda *_, **__: RefusingConnection(log, left))
    monkeypatch.setattr(databases.time, "sleep", lambda seconds: log.append(f"wait {seconds}"))


def test_a_drop_refused_while_autovacuum_is_in_the_database_is_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    connecting(log, 2, monkeypatch)
    databases.drop_database("postgresql://payflow@127.0.0.1/payflow", "payflow_test_x")
    assert log == ["drop", "wait 0.5", "drop", "wait 0.5", "drop"]


def test_a_drop_refused_for_good_raises_after_the_last_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    connecting(log, databases.DROP_ATTEMPTS + 1, monkeypatch)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        databases.drop_database("postgresql://payflow@127.0.0.1/payflow", "payflow_test_x")
    assert log.count("drop") == databases.DROP_ATTEMPTS

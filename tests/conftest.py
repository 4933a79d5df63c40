"""Fixtures shared by every test layer.

Unit tests need nothing. Integration and end-to-end tests reach the real Kafka, PostgreSQL and
Redis (``tests/harness.py`` finds or starts them) and run isolated: each pytest session gets its
own database and its own topic prefix on the shared broker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import IsolatedEnvironment, RunningStack, prepare_environment


@pytest.fixture(scope="session")
def environment() -> Iterator[IsolatedEnvironment]:
    """The real services, plus a database and topic prefix of this session's own."""
    env = prepare_environment()
    try:
        yield env
    finally:
        env.teardown()


@pytest.fixture(scope="session")
def stack(environment: IsolatedEnvironment) -> Iterator[RunningStack]:
    """API, stream worker and ledger consumer running as processes against ``environment``."""
    running = RunningStack.start(environment)
    try:
        yield running
    finally:
        running.stop()

"""Shared fixtures: the real embedded broker, and database URLs (SQLite always, PostgreSQL when reachable)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

POSTGRES_URL = os.environ.get("BURNGUARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def broker() -> Iterator["EmbeddedBroker"]:  # noqa: F821
    from streams.embedded_broker import EmbeddedBroker, create_topics
    from streams.settings import ALL_TOPICS

    with EmbeddedBroker() as b:
        create_topics(b.bootstrap, ALL_TOPICS, partitions=4)
        yield b


def _database_params() -> list:
    in_ci = os.environ.get("CI") == "true"
    pg = pytest.param("postgresql", marks=[] if (postgres_reachable() or in_ci) else
                      [pytest.mark.skip(reason="PostgreSQL not reachable at 127.0.0.1:5432 (CI runs it)")])
    return ["sqlite", pg]


@pytest.fixture(params=_database_params())
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    _drop_all(POSTGRES_URL)  # a clean schema per test
    yield POSTGRES_URL
    _drop_all(POSTGRES_URL)


def _drop_all(url: str) -> None:
    """Drop every table of the test database (the store's, the guardrail, incident and Slack tables,
    Alembic's version table): reflected, so a table added by any module is dropped too."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        meta.drop_all(engine)
    finally:
        engine.dispose()

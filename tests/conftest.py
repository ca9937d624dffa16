"""Shared fixtures: the real embedded broker, and database URLs (SQLite always, PostgreSQL when reachable)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.support.postgres import postgres_reachable

POSTGRES_URL = os.environ.get("BURNGUARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


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
    schema = f"t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _run(POSTGRES_URL, f'CREATE SCHEMA "{schema}"')
    try:
        yield _with_search_path(POSTGRES_URL, schema)
    finally:
        _run(POSTGRES_URL, f'DROP SCHEMA "{schema}" CASCADE')


def _with_search_path(url: str, schema: str) -> str:
    """The same database with `schema` first on the search path: every table the test (and any worker
    process it starts with this URL) creates lands in a schema of its own, so concurrent test runs on one
    PostgreSQL `test` database never see or drop each other's tables."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def _run(url: str, statement: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()

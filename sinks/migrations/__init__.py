"""Alembic migrations of the store: ``upgrade(database_url)`` brings a database to the newest schema.

Covers ``sinks.store`` (alerts, dead letters) and ``sinks.guardrail_tables``. A database the
alert store already created with ``create_all`` is adopted (each migration creates only the
tables that are missing). On PostgreSQL an advisory lock lets several workers upgrade at start
at the same time.

>>> upgrade("sqlite://") == head_revision()
True
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import StaticPool

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade"]

HERE = Path(__file__).resolve().parent
#: pg_advisory_lock key held while migrating ("burnguard" in ASCII, truncated to a bigint).
_PG_LOCK = 0x6275726E67756172


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _engine(database_url: str):  # noqa: ANN202 - sqlalchemy Engine
    if database_url in ("sqlite://", "sqlite:///:memory:"):
        return create_engine(database_url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    return create_engine(database_url)


def current_revision(database_url: str) -> str | None:
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        if engine is not database_url:
            engine.dispose()


def upgrade(database_url: str | Engine, revision: str = "head") -> str:
    """Migrate ``database_url`` (or an engine) to ``revision`` (default the newest); returns the revision."""
    engine = database_url if isinstance(database_url, Engine) else _engine(database_url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            return MigrationContext.configure(conn).get_current_revision() or ""
    finally:
        if engine is not database_url:
            engine.dispose()

"""Alembic migrations of the store: ``upgrade(database_url)`` brings a database to the newest schema.

Covers ``sinks.store`` (alerts, dead letters, budget snapshots), ``sinks.guardrail_tables``,
``sinks.incident_store`` (incidents, commands), ``sinks.slack.outbox`` (outbox, threads) and
``sinks.slack.interactions`` (callbacks): :data:`METADATA`. A database whose tables an older
version made with ``create_all`` is adopted (each migration creates only the tables that are
missing). Upgrades never run two at a time: within a process a lock (Alembic's context is
module-global), across processes PostgreSQL's advisory lock or SQLite's write lock
(``BEGIN IMMEDIATE``), so several workers and the CLI may upgrade at the same moment.

The incident and Slack stores do not create tables: they wait for the schema
(:func:`wait_for_tables`), which the worker upgrades once at start.

>>> upgrade("sqlite://") == head_revision()
True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, create_engine, inspect, text
from sqlalchemy.pool import StaticPool

__all__ = ["SchemaNotReady", "alembic_config", "current_revision", "head_revision", "metadata", "upgrade",
           "wait_for_tables"]

HERE = Path(__file__).resolve().parent
#: pg_advisory_lock key held while migrating ("burnguard" in ASCII, truncated to a bigint).
_PG_LOCK = 0x6275726E67756172
_LOCK = threading.Lock()
#: How long a store waits for its tables by default (seconds): the worker upgrades at start.
SCHEMA_WAIT_S = 60.0


class SchemaNotReady(RuntimeError):
    """The database lacks tables a store needs: it was never upgraded (``burnguard db upgrade``)."""


def metadata() -> list[MetaData]:
    """Every model's metadata: what the migrations must produce (Alembic's ``target_metadata``)."""
    from sinks.budget_store import BudgetSnapshotRow  # noqa: F401 - its table is in Base.metadata
    from sinks.guardrail_tables import GuardrailBase
    from sinks.incident_store import IncidentBase
    from sinks.slack.interactions import InteractionsBase
    from sinks.slack.outbox import OutboxBase
    from sinks.store import Base

    return [Base.metadata, GuardrailBase.metadata, IncidentBase.metadata, OutboxBase.metadata,
            InteractionsBase.metadata]


def wait_for_tables(engine: Engine, tables: Sequence[str], timeout: float = SCHEMA_WAIT_S,
                    poll: float = 0.25) -> None:
    """Return once every table in ``tables`` exists; :class:`SchemaNotReady` after ``timeout`` seconds.

    Blocking (call it from a thread). A database that is down raises its own error (callers' retries
    wait for it), so only a reachable database without the schema counts against ``timeout``.

    >>> e = create_engine("sqlite://", poolclass=StaticPool)
    >>> wait_for_tables(e, ["incidents"], timeout=0)
    Traceback (most recent call last):
    ...
    sinks.migrations.SchemaNotReady: the database has no table incidents: run `burnguard db upgrade` (the worker does at start)
    >>> _ = upgrade(e); wait_for_tables(e, ["incidents", "slack_outbox"], timeout=0)
    """
    deadline = time.monotonic() + timeout
    while True:
        insp = inspect(engine)
        missing = [t for t in tables if not insp.has_table(t)]
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise SchemaNotReady(f"the database has no table {', '.join(missing)}: run `burnguard db upgrade` "
                                 "(the worker does at start)")
        time.sleep(poll)


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
    if database_url.startswith("sqlite"):
        return create_engine(database_url, connect_args={"timeout": 30})  # waits for another upgrade's lock
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
        with _LOCK, engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            elif conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
                # pysqlite runs DDL outside a transaction: take the write lock first, so a second process's
                # upgrade waits for this one instead of finding a table missing and creating it twice
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            return MigrationContext.configure(conn).get_current_revision() or ""
    finally:
        if engine is not database_url:
            engine.dispose()

"""Engines and schema creation shared by the stores (alerts, budgets, incidents, Slack outbox).

>>> engine = make_engine("sqlite://")
>>> from sqlalchemy import Column, Integer, MetaData, Table, inspect
>>> meta = MetaData(); t = Table("t", meta, Column("id", Integer, primary_key=True))
>>> create_tables(engine, meta); create_tables(engine, meta)
>>> inspect(engine).has_table("t")
True
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, MetaData, Table, create_engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool


def make_engine(url: str) -> Engine:
    """SQLite in memory shares one connection across threads; an SQLite file waits up to 30 s for the write
    lock (workers and the CLI write at once); a server database checks connections before use (restarts)."""
    if url in ("sqlite://", "sqlite:///:memory:"):
        return create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    if url.startswith("sqlite"):
        return create_engine(url, connect_args={"timeout": 30})
    return create_engine(url, pool_pre_ping=True)


def create_tables(engine: Engine, metadata: MetaData, tables: Sequence[Table] | None = None) -> None:
    """Create the missing tables (idempotent); another process creating them at the same moment is fine.

    Both checked "missing" and one lost the race: PostgreSQL says ProgrammingError or IntegrityError, SQLite
    OperationalError ("table ... already exists"). The second try sees the tables and creates nothing; a
    database that is really down fails it again, so the caller still sees that error.
    """
    try:
        metadata.create_all(engine, tables=tables)
    except (ProgrammingError, IntegrityError, OperationalError):
        metadata.create_all(engine, tables=tables)

"""Alembic environment: run by ``sinks.migrations.upgrade`` (with a connection) or the ``alembic`` CLI."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from sinks.migrations import metadata

target_metadata = metadata()


def run_online() -> None:
    config = context.config
    conn = config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///burnguard.db")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


def run_offline() -> None:
    context.configure(url=context.config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if hasattr(context, "config"):  # not when pytest imports this file to look for doctests
    if context.is_offline_mode():
        run_offline()
    else:
        run_online()

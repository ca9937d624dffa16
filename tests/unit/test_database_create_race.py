"""Two processes creating the same tables at once: the one that loses the race must not fail.

The race is staged, not hoped for: a ``before_create`` listener creates the table through a second engine
after ``create_all`` has checked that it is missing and before it sends ``CREATE TABLE``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, event, inspect
from sqlalchemy.exc import OperationalError

from sinks.database import create_tables, make_engine


def _staged_race(url: str) -> tuple[Engine, MetaData, Table]:
    ours, theirs = MetaData(), MetaData()
    table = Table("alerts", ours, Column("id", Integer, primary_key=True))
    Table("alerts", theirs, Column("id", Integer, primary_key=True))
    other = make_engine(url)
    raced = {"done": False}

    @event.listens_for(table, "before_create")
    def _other_process_wins(*_: object, **__: object) -> None:
        if not raced["done"]:
            raced["done"] = True
            theirs.create_all(other)

    return make_engine(url), ours, table


def test_sqlite_loser_of_the_race_sees_the_table_and_goes_on(tmp_path: Path) -> None:
    engine, meta, table = _staged_race(f"sqlite:///{tmp_path / 'store.db'}")
    create_tables(engine, meta, [table])
    assert inspect(engine).has_table("alerts")


def test_a_database_that_is_down_still_fails(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'store.db'}")
    meta = MetaData()
    Table("t", meta, Column("id", Integer, primary_key=True))
    with pytest.raises(OperationalError):
        create_tables(engine, meta)

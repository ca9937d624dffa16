"""The schema is Alembic's alone: after ``upgrade`` every model's tables (alerts, guardrails, budgets,
incidents, Slack outbox and callbacks) match the migrated database exactly, on SQLite and PostgreSQL;
the incident and Slack stores create nothing and wait for the schema; upgrades at the same moment (threads
of one process, several processes) all succeed."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from detectors.incidents.silence import Acknowledge
from sinks.incident_store import IncidentStore
from sinks.migrations import SchemaNotReady, head_revision, metadata, upgrade
from sinks.slack.interactions import SlackInteractions
from sinks.slack.outbox import SlackOutbox

NEW_TABLES = {"incidents", "incident_commands", "slack_outbox", "slack_threads", "slack_callbacks"}
T = datetime(2026, 11, 20, 14, tzinfo=timezone.utc)


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_makes_exactly_the_models_tables(database_url: str) -> None:
    assert tables(database_url) == set()
    assert upgrade(database_url) == head_revision() == upgrade(database_url)
    ours = {t for m in metadata() for t in m.tables}
    assert NEW_TABLES <= ours
    assert tables(database_url) == ours | {"alembic_version"}
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata())
    engine.dispose()
    assert diff == []


def test_stores_create_no_tables_and_wait_for_the_schema(database_url: str) -> None:
    box, store = SlackOutbox(database_url, schema_wait=0), IncidentStore(database_url, schema_wait=0)
    with pytest.raises(SchemaNotReady, match="burnguard db upgrade"):
        box.enqueue("inc-1:post", "inc-1", "post", "#oncall", {"text": "hi"})
    with pytest.raises(SchemaNotReady):
        store.pending_commands()
    assert tables(database_url) == set()  # neither created anything
    waiting = SlackOutbox(database_url, schema_wait=30)
    added: list[bool] = []
    t = threading.Thread(target=lambda: added.append(waiting.enqueue("inc-1:post", "inc-1", "post", "#oncall",
                                                                     {"text": "hi"})))
    t.start()
    time.sleep(0.5)  # the writer is waiting for the schema, not failing
    assert t.is_alive() and added == []
    upgrade(database_url)
    t.join(timeout=10)
    assert added == [True] and [i.key for i in waiting.due(now=1e10)] == ["inc-1:post"]
    for s in (box, store, waiting):
        s.close()


def test_callbacks_at_once_on_a_fresh_worker_database_do_not_race(tmp_path) -> None:
    """Regression: SlackInteractions created its tables itself, and two callbacks handled at once in threads
    on a new SQLite file both ran CREATE TABLE ('table slack_callbacks already exists')."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    upgrade(url)
    inbox = SlackInteractions("s", url, clock=lambda: 0.0)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(inbox.handle(b"payload=x", {})[0])) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == [401] * 8
    with inbox.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM slack_callbacks WHERE status = 'rejected'")).scalar() == 8
    assert inbox.incidents.add_command(Acknowledge("inc-1", by="U1", at=T), source="cli")
    inbox.close()


def test_upgrades_at_the_same_moment_all_succeed(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'u.db'}"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            upgrade(url)
        except BaseException as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    url2 = f"sqlite:///{tmp_path / 'p.db'}"
    code = f"from sinks.migrations import upgrade; print(upgrade({url2!r}))"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outs]
    assert [out.strip() for out, _ in outs] == [head_revision()] * 3
    assert NEW_TABLES <= tables(url) and NEW_TABLES <= tables(url2)

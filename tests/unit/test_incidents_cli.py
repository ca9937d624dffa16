"""burnguard incidents / ack / snooze / resolve against a real SQLite store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from detectors.incidents.silence import Acknowledge, Resolve, Snooze
from schemas.incident import IncidentRecord
from sinks.incident_store import IncidentStore
from sinks.migrations import upgrade
from streams.cli import main

T = datetime(2026, 11, 20, 14, tzinfo=timezone.utc)


@pytest.fixture
def db(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'i.db'}"
    monkeypatch.setenv("BURNGUARD_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps table cells to the terminal width
    upgrade(url)
    store = IncidentStore(url)
    for i, status in enumerate(("firing", "resolved")):
        store.save(IncidentRecord(id=f"inc-{i}", status=status, title=f"spend 5.0x normal on [bold]team{i}[/]",
                                  subject_key=f"team=t{i}|feature=f|customer=*|model=*|environment=*", metric="spend",
                                  score=1.0, observed=5.0, baseline=1.0, expected_low=0.8, expected_high=1.2,
                                  started_at=T, updated_at=T, excess_usd_per_hour=240.0, rev=2))
    store.close()
    return url


def pending(url: str) -> list:
    store = IncidentStore(url)
    try:
        return [c for _, c in store.pending_commands()]
    finally:
        store.close()


def test_list_shows_open_incidents_only_by_default(db: str, capsys) -> None:
    assert main(["incidents"]) == 0
    out = capsys.readouterr().out
    assert "inc-0" in out and "inc-1" not in out and "[bold]team0[/]" in out and "$240.00" in out
    assert main(["incidents", "--state", "all"]) == 0
    assert "inc-1" in capsys.readouterr().out


def test_ack_snooze_resolve_queue_commands_for_the_worker(db: str, capsys) -> None:
    assert main(["ack", "inc-0", "--as", "alice"]) == 0
    assert main(["snooze", "inc-0", "1h", "--as", "alice"]) == 0
    assert main(["resolve", "inc-0", "--as", "bob"]) == 0
    cmds = pending(db)
    assert [type(c) for c in cmds] == [Acknowledge, Snooze, Resolve]
    assert [c.by for c in cmds] == ["alice", "alice", "bob"]
    assert timedelta(minutes=59) < cmds[1].until - cmds[1].at <= timedelta(hours=1)
    assert "ack alice (queued)" in (main(["incidents"]), capsys.readouterr().out)[1]


def test_user_mistakes_are_one_line_errors(db: str, capsys) -> None:
    assert main(["ack", "inc-nope", "--as", "alice"]) == 1
    assert "no incident 'inc-nope'" in capsys.readouterr().err
    assert main(["snooze", "inc-0", "soon"]) == 2
    assert "duration must look like" in capsys.readouterr().err
    assert main(["resolve", "inc-1", "--as", "bob"]) == 0  # already resolved: says so, queues nothing
    assert "already resolved" in capsys.readouterr().out
    assert pending(db) == []


def test_unreachable_database_is_a_clear_error(monkeypatch, capsys) -> None:
    monkeypatch.setenv("BURNGUARD_DATABASE_URL", "sqlite:////nonexistent-dir/x/y.db")
    assert main(["incidents"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read incidents") and "Traceback" not in err

"""``burnguard budgets`` against a real store (SQLite, and PostgreSQL when reachable): every budget of the
file, the stored figures, text escaped, and an unreachable database as one sentence (exit 2)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from rich.console import Console

from guardrails.budget_book import BudgetBook
from sinks.budget_store import BudgetSnapshot, BudgetStore
from streams.cli import main
from streams.commands.budgets import budget_rows, budgets_table
from streams.embedded_broker import free_port

ROOT = Path(__file__).resolve().parents[2]
T = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)
BUDGETS = """version: 1
budgets:
  - {id: org, cap_usd: 1000}
  - {id: team-search, parent: org, scope: {team: search}, cap_usd: 400}
  - {id: search-answers, parent: team-search, scope: {team: search, feature: answers}, cap_usd: 100}
  - {id: research-sandbox, parent: org, tier: sandbox, scope: {team: research, tier: sandbox}, period: day,
     cap_usd: 20}
  - {id: odd, parent: org, scope: {team: "[/x]\\e[2Jloud"}, cap_usd: 5}
"""


def _snap(budget_id: str, spend: float, cap: float, **kw) -> BudgetSnapshot:
    return BudgetSnapshot(budget_id=budget_id, scope=kw.pop("scope", {}), tier=kw.pop("tier", None),
                          period=kw.pop("period", "month"), period_start=datetime(2026, 11, 1, tzinfo=timezone.utc),
                          cap_usd=cap, spend_usd=spend, updated_at=T, **kw)


SNAPSHOTS = [
    _snap("org", 250.0, 1000, burn_rates={"300": 4.0, "3600": 2.5, "21600": 1.25}, forecast_usd=900.0),
    _snap("team-search", 410.0, 400, scope={"team": ["search"]}, firing=["fast"], forecast_usd=1500.0,
          exhausted_at=datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)),
    _snap("research-sandbox", 12.0, 20, scope={"team": ["research"], "tier": ["sandbox"]}, period="day",
          firing=["[/x]fast"]),
    _snap("retired", 3.0, 10, scope={"team": ["gone"]}),  # no longer in the budgets file
]


@pytest.fixture
def budgets_file(tmp_path: Path) -> Path:
    p = tmp_path / "budgets.yaml"
    p.write_text(BUDGETS)
    return p


def test_json_lists_every_budget_with_the_stored_figures(database_url: str, budgets_file: Path,
                                                         monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    store = BudgetStore(database_url)
    store.save_snapshots(SNAPSHOTS)
    store.close()
    monkeypatch.setenv("BURNGUARD_DATABASE_URL", database_url)
    monkeypatch.setenv("BURNGUARD_BUDGETS", str(budgets_file))

    assert main(["budgets", "--json"]) == 0
    rows = {r["budget_id"]: r for r in json.loads(capsys.readouterr().out)}

    assert list(rows) == ["org", "team-search", "search-answers", "research-sandbox", "odd", "retired"]
    assert rows["org"]["spend_usd"] == 250.0 and rows["org"]["spent_fraction"] == 0.25
    assert rows["org"]["burn_rates"] == {"300": 4.0, "3600": 2.5, "21600": 1.25}
    assert rows["org"]["forecast_usd"] == 900.0 and rows["org"]["state"] == "ok"
    assert rows["team-search"]["state"] == "over cap" and rows["team-search"]["exhausted_at"].startswith("2026-11-20T09:00")
    assert rows["research-sandbox"]["scope"] == {"team": ["research"], "tier": ["sandbox"]}
    assert rows["research-sandbox"]["tier"] == "sandbox" and rows["research-sandbox"]["period"] == "day"
    assert rows["research-sandbox"]["state"] == "firing" and rows["research-sandbox"]["firing"] == ["[/x]fast"]
    for never in ("search-answers", "odd"):  # nothing booked: 0 spend, said so
        assert rows[never]["spend_usd"] == 0.0 and rows[never]["state"] == "no spend yet"
        assert rows[never]["updated_at"] is None
    assert rows["retired"]["state"] == "not in the budgets file" and rows["retired"]["spend_usd"] == 3.0


def test_table_shows_text_as_text() -> None:
    book = BudgetBook.from_yaml_text(BUDGETS)
    buf = io.StringIO()
    Console(file=buf, width=400, color_system=None, force_terminal=False).print(
        budgets_table(budget_rows(book, SNAPSHOTS)))  # "[/x]" raised MarkupError unescaped
    out = buf.getvalue()
    assert "\x1b" not in out
    assert "team=[/x]\ufffd[2Jloud" in out and "firing: [/x]fast" in out
    assert "no spend yet" in out and "$250.00" in out and "5m 4.00×  1h 2.50×  6h 1.25×" in out


def _cli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams.cli", "budgets", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=cwd, timeout=60)


def test_unreachable_database_is_one_sentence_without_the_password(budgets_file: Path, tmp_path: Path) -> None:
    url = f"postgresql+psycopg://finance:hunter2secret@127.0.0.1:{free_port()}/burnguard"
    done = _cli({"BURNGUARD_DATABASE_URL": url, "BURNGUARD_BUDGETS": str(budgets_file)}, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "BURNGUARD_DATABASE_URL" in lines[0] and "127.0.0.1" in lines[0], lines
    assert "hunter2secret" not in done.stderr and "finance" not in done.stderr


def test_missing_sqlite_file_is_not_created_and_every_budget_has_no_spend(budgets_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "nowhere.db"
    done = _cli({"BURNGUARD_DATABASE_URL": f"sqlite:///{db}", "BURNGUARD_BUDGETS": str(budgets_file)}, "--json",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not db.exists()
    rows = json.loads(done.stdout)
    assert len(rows) == 5 and {r["state"] for r in rows} == {"no spend yet"}
    assert "no database file" in done.stderr


def test_bad_budgets_file_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "budgets.yaml"
    bad.write_text("version: 1\nbudgets:\n  - {id: org}\n")  # no cap anywhere
    done = _cli({"BURNGUARD_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "BURNGUARD_BUDGETS": str(bad)},
                cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{bad}:3" in done.stderr and "cap_usd" in done.stderr

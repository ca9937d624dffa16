"""``burnguard budgets`` shows the effective cap: the cap plus the guardrail grants active now, read from the
same store the worker writes (SQLite, and PostgreSQL when reachable)."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from rich.console import Console

from guardrails.budget_book import BudgetBook, period_bounds
from guardrails.policy import Policy
from schemas.overrun import Overrun
from sinks.budget_store import BudgetSnapshot, BudgetStore
from sinks.guardrail_store import GuardrailStore
from sinks.migrations import upgrade
from streams.cli import main
from streams.commands.budgets import budget_rows, budgets_table

BUDGETS = """version: 1
budgets:
  - {id: lab, tier: sandbox, scope: {team: lab}, period: day, cap_usd: 10}
  - {id: shop, tier: production, scope: {team: shop}, period: day, cap_usd: 100}
"""
POLICY = """version: 1
rules:
  - {name: lab-small, match: {tier: sandbox}, then: {action: auto_approve, grant_usd: 7.5, expires: 1h}}
  - {name: rest, default: true, then: {action: deny}}
"""


def _overrun(budget_id: str, tier: str, cap: float, spend: float, at: datetime) -> Overrun:
    start, end = period_bounds("day", at)
    return Overrun(overrun_id=f"ov-{budget_id}", budget_id=budget_id, trigger="threshold", rule="threshold_100",
                   tier=tier, period="day", period_start=start, period_end=end, at=at, started_at=at, cap_usd=cap,
                   spend_usd=spend, forecast_usd=spend, overrun_usd=spend - cap, overrun_pct=100 * (spend - cap) / cap)


def test_effective_cap_is_cap_plus_active_grants(database_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    upgrade(database_url)
    store = GuardrailStore(database_url)
    try:
        lab = store.decide(_overrun("lab", "sandbox", 10, 12, now), Policy.from_text(POLICY), now=now)
        shop = store.decide(_overrun("shop", "production", 100, 130, now), Policy.from_text(POLICY), now=now)
    finally:
        store.close()
    assert (lab.decision.action, lab.decision.amount_usd, shop.decision.action) == ("grant", 7.5, "deny")
    snaps = BudgetStore(database_url)
    start = period_bounds("day", now)[0]
    snaps.save_snapshots([BudgetSnapshot(budget_id=b, scope={}, tier=t, period="day", period_start=start, cap_usd=c,
                                         spend_usd=s, updated_at=now)
                          for b, t, c, s in (("lab", "sandbox", 10.0, 12.0), ("shop", "production", 100.0, 130.0))])
    snaps.close()
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(BUDGETS)
    monkeypatch.setenv("BURNGUARD_DATABASE_URL", database_url)
    monkeypatch.setenv("BURNGUARD_BUDGETS", str(budgets))

    assert main(["budgets", "--json"]) == 0
    rows = {r["budget_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["lab"]["cap_usd"], rows["lab"]["granted_usd"], rows["lab"]["effective_cap_usd"]) == (10.0, 7.5, 17.5)
    assert rows["lab"]["state"] == "within grants"  # 12 spent: above the cap, within cap + grant
    assert (rows["shop"]["granted_usd"], rows["shop"]["effective_cap_usd"], rows["shop"]["state"]) == \
        (0.0, 100.0, "over cap")  # denied: no grant

    monkeypatch.setenv("COLUMNS", "300")  # rich wraps a narrow table's headers
    assert main(["budgets"]) == 0
    table = capsys.readouterr().out
    assert "effective cap" in table and "$17.50" in table

    # an hour later the 1h grant has expired: the effective cap is the cap again
    book = BudgetBook.load(budgets)
    with_grants = GuardrailStore(database_url)
    try:
        grants = with_grants.grants()
    finally:
        with_grants.close()
    later = budget_rows(book, [], grants, now=now + timedelta(hours=1))
    assert [r.effective_cap_usd for r in later] == [10.0, 100.0]
    buf = io.StringIO()
    Console(file=buf, width=300, color_system=None).print(budgets_table(budget_rows(book, [], grants, now=now)))
    assert "$17.50" in buf.getvalue()

"""An incident shows the budget it eats into, from the budgets agent's snapshots in the store: the most
specific budget covering its subject, spend to date against the cap, forecast and exhaustion (stored in
the incident record and shown in its Slack message). Real SQLite store; figures hand-worked."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from detectors.incidents.dispatch import Dispatcher
from guardrails.budget_book import BudgetBook
from sinks.budget_store import BudgetSnapshot, BudgetStore
from sinks.incident_budget import IncidentBudgets
from sinks.incident_store import IncidentStore
from sinks.migrations import upgrade
from sinks.slack.notify import IncidentSink
from sinks.slack.outbox import SlackOutbox
from sinks.slack.routing import load_routing_text
from tests.unit.test_incidents_grouping import KEY, T0, demo_alerts

BOOK = BudgetBook.from_yaml_text("""
budgets:
  - {id: org, cap_usd: 1000, period: day}
  - {id: ads, parent: org, scope: {team: ads}, cap_usd: 100, period: day}
  - {id: copygen, parent: ads, scope: {team: ads, feature: copygen}, cap_usd: 40, period: day}
  - {id: copygen-4o, parent: copygen, scope: {team: ads, feature: copygen, model: gpt-4o}, cap_usd: 30, period: day}
  - {id: search, parent: ads, scope: {team: ads, feature: search}, cap_usd: 10, period: day}
""")
DAY = T0.replace(hour=0)


def snap(budget_id: str, cap: float, spend: float, start: datetime = DAY, **kw: object) -> BudgetSnapshot:
    return BudgetSnapshot(budget_id=budget_id, scope={}, tier=None, period="day", period_start=start, cap_usd=cap,
                          spend_usd=spend, updated_at=T0, **kw)


def block_texts(payload: dict) -> str:
    return "\n".join(b.get("text", {}).get("text", "") for b in payload["blocks"] if b["type"] == "section")


def test_the_incident_shows_its_most_specific_budget_with_current_figures(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    upgrade(url)
    budgets = BudgetStore(url)
    budgets.save_snapshots([
        snap("org", 1000.0, 300.0),
        snap("ads", 100.0, 80.0, forecast_usd=130.0),
        # spend 36.50 of 40: 91.25 % -> "91%"; projected 52.00; exhausted at 19:30 the same day
        snap("copygen", 40.0, 36.5, forecast_usd=52.0, exhausted_at=T0.replace(hour=19, minute=30)),
        # deeper, but yesterday's figures: says nothing about today's incident
        snap("copygen-4o", 30.0, 29.0, start=DAY - timedelta(days=1)),
        snap("search", 10.0, 9.9),  # the same team, another feature: not this incident's
    ])
    now = [0.0]
    store, outbox = IncidentStore(url), SlackOutbox(url)
    sink = IncidentSink(store, outbox, load_routing_text('default_channel: "#oncall"\n'),
                        budgets=IncidentBudgets(BOOK, BudgetStore(url), refresh_s=2.0, clock=lambda: now[0]))
    d = Dispatcher()
    notes = [n for a in sorted(demo_alerts(), key=lambda a: a.window_end) for n in d.observe(a)]
    notes += d.advance(T0 + timedelta(minutes=5))
    [opened] = [n for n in notes if n.kind == "open"]
    rec = sink.publish(opened)

    assert rec.subject_key == KEY
    assert rec.budget is not None
    assert (rec.budget.budget_id, rec.budget.spent_usd, rec.budget.cap_usd, rec.budget.projected_usd,
            rec.budget.exhausted_at) == ("copygen", 36.5, 40.0, 52.0, datetime(2026, 11, 20, 19, 30, tzinfo=timezone.utc))
    assert store.get(rec.id).budget == rec.budget  # stored with the incident
    [post] = [i for i in outbox.items(rec.id) if i.kind == "post"]
    assert ("*Budget* `copygen`: $36.50 of $40.00 (91%), projected $52.00, exhausted 2026-11-20 19:30 UTC"
            in block_texts(post.payload))

    # the budget moves on: the incident's next message shows the new figures once the cache is refreshed
    budgets.save_snapshots([snap("copygen", 40.0, 39.2, forecast_usd=61.0,
                                 exhausted_at=T0.replace(hour=16, minute=10))])
    now[0] = 1.0
    assert sink.record(opened).budget.spent_usd == 36.5  # within refresh_s: the cached snapshot
    now[0] = 2.5
    later = sink.record(opened).budget
    assert (later.spent_usd, later.projected_usd, round(later.fraction, 3)) == (39.2, 61.0, 0.98)
    for s in (store, outbox, budgets, sink.budgets):
        s.close()


def test_no_budget_covering_the_subject_shows_none(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    upgrade(url)
    book = BudgetBook.from_yaml_text("budgets: [{id: search, scope: {team: ads, feature: search}, cap_usd: 10}]")
    budgets = IncidentBudgets(book, BudgetStore(url))
    assert budgets(KEY, T0) is None
    assert budgets("gpu=node-1/0", T0) is None
    budgets.close()

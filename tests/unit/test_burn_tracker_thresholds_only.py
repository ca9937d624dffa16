"""A budget without burn-rate rules (``rules: []``, thresholds only) crosses its thresholds and projects
(it raised ZeroDivisionError on its first crossing: its rings could not hold the 1 h rate window)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from guardrails.budget_book import BudgetBook
from guardrails.burn_tracker import BurnTracker

BOOK = BudgetBook.from_yaml_text("""
budgets:
  - {id: lab, period: day, cap_usd: 10, rules: [], thresholds: [0.5, 1.0]}
""")
NOON = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


def test_thresholds_fire_and_project_without_rules() -> None:
    tr = BurnTracker.from_spec(BOOK.get("lab"))
    assert tr.observe(NOON - timedelta(minutes=30), 3.0) == []
    events = tr.observe(NOON, 11.0)  # 14 $ spent: both thresholds at once
    assert [(e.rule, e.status, e.period_spent_usd) for e in events] == [("threshold_50", "firing", 14.0),
                                                                        ("threshold_100", "firing", 14.0)]
    # rate over the last hour: 14 $ / 3600 s, carried over the 719 minutes left after 12:01
    assert events[-1].projected_spend_usd == pytest.approx(14.0 + 14.0 / 3600 * 719 * 60)
    assert events[-1].projected_exhaustion == NOON + timedelta(minutes=1)  # already spent
    assert tr.window_sum(3600) == pytest.approx(14.0) and tr.burn_rates() == {}
    forecast, _ = tr.forecast()
    assert forecast.expected_total >= 14.0


def test_state_round_trip_keeps_the_geometry() -> None:
    tr = BurnTracker.from_spec(BOOK.get("lab"))
    assert [e.rule for e in tr.observe(NOON, 6.0)] == ["threshold_50"]
    again = BurnTracker.from_state(tr.to_state())
    assert again == tr
    assert [e.rule for e in again.observe(NOON + timedelta(minutes=1), 7.0)] == ["threshold_100"]

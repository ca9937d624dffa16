"""root_cause, burn_rate, forecast and zombie_gpu: known answers and properties."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardrails import burn_rate as br
from guardrails import forecast as fc
from detectors import root_cause as rc
from detectors import zombie_gpu as zg


# -- root cause ----------------------------------------------------------------------

def test_root_cause_ranks_by_dollar_impact_not_ratio() -> None:
    obs = {"model=small": 3.0, "model=frontier": 500.0, "model=mid": 60.0}
    base = {"model=small": 0.3, "model=frontier": 300.0, "model=mid": 50.0}
    top = rc.top_contributors(obs, base, k=3)
    assert [c.key for c in top] == ["model=frontier", "model=mid", "model=small"]  # x10 on $0.3 is small money
    assert top[0].impact == pytest.approx(200.0)
    assert sum(c.share for c in top) == pytest.approx(1.0)
    assert top[2].ratio == pytest.approx(10.0)


@given(st.dictionaries(st.sampled_from("abcdefgh"), st.floats(0, 1e6), max_size=8),
       st.dictionaries(st.sampled_from("abcdefgh"), st.floats(0, 1e6), max_size=8))
def test_root_cause_impacts_add_up(obs: dict[str, float], base: dict[str, float]) -> None:
    allc = rc.contributions(obs, base)
    assert sum(c.impact for c in allc) == pytest.approx(sum(obs.values()) - sum(base.values()), rel=1e-9, abs=1e-6)
    impacts = [c.impact for c in allc]
    assert impacts == sorted(impacts, reverse=True)


# -- burn rate -----------------------------------------------------------------------

BUDGET = br.Budget(amount=720.0, period_s=30 * 86400)  # $1/h even rate


def test_burn_rate_fast_rule_needs_both_windows() -> None:
    now = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    # last hour at $15/h (15x), and still burning in the last 5 minutes
    buckets = [(now - timedelta(minutes=m), 15.0 / 60) for m in range(1, 61)]
    sums = br.window_sums(buckets, now, br.needed_windows())
    alerts = br.evaluate(sums, BUDGET)
    assert [a.rule.name for a in alerts] == ["fast"]
    assert alerts[0].long_rate == pytest.approx(15.0)
    assert alerts[0].projected_exhaustion_s == pytest.approx(2 * 86400)
    # the burn stopped 10 minutes ago: the 1 h window is still hot, the 5 min one is not -> no alert
    stopped = [(t, v) for t, v in buckets if (now - t) > timedelta(minutes=10)]
    assert br.evaluate(br.window_sums(stopped, now, br.needed_windows()), BUDGET) == []


def test_burn_rate_slow_rule() -> None:
    sums = {300: 7 * 300 / 3600, 1800: 7 * 0.5, 3600: 7.0, 21600: 42.0}  # 7x everywhere
    assert [a.rule.name for a in br.evaluate(sums, BUDGET)] == ["slow"]


# -- forecast ------------------------------------------------------------------------

def test_forecast_linear_growth_exhausts_early() -> None:
    days = [10.0 + 2.0 * i for i in range(20)]  # spend growing $2/day
    f = fc.forecast_period(days, spent=sum(days[-10:]), budget=900.0, remaining_steps=20)
    assert f.method == "holt"
    assert f.expected_total > 900.0 and f.overrun(900.0) > 0
    assert f.exhausted_in_steps is not None and 1 <= f.exhausted_in_steps <= 20
    assert f.low_total <= f.expected_total <= f.high_total


def test_forecast_already_over_budget_and_no_steps() -> None:
    assert fc.forecast_period([5.0] * 10, spent=120.0, budget=100.0, remaining_steps=3).exhausted_in_steps == 0
    done = fc.forecast_period([5.0] * 10, spent=50.0, budget=100.0, remaining_steps=0)
    assert done.expected_total == 50.0 and done.exhausted_in_steps is None


# -- zombie GPUs ---------------------------------------------------------------------

def test_zombie_rules_fire_only_past_their_thresholds() -> None:
    rules = zg.ZombieRules()
    nb = zg.GpuResource("nb", "notebook", 2, 3.0, util_now=0.01, idle_minutes=59)
    assert zg.check(nb, rules) == []
    nb2 = zg.GpuResource("nb", "notebook", 2, 3.0, util_now=0.01, idle_minutes=60)
    assert [a.usd_per_hour for a in zg.check(nb2, rules)] == [6.0]
    clone = zg.GpuResource("stg-copy", "clone", 4, 2.0, util_now=0.0, last_activity_age_h=24 * 8)
    assert [a.rule for a in zg.check(clone)] == ["stale_clone"]
    pinned = zg.GpuResource("llama", "serving", 1, 4.0, util_now=0.0, idle_minutes=130, requests_last_2h=0)
    assert [a.rule for a in zg.check(pinned)] == ["pinned_idle_model"]
    never_busy = zg.GpuResource("queued", "job", 8, 3.0, util_now=0.0, idle_minutes=90, was_busy=False)
    assert zg.check(never_busy) == []
    right_sized = zg.GpuResource("pool", "serving", 4, 4.0, util_now=0.5, util_p95_24h=0.55, requests_last_2h=10)
    assert zg.check(right_sized) == []

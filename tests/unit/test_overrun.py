"""Overruns built from budget events: amounts, ids and copied budget fields (hand-worked numbers)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from guardrails.burn_rate import BurnRule
from guardrails.budget_book import BudgetSpec
from guardrails.burn_event import BurnEvent
from guardrails.burn_tracker import BurnTracker
from guardrails.overrun import make_overrun_id, overrun_from_burn_event, overruns_from_burn_events
from schemas.overrun import Overrun

T0 = datetime(2026, 11, 20, 0, tzinfo=timezone.utc)
SPEC = BudgetSpec("lab", 100.0, "day", (BurnRule("fast", 3600, 300, 14.4, "page"),), (0.8, 1.0),
                  (("team", ("research",)), ("environment", ("dev",))), parent="org", tier="sandbox",
                  owner="research-oncall", approvers=("research-leads",), name="Research lab")


def event(**kw) -> BurnEvent:
    base = dict(budget_id="lab", rule="threshold_100", severity="page", status="firing", at=T0 + timedelta(hours=10),
                long_rate=2.4, short_rate=3.0, period_spent_usd=104.0, cap_usd=100.0, projected_spend_usd=150.0,
                projected_exhaustion=T0 + timedelta(hours=10), started_at=T0 + timedelta(hours=10),
                period_start=T0, period_end=T0 + timedelta(days=1), kind="threshold", threshold=1.0)
    base.update(kw)
    return BurnEvent(**base)


def test_threshold_overrun_takes_the_larger_of_actual_and_forecast() -> None:
    o = overrun_from_burn_event(event(), SPEC)
    assert (o.overrun_usd, o.overrun_pct, o.basis) == (50.0, 50.0, "forecast")  # 150 - 100
    o = overrun_from_burn_event(event(projected_spend_usd=104.0), SPEC)
    assert (o.overrun_usd, o.overrun_pct, o.basis) == (4.0, 4.0, "actual")
    assert (o.tier, o.environment, o.owner, o.approvers, o.budget_name) == \
        ("sandbox", "dev", "research-oncall", ["research-leads"], "Research lab")
    assert o.scope == {"team": ["research"], "environment": ["dev"]}
    assert o.burn_rate is not None and o.burn_rate.rule is None and o.burn_rate.long_rate == 2.4


def test_burn_rate_overrun_carries_the_rule() -> None:
    o = overrun_from_burn_event(event(rule="fast", kind="burn_rate", threshold=None, long_rate=15.0,
                                      short_rate=20.0, period_spent_usd=30.0, projected_spend_usd=130.0), SPEC)
    assert o.trigger == "burn_rate" and o.overrun_usd == 30.0 and o.basis == "forecast"
    assert o.burn_rate.model_dump() == {"rule": "fast", "factor": 14.4, "long_window_s": 3600,
                                        "short_window_s": 300, "long_rate": 15.0, "short_rate": 20.0}


def test_no_overrun_below_the_cap_is_zero_not_negative() -> None:
    o = overrun_from_burn_event(event(rule="threshold_80", threshold=0.8, period_spent_usd=80.0,
                                      projected_spend_usd=95.0), SPEC)
    assert (o.overrun_usd, o.overrun_pct) == (0.0, 0.0)


def test_id_is_stable_and_distinguishes_incidents() -> None:
    a, b = overrun_from_burn_event(event(), SPEC), overrun_from_burn_event(event(), SPEC)
    assert a.overrun_id == b.overrun_id == make_overrun_id("lab", "threshold_100", T0, T0 + timedelta(hours=10))
    later = overrun_from_burn_event(event(started_at=T0 + timedelta(hours=11)), SPEC)
    assert later.overrun_id != a.overrun_id
    assert Overrun.model_validate_json(a.model_dump_json()) == a


def test_resolved_events_are_not_overruns() -> None:
    with pytest.raises(ValueError, match="resolved"):
        overrun_from_burn_event(event(status="resolved"), SPEC)
    with pytest.raises(ValueError, match="spec of"):
        overrun_from_burn_event(event(budget_id="other"), SPEC)
    assert overruns_from_burn_events([event(status="resolved"), event()], SPEC)[0].rule == "threshold_100"


def test_from_a_real_tracker() -> None:
    tr = BurnTracker.from_spec(SPEC)
    evs = [e for m in range(30) for e in tr.observe(T0 + timedelta(hours=10, minutes=m), 4.0)]
    hundred = next(e for e in evs if e.rule == "threshold_100")
    o = overrun_from_burn_event(hundred, SPEC)
    assert o.spend_usd == 100.0 and o.at == T0 + timedelta(hours=10, minutes=25)  # 25 buckets of $4
    assert o.forecast_usd >= o.spend_usd and o.overrun_usd == round(o.forecast_usd - 100.0, 6)

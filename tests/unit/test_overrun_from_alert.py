"""Anomaly-triggered overruns: a firing spend / cost-per-inference alert with a $ impact on a key a budget covers
becomes an overrun on that budget, priced as if it lasted to the period's end (hand-worked amounts)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from guardrails.budget_book import BudgetBook
from guardrails.decision import DecisionContext, decide
from guardrails.overrun import overrun_from_alert, overruns_from_alert
from guardrails.policy import Policy
from schemas.alert import Alert, Contributor

BOOK = BudgetBook.from_yaml_text("""
budgets:
  - {id: org, period: month, cap_usd: 10000}
  - {id: ads, parent: org, tier: production, scope: {team: ads}, period: day, cap_usd: 36}
  - {id: ads-copygen, parent: ads, tier: production, scope: {team: ads, feature: copygen}, period: day, cap_usd: 20}
  - {id: search, parent: org, tier: production, scope: {team: search}, period: day, cap_usd: 50}
""")
LEAF = "team=ads|feature=copygen|customer=internal|model=gpt-4o|environment=production"
ROLLUP = "team=ads|feature=*|customer=*|model=*|environment=*"
T = datetime(2026, 11, 20, 18, 0, tzinfo=timezone.utc)  # 18:01 bucket end: 359 minutes left in the day


def alert(key: str = LEAF, metric: str = "spend", observed: float = 0.5, baseline: float = 0.1,
          contributors: list[Contributor] | None = None, **kw) -> Alert:
    return Alert(series_key=key, metric=metric, detector="ew_zscore", score=kw.pop("score", 0.95), observed=observed,
                 baseline=baseline, expected_low=0.0, expected_high=0.2, window_start=T,
                 window_end=T.replace(minute=1), started_at=kw.pop("started_at", T),
                 contributors=contributors or [], **kw)


def test_a_spend_anomaly_on_a_leaf_key_is_an_overrun_on_every_budget_covering_it() -> None:
    got = {o.budget_id: o for o in overruns_from_alert(alert(), BOOK, {"ads": (30.0, 35.0)})}
    assert sorted(got) == ["ads", "ads-copygen", "org"]  # not search
    ads = got["ads"]
    # $0.40 a minute above baseline for the 359 minutes left: 143.60 on top of the 35 forecast
    assert ads.forecast_usd == pytest.approx(35.0 + 0.4 * 359)
    assert ads.overrun_usd == pytest.approx(35.0 + 143.6 - 36.0)
    assert ads.overrun_pct == pytest.approx(100 * (35.0 + 143.6 - 36.0) / 36.0)
    assert (ads.trigger, ads.basis, ads.rule, ads.spend_usd, ads.tier) == ("anomaly", "anomaly", "anomaly.spend",
                                                                         30.0, "production")
    assert (ads.period_start, ads.period_end) == (T.replace(hour=0), datetime(2026, 11, 21, tzinfo=timezone.utc))
    # a budget with no figures given: nothing spent as far as this alert knows
    assert got["ads-copygen"].spend_usd == 0.0 and got["ads-copygen"].overrun_usd == pytest.approx(143.6 - 20.0)
    # the monthly org budget: the anomaly priced to the end of November (10 days 5 h 59 min)
    minutes_left = ((datetime(2026, 12, 1, tzinfo=timezone.utc) - T.replace(minute=1)).total_seconds()) / 60
    assert got["org"].forecast_usd == pytest.approx(0.4 * minutes_left)
    assert got["org"].overrun_usd == 0.0  # 5,8xx $ stays within 10,000


def test_a_rollup_alert_is_priced_by_its_contributors_and_reaches_only_budgets_covering_the_rollup() -> None:
    a = alert(ROLLUP, "cost_per_inference", observed=0.026, baseline=0.0066,
              contributors=[Contributor(key="feature=copygen", impact_usd=0.25, observed=0.3, baseline=0.05),
                            Contributor(key="feature=chat", impact_usd=-0.05, observed=0.0, baseline=0.05)])
    got = {o.budget_id: o for o in overruns_from_alert(a, BOOK)}
    assert sorted(got) == ["ads", "org"]  # the feature budget does not cover every ads feature
    assert got["ads"].forecast_usd == pytest.approx(0.25 * 359)  # the negative contributor is not a saving
    assert got["ads"].contributors == a.contributors and got["ads"].anomaly_score == 0.95


@pytest.mark.parametrize("a", [
    alert(metric="cost_per_inference"),        # a leaf's cost per call: no call count, no $ impact
    alert(metric="tokens_per_request"),        # evidence, not money
    alert(observed=0.05, baseline=0.1),        # spend below its baseline
    alert(status="resolved"),
], ids=["leaf-cpi", "tokens", "below-baseline", "resolved"])
def test_no_dollar_impact_no_overrun(a: Alert) -> None:
    assert overrun_from_alert(a, BOOK.get("ads")) is None
    assert overruns_from_alert(a, BOOK) == []


def test_ids_are_stable_per_budget_and_incident() -> None:
    a = alert()
    assert overrun_from_alert(a, BOOK.get("ads")).overrun_id == overrun_from_alert(a, BOOK.get("ads"),
                                                                                   spend_usd=9).overrun_id
    assert overrun_from_alert(a, BOOK.get("ads")).overrun_id != overrun_from_alert(a, BOOK.get("org")).overrun_id
    later = alert(started_at=T.replace(minute=1))
    assert overrun_from_alert(a, BOOK.get("ads")).overrun_id != overrun_from_alert(later, BOOK.get("ads")).overrun_id


def test_a_policy_can_page_on_anomalies() -> None:
    policy = Policy.from_text("""
rules:
  - {name: anomaly-page, when: {trigger: anomaly, anomaly_score: {gte: 0.9}}, then: {action: page, to: ads-oncall}}
  - {name: rest, when: {overrun_usd: {lte: 1000}}, then: {action: auto_approve, grant_usd: overrun, expires: 1h}}
  - {name: default, default: true, then: {action: deny}}
""")
    ov = overrun_from_alert(alert(), BOOK.get("ads"), spend_usd=30.0, forecast_usd=35.0)
    assert decide(ov, policy, DecisionContext(now=T)).decision.action == "page"
    calm = overrun_from_alert(alert(score=0.5), BOOK.get("ads"), spend_usd=30.0, forecast_usd=35.0)
    out = decide(calm, policy, DecisionContext(now=T))
    assert (out.rule, out.decision.action, out.decision.amount_usd) == ("rest", "grant",
                                                                       round(35.0 + 143.6 - 36.0, 2))

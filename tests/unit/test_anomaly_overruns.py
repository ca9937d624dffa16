"""The anomaly wiring (streams.agents.anomalies) without a broker: a spike's alerts -> routed once per budget they
speak for -> priced on the budget's tracker -> overruns, one per budget, however often an alert is delivered.

Hand-worked: the day of 2026-11-20; every alert is the 18:00 bucket (ends 18:01, 359 minutes left in the day).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta, timezone
from typing import TypeVar

import pytest

from guardrails.budget_book import BudgetBook
from guardrails.burn_tracker import BurnTracker
from guardrails.policy import Policy
from schemas.alert import Alert, Contributor
from schemas.overrun import Overrun
from sinks.budget_store import BudgetSnapshot
from sinks.guardrail_store import GuardrailStore
from sinks.migrations import upgrade
from streams.agents.anomalies import AnomalyOverruns, AnomalyRouter, route
from streams.state.codec import encode
from streams.state.tables import TypedTable
from streams.state.values import BudgetState

R = TypeVar("R")
LEVELS = [["team", "environment"], ["environment"]]  # the shipped roll-ups
BOOK = BudgetBook.from_yaml_text("""
budgets:
  - {id: ads, tier: production, scope: {team: ads}, period: day, cap_usd: 36}
  - {id: ads-copygen, parent: ads, tier: sandbox, scope: {team: ads, feature: copygen}, period: day, cap_usd: 20}
  - {id: search, tier: production, scope: {team: search}, period: day, cap_usd: 50}
""")
LEAF = "team=ads|feature=copygen|customer=internal|model=gpt-4o|environment=production"
TEAM = "team=ads|feature=*|customer=*|model=*|environment=production"
ORG = "team=*|feature=*|customer=*|model=*|environment=production"
T = datetime(2026, 11, 20, 18, 0, tzinfo=timezone.utc)
MINUTES_LEFT = 359


def alert(key: str, metric: str = "spend", observed: float = 0.5, baseline: float = 0.1,
          contributors: list[Contributor] | None = None, status: str = "firing") -> Alert:
    return Alert(series_key=key, metric=metric, detector="ew_zscore", score=0.97, observed=observed,
                 baseline=baseline, expected_low=0.0, expected_high=0.2, window_start=T, window_end=T.replace(minute=1),
                 started_at=T, contributors=contributors or [], status=status)  # type: ignore[arg-type]


def spike() -> list[Alert]:
    """What one spike on LEAF raises: spend and cost per inference on the leaf and on its team roll-up."""
    top = [Contributor(key="feature=copygen|customer=internal|model=gpt-4o", impact_usd=0.45, observed=0.55,
                       baseline=0.10),
           Contributor(key="feature=chat|customer=internal|model=gpt-4o", impact_usd=-0.05, observed=0.0,
                       baseline=0.05)]
    return [alert(LEAF), alert(LEAF, "cost_per_inference", 0.05, 0.01),
            alert(TEAM, observed=0.6, baseline=0.15, contributors=top),
            alert(TEAM, "cost_per_inference", 0.04, 0.01, contributors=top)]


def run(aw: Awaitable[R]) -> R:
    return asyncio.run(aw)  # type: ignore[arg-type]


class Wiring:
    """The router and the pricing step joined by lists standing in for guardrail.anomalies / .overruns."""

    def __init__(self, trackers: dict[str, bytes], snapshot: BudgetSnapshot | None = None) -> None:
        self.routed: list[tuple[str, bytes]] = []
        self.overruns: list[Overrun] = []

        async def to_anomalies(budget_id: str, value: bytes) -> None:
            self.routed.append((budget_id, value))

        async def to_overruns(budget_id: str, value: bytes) -> None:
            ov = Overrun.model_validate_json(value)
            assert ov.budget_id == budget_id  # keyed by the budget it is on
            self.overruns.append(ov)

        async def snap(budget_id: str) -> BudgetSnapshot | None:
            return snapshot if snapshot is not None and snapshot.budget_id == budget_id else None

        self.router = AnomalyRouter(BOOK, LEVELS, to_anomalies)
        self.pricing = AnomalyOverruns(BOOK, TypedTable(trackers, "burn_trackers", BudgetState), snap, to_overruns)

    async def deliver(self, alerts: list[Alert]) -> None:
        for a in alerts:
            n = len(self.routed)
            await self.router.handle(a.model_dump_json().encode())
            for budget_id, value in self.routed[n:]:
                await self.pricing.handle(budget_id, value)


def ads_tracker() -> tuple[dict[str, bytes], BurnTracker]:
    """ads spent $0.50 a minute from 17:30 to 17:59: $15.00 so far today."""
    tracker = BurnTracker.from_spec(BOOK.get("ads"))  # type: ignore[arg-type]
    for m in range(30):
        tracker.observe(T - timedelta(minutes=30 - m), 0.5)
    return {"ads": encode(BudgetState(0, tracker))}, tracker


def test_one_spike_on_a_key_two_budgets_cover_is_two_overruns_one_per_budget_and_redelivery_adds_none() -> None:
    trackers, tracker = ads_tracker()
    w = Wiring(trackers)
    run(w.deliver(spike()))
    assert sorted((ov.budget_id, ov.rule) for ov in w.overruns) == [("ads", "anomaly.spend"),
                                                                    ("ads-copygen", "anomaly.spend")]
    by = {ov.budget_id: ov for ov in w.overruns}
    # the feature budget: the leaf's alert, $0.40 a minute above baseline, nothing spent on it yet
    cg = by["ads-copygen"]
    assert cg.alert_fingerprint == alert(LEAF).fingerprint and cg.anomaly_score == 0.97
    assert (cg.spend_usd, cg.tier, cg.trigger, cg.basis) == (0.0, "sandbox", "anomaly", "anomaly")
    assert cg.forecast_usd == pytest.approx(0.40 * MINUTES_LEFT)          # 143.60
    assert cg.overrun_usd == pytest.approx(0.40 * MINUTES_LEFT - 20.0)    # 123.60
    # the team budget: its roll-up's alert (positive contributors $0.45 a minute) on top of its tracker
    ads = by["ads"]
    assert ads.alert_fingerprint == alert(TEAM).fingerprint
    assert [c.key for c in ads.contributors][0].startswith("feature=copygen")
    assert ads.spend_usd == pytest.approx(15.0)
    expected = max(tracker.forecast()[0].expected_total, 15.0) + 0.45 * MINUTES_LEFT
    assert ads.forecast_usd == pytest.approx(expected) and ads.overrun_usd == pytest.approx(expected - 36.0)
    assert ads.period_start == T.replace(hour=0) and ads.period_end == T.replace(hour=0) + timedelta(days=1)

    ids = {ov.overrun_id for ov in w.overruns}
    run(w.deliver(spike() + spike()))  # the same alerts again (redelivery, or detect re-sending after a crash)
    assert {ov.overrun_id for ov in w.overruns} == ids and len(ids) == 2


def test_the_store_decides_each_budget_once_however_often_the_spike_is_delivered(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    policy = Policy.from_text("""
version: 1
rules:
  - name: page-on-anomalies
    when: {trigger: {eq: anomaly}, anomaly_score: {gte: 0.9}}
    then: {action: page, to: ads-oncall}
  - {name: default, default: true, then: {action: deny}}
""", source="p.yaml")
    w = Wiring(ads_tracker()[0])
    run(w.deliver(spike() + spike()))
    store = GuardrailStore(url)
    try:
        created = [store.decide(ov, policy, now=T + timedelta(minutes=1)).created for ov in w.overruns]
        assert created.count(True) == 2 and len(created) == 4
        decisions = store.decisions()
        assert sorted((d.budget_id, d.action, d.rule) for d in decisions) == [
            ("ads", "page", "page-on-anomalies"), ("ads-copygen", "page", "page-on-anomalies")]
        assert {store.overrun(d.overrun_id).anomaly_score for d in decisions} == {0.97}  # type: ignore[union-attr]
    finally:
        store.close()


@pytest.mark.parametrize("a", [
    alert(LEAF, "cost_per_inference", 0.05, 0.01),            # evidence, not money
    alert(TEAM, status="resolved"),                           # the end of an incident
    alert(TEAM, observed=0.1, baseline=0.2),                  # spend below its baseline: no $ impact
    alert(ORG),                                               # no budget here covers the org roll-up
    alert("budget=ads", "budget.threshold_100"),              # the budgets agent's own alerts
    alert("budget=ads", "spend"),                             # not an allocation key
], ids=["cost_per_inference", "resolved", "no-impact", "org-rollup", "budget-alert", "not-a-key"])
def test_what_raises_no_anomaly_overrun(a: Alert) -> None:
    assert route(a, BOOK, LEVELS) == []
    w = Wiring({})
    assert run(w.router.handle(a.model_dump_json().encode())) == [] and w.routed == []


def test_a_budget_speaks_through_its_own_level_only() -> None:
    book = BudgetBook.from_yaml_text("""
budgets:
  - {id: org, period: month, cap_usd: 10000}
  - {id: prod, parent: org, scope: {environment: production}, period: month, cap_usd: 5000}
  - {id: ads, parent: org, scope: {team: ads}, period: day, cap_usd: 36}
""")
    assert route(alert(LEAF), book, LEVELS) == []               # each budget covering it has a coarser series
    assert route(alert(TEAM), book, LEVELS) == ["ads"]
    assert route(alert(ORG), book, LEVELS) == ["org", "prod"]  # the environment roll-up speaks for both
    assert route(alert(LEAF), book, []) == ["org", "prod", "ads"]  # without roll-ups the leaf is the top


def test_pricing_uses_the_snapshot_when_the_tracker_is_quarantined_and_nothing_from_another_period() -> None:
    snap = BudgetSnapshot(budget_id="ads", scope={"team": ["ads"]}, tier="production", period="day",
                          period_start=T.replace(hour=0), cap_usd=36.0, spend_usd=30.0, forecast_usd=34.0,
                          updated_at=T)
    w = Wiring({"ads": b"\xc1\x01not msgpack"}, snapshot=snap)
    ov = run(w.pricing.handle("ads", alert(TEAM).model_dump_json().encode()))
    assert ov is not None and (ov.spend_usd, ov.forecast_usd) == (30.0, pytest.approx(34.0 + 0.4 * MINUTES_LEFT))

    stale = BurnTracker.from_spec(BOOK.get("ads"))  # type: ignore[arg-type]
    stale.observe(T - timedelta(days=1), 5.0)
    w = Wiring({"ads": encode(BudgetState(0, stale))})
    ov = run(w.pricing.handle("ads", alert(TEAM).model_dump_json().encode()))
    assert ov is not None and ov.spend_usd == 0.0 and ov.forecast_usd == pytest.approx(0.4 * MINUTES_LEFT)
    assert run(w.pricing.handle("gone", alert(TEAM).model_dump_json().encode())) is None


def test_a_tracker_ahead_of_the_alert_prices_the_anomaly_from_its_own_clock_on() -> None:
    """Replay or a lagging detect: the tracker's spend already holds the spike's minutes after the alert."""
    tracker = BurnTracker.from_spec(BOOK.get("ads"))  # type: ignore[arg-type]
    for m in range(60):  # 17:30 .. 18:29 at $0.50 a minute: $30 spent, clock at 18:30
        tracker.observe(T - timedelta(minutes=30 - m), 0.5)
    w = Wiring({"ads": encode(BudgetState(0, tracker))})
    ov = run(w.pricing.handle("ads", alert(TEAM).model_dump_json().encode()))  # the 18:00 bucket's alert
    assert ov is not None and ov.spend_usd == pytest.approx(30.0) and ov.at == T.replace(minute=1)
    f = max(tracker.forecast()[0].expected_total, 30.0)
    assert ov.forecast_usd == pytest.approx(f + 0.4 * (MINUTES_LEFT - 29))  # 330 minutes after 18:30, not 359

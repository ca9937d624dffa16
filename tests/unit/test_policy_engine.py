"""Table-driven policy engine tests over tests/fixtures/policies/fixture_policy.yaml (hand-worked cases)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from guardrails.decision import decide
from guardrails.policy import DecisionContext, evaluate, load_policy
from guardrails.policy.cases import OverrunCase

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "policies" / "fixture_policy.yaml"
POLICY = load_policy(FIXTURE)
MON_NOON = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)


def ov(**kw):
    return OverrunCase.model_validate(kw).to_overrun()


# (case, overrun fields, expected rule, expected decision, expected amount)
CASES = [
    ("lt holds below", dict(budget_id="ops-lt", cap_usd=100, spend_usd=109.99), "ops-lt", "page", None),
    ("lt fails at the bound", dict(budget_id="ops-lt", cap_usd=100, spend_usd=110), "default", "escalated", 10.0),
    ("lte holds at the bound", dict(budget_id="ops-lte", cap_usd=100, spend_usd=110), "ops-lte", "page", None),
    ("gt fails at the bound", dict(budget_id="ops-gt", cap_usd=100, spend_usd=150), "default", "escalated", 50.0),
    ("gt holds above", dict(budget_id="ops-gt", cap_usd=100, spend_usd=150.5), "ops-gt", "page", None),
    ("gte holds at the bound", dict(budget_id="ops-gte", cap_usd=100, spend_usd=100, forecast_usd=500),
     "ops-gte", "page", None),
    ("gte fails below", dict(budget_id="ops-gte", cap_usd=100, spend_usd=100, forecast_usd=499.99),
     "default", "escalated", 399.99),
    ("eq holds", dict(budget_id="ops-eq", at="2026-01-05T03:59:00Z"), "ops-eq", "page", None),
    ("eq fails", dict(budget_id="ops-eq", at="2026-01-05T04:00:00Z"), "default", "grant", 0.0),
    ("in holds on sunday", dict(budget_id="ops-in", at="2026-01-04T10:00:00Z"), "ops-in", "page", None),
    ("in fails on monday", dict(budget_id="ops-in", spend_usd=120), "default", "escalated", 20.0),
    ("throttle on a runaway production burn",
     dict(tier="production", scope={"environment": ["production"]}, trigger="burn_rate", rule="fast",
          burn_rate=20.0, spend_usd=120), "runaway", "throttle", None),
    ("a slow production burn is not runaway",
     dict(tier="production", scope={"environment": ["production"]}, trigger="burn_rate", rule="slow",
          burn_rate=6.0, spend_usd=120), "default", "escalated", 20.0),
    ("deny on an anomaly", dict(trigger="anomaly", anomaly_score=0.9995, spend_usd=120), "anomaly", "deny", None),
    ("expand a pilot that met its goal", dict(tier="pilot", labels={"pilot_goal": "met"}, cap_usd=2000,
                                              spend_usd=2100), "pilot-met", "grant", 1000.0),
    ("auto-approve a small sandbox overrun", dict(tier="sandbox", scope={"team": ["research"]}, cap_usd=50,
                                                  spend_usd=50, forecast_usd=90), "small", "grant", 40.0),
    ("scope with a team outside the list", dict(tier="sandbox", scope={"team": ["research", "ads"]}, cap_usd=50,
                                                spend_usd=50, forecast_usd=90), "default", "escalated", 40.0),
    ("a large sandbox overrun falls to the default", dict(tier="sandbox", scope={"team": ["search"]}, cap_usd=50,
                                                          spend_usd=50, forecast_usd=200), "default", "escalated",
     150.0),
    ("escalate a big production overrun", dict(tier="production", cap_usd=10000, spend_usd=10000,
                                               forecast_usd=12500), "big", "escalated", 2500.0),
    ("first match wins: anomaly before small", dict(tier="sandbox", scope={"team": ["research"]}, trigger="anomaly",
                                                    anomaly_score=1.0, cap_usd=50, spend_usd=60), "anomaly", "deny",
     None),
]


@pytest.mark.parametrize(("fields", "rule", "decision", "amount"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cases(fields, rule, decision, amount) -> None:
    ex = evaluate(POLICY, ov(**fields), DecisionContext(now=MON_NOON))
    assert (ex.rule.name, ex.effect.action, ex.effect.amount_usd) == (rule, decision, amount)


def test_actions_carry_their_parameters() -> None:
    now = MON_NOON
    thr = evaluate(POLICY, ov(tier="production", scope={"environment": ["production"]}, trigger="burn_rate",
                             burn_rate=15.0), DecisionContext(now=now)).effect
    assert (thr.throttle_factor, thr.expires_at) == (0.25, now + timedelta(hours=2))
    big = evaluate(POLICY, ov(tier="production", cap_usd=100, spend_usd=100, forecast_usd=1200),
                   DecisionContext(now=now)).effect
    assert (big.group, big.deadline, big.on_timeout.escalate) == ("finance", now + timedelta(hours=4), "cfo")
    page = evaluate(POLICY, ov(budget_id="ops-lt", spend_usd=101), DecisionContext(now=now)).effect
    assert page.group == "ops"
    deny = evaluate(POLICY, ov(trigger="anomaly", anomaly_score=1.0), DecisionContext(now=now)).effect
    assert (deny.reason, deny.expires_at) == ("anomalous spend", datetime(2026, 1, 6, tzinfo=timezone.utc))
    small = evaluate(POLICY, ov(tier="sandbox", scope={"team": ["research"]}, cap_usd=50, forecast_usd=90),
                     DecisionContext(now=now)).effect
    assert small.expires_at == datetime(2026, 1, 6, tzinfo=timezone.utc)  # 24h, but never past the daily period


def test_rule_limit_falls_through_to_the_next_rule() -> None:
    o = ov(tier="sandbox", scope={"team": ["research"]}, cap_usd=50, spend_usd=50, forecast_usd=130)  # 80 over
    partly = evaluate(POLICY, o, DecisionContext(now=MON_NOON, granted_usd=50, granted_by_rule={"small": 70}))
    assert (partly.rule.name, partly.effect.amount_usd) == ("small", 30.0)  # uncovered 30, room 30
    spent = evaluate(POLICY, o, DecisionContext(now=MON_NOON, granted_usd=20, granted_by_rule={"small": 100}))
    assert spent.rule.name == "default"
    assert "then.auto_approve: grant limit 100 USD reached (100 USD granted this period)" in spent.text()


def test_pilot_expands_once() -> None:
    o = ov(tier="pilot", labels={"pilot_goal": "met"}, cap_usd=2000, spend_usd=2100)
    again = evaluate(POLICY, o, DecisionContext(now=MON_NOON, granted_by_rule={"pilot-met": 1000.0}))
    assert again.rule.name == "default"


def test_explain_names_each_failing_condition_with_its_actual_value() -> None:
    ex = evaluate(POLICY, ov(tier="production", cap_usd=100, spend_usd=100, forecast_usd=700), DecisionContext(MON_NOON))
    small = next(v for v in ex.verdicts if v.rule.name == "small")
    assert [f.text() for f in small.failures] == ["match.team: any (not scoped) not in ['research', 'search']",
                                                  "match.tier: 'production' not in ['sandbox', 'pilot']",
                                                  "when.overrun_usd: 600 needs <= 100"]
    big = next(v for v in ex.verdicts if v.rule.name == "big")
    assert [f.text() for f in big.failures] == ["when.overrun_usd: 600 needs > 1000"]
    assert ex.rule.name == "default" and [v.rule.name for v in ex.verdicts][-1] == "default"
    d = ex.as_dict()
    assert d["rule"] == "default" and d["rules"][0]["failures"][0]["field"] == "match.budget"
    assert ex.rule.line == 46  # the "- name: default" line of the fixture


def test_decide_builds_decision_grant_and_approval() -> None:
    o = ov(tier="production", cap_usd=100, spend_usd=100, forecast_usd=1300)
    out = decide(o, POLICY, DecisionContext(now=MON_NOON))
    assert out.decision.action == "escalated" and out.grant is None
    assert out.approval.approval_id == out.decision.approval_id and out.approval.amount_usd == 1200.0
    assert out.decision.policy_version == POLICY.version and POLICY.version.startswith("2@")

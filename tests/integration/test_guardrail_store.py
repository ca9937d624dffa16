"""The guardrail store on real SQLite and PostgreSQL: once per overrun, concurrent grants within the rule,
approvals with authorisation and deadlines, and an audit chain that detects edits and deletions."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from guardrails.approvers import Approvers
from guardrails.policy import Policy
from schemas.overrun import Overrun
from sinks.guardrail_store import GuardrailStore, NotFound, Refused
from sinks.guardrail_tables import GuardrailBase
from sinks.migrations import head_revision, upgrade
from sinks.budget_store import BudgetSnapshotRow  # noqa: F401 - its table is in Base.metadata too
from sinks.store import AlertStore, Base

T = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
DAY = (T.replace(hour=0), T.replace(hour=0) + timedelta(days=1))
POLICY = Policy.from_text("""
version: 7
rules:
  - name: small
    match: {tier: sandbox}
    when: {overrun_usd: {lte: 100}}
    then: {action: auto_approve, grant_usd: overrun, expires: 12h}
  - name: big
    default: true
    then: {action: escalate, to: fin, deadline: 4h, on_timeout: {escalate: cfo, deadline: 2h}}
""", source="test-policy.yaml")
APPROVERS = Approvers.from_yaml_text("""
groups:
  fin: {max_usd: 500, members: [{slack: U0ANN, name: ann}, {name: bo, max_usd: 50}], next: cfo}
  cfo: {max_usd: unlimited, members: [cy]}
""")


def overrun(oid: str, *, budget: str = "lab", tier: str = "sandbox", spend: float = 50.0, forecast: float = 90.0,
            cap: float = 50.0) -> Overrun:
    over = max(spend, forecast) - cap
    return Overrun(overrun_id=oid, budget_id=budget, trigger="threshold", rule="threshold_100",
                   scope={"team": ["research"]}, tier=tier, period="day", period_start=DAY[0], period_end=DAY[1],
                   at=T, started_at=T, cap_usd=cap, spend_usd=spend, forecast_usd=forecast, overrun_usd=over,
                   overrun_pct=100 * over / cap)


@pytest.fixture
def store(database_url: str):
    assert upgrade(database_url) == head_revision()
    s = GuardrailStore(database_url)
    yield s
    s.close()


def test_migrations_match_the_models_and_adopt_a_create_all_database(database_url: str) -> None:
    alerts = AlertStore(database_url)
    alerts.alerts()  # creates alerts/dead_letters with create_all, as before migrations existed
    alerts.close()
    assert upgrade(database_url) == head_revision() == upgrade(database_url)
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), [Base.metadata, GuardrailBase.metadata])
        ours = {t.name for t in [*Base.metadata.sorted_tables, *GuardrailBase.metadata.sorted_tables]}
        diff = [d for d in diff if not (d[0].startswith("remove_") and getattr(d[1], "name", None) not in ours
                                        and getattr(getattr(d[1], "table", None), "name", None) not in ours)]
    engine.dispose()
    assert diff == []


def test_same_overrun_twice_is_one_decision_grant_and_audit_record(store: GuardrailStore) -> None:
    ov = overrun("ov-a")  # 90 forecast on a 50 cap: 40 over, within the 100 the small rule allows
    first = store.decide(ov, POLICY, now=T)
    again = store.decide(ov, POLICY, now=T + timedelta(seconds=5))
    assert first.created and not again.created
    assert first.decision == again.decision
    assert (first.decision.action, first.decision.amount_usd, first.decision.rule) == ("grant", 40.0, "small")
    assert first.decision.expires_at == T + timedelta(hours=12)
    assert first.decision.policy_version.startswith("7@")
    assert len(store.decisions()) == 1 and len(store.grants("lab")) == 1 and len(store.audit()) == 1
    assert store.effective_cap("lab", 50.0, now=T + timedelta(hours=1)) == 90.0
    assert store.effective_cap("lab", 50.0, now=T + timedelta(hours=13)) == 50.0  # expired
    assert store.overrun("ov-a") == ov
    assert store.verify_audit() == []


def test_a_second_overrun_gets_only_what_is_uncovered_and_the_rule_limit(store: GuardrailStore) -> None:
    store.decide(overrun("o1", forecast=90.0), POLICY, now=T)  # +40
    d2 = store.decide(overrun("o2", forecast=110.0), POLICY, now=T).decision  # 60 over, 40 covered: +20
    d3 = store.decide(overrun("o3", forecast=160.0), POLICY, now=T).decision  # 110 over: not small -> big
    assert (d2.action, d2.amount_usd) == ("grant", 20.0)
    assert (d3.action, d3.rule, d3.amount_usd) == ("escalated", "big", 50.0)  # 160 - (50 + 60)
    assert sum(g.amount_usd for g in store.grants("lab")) == 60.0


def test_concurrent_decisions_on_one_budget_never_exceed_the_rule(store: GuardrailStore, database_url: str) -> None:
    """Eight overruns of one budget decided at once from eight threads (each its own connection)."""
    n, barrier = 8, threading.Barrier(8)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            # each alone would be granted 60 (110 forecast on a 50 cap); the rule allows 100 per period
            store.decide(overrun(f"c{i}", forecast=110.0 + i), POLICY, now=T)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    granted = sum(g.amount_usd for g in store.grants("lab"))
    decisions = store.decisions("lab")
    assert len(decisions) == n
    # Serialised, each decision tops the grants up to its own uncovered overrun (60 + i), so in any order
    # the total is the largest one, 67 (<= the rule's 100). Unserialised, each would grant 60 + i: 508.
    assert granted == pytest.approx(67.0)
    assert all(d.action == "grant" for d in decisions)
    assert store.verify_audit() == [] and len(store.audit()) == n


def test_escalation_approval_refusals_and_deadlines(store: GuardrailStore) -> None:
    ov = overrun("big-1", budget="prod", tier="production", cap=1000.0, spend=1100.0, forecast=1400.0)
    res = store.decide(ov, POLICY, now=T)
    assert res.decision.action == "escalated" and res.approval is not None
    req = res.approval
    assert (req.group, req.amount_usd, req.deadline, req.state) == ("fin", 400.0, T + timedelta(hours=4), "pending")
    assert [a.approval_id for a in store.approvals(state="pending")] == [req.approval_id]

    with pytest.raises(Refused, match="not a member"):
        store.approve(req.approval_id, "cy", APPROVERS, now=T + timedelta(minutes=5))
    with pytest.raises(Refused, match="at most 50"):
        store.approve(req.approval_id, "bo", APPROVERS, now=T + timedelta(minutes=5))
    with pytest.raises(NotFound):
        store.approve("ap-nope", "ann", APPROVERS)
    assert store.approval(req.approval_id).state == "pending" and len(store.audit()) == 1  # nothing changed

    assert store.apply_due(APPROVERS, now=T + timedelta(hours=3, minutes=59)) == []
    [esc] = store.apply_due(APPROVERS, now=T + timedelta(hours=4))
    assert esc.transition.event == "escalated" and esc.decision.action == "escalated"
    new = esc.transition.created
    assert (new.group, new.deadline, new.level) == ("cfo", T + timedelta(hours=6), 1)
    assert store.approval(req.approval_id).state == "escalated"
    with pytest.raises(Refused, match="escalated, not pending"):
        store.approve(req.approval_id, "ann", APPROVERS, now=T + timedelta(hours=4, minutes=1))

    done = store.approve(new.approval_id, "cy", APPROVERS, reason="launch", now=T + timedelta(hours=5))
    assert (done.decision.action, done.decision.amount_usd, done.decision.decided_by) == ("grant", 400.0, "cy")
    assert done.decision.step == 2 and done.grant is not None
    assert store.effective_cap("prod", 1000.0, now=T + timedelta(hours=6)) == 1400.0
    assert [r.event for r in store.audit("prod")] == ["decision", "approval.escalated", "approval.approved"]
    assert [d.step for d in store.decisions(overrun_id="big-1")] == [0, 1, 2]


def test_deny_needs_a_member_and_a_reason(store: GuardrailStore) -> None:
    res = store.decide(overrun("big-2", budget="prod", tier="production", cap=100.0, spend=100.0, forecast=300.0),
                       POLICY, now=T)
    with pytest.raises(Refused, match="reason"):
        store.deny(res.approval.approval_id, "ann", APPROVERS, reason=" ", now=T)
    out = store.deny(res.approval.approval_id, "U0ANN", APPROVERS, reason="not this quarter", now=T)
    assert (out.decision.action, out.decision.reason, out.grant) == ("deny", "not this quarter", None)


def test_outbox(store: GuardrailStore) -> None:
    d = store.decide(overrun("p1"), POLICY, now=T).decision
    assert [x.decision_id for x in store.decisions(unpublished=True)] == [d.decision_id]
    store.mark_published([d.decision_id], now=T)
    assert store.decisions(unpublished=True) == []


def test_audit_verify_finds_an_edited_and_a_deleted_row(store: GuardrailStore, database_url: str) -> None:
    for i in range(4):
        store.decide(overrun(f"a{i}", forecast=60.0 + i), POLICY, now=T)
    assert store.verify_audit() == []
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:  # someone edits a stored row behind the application's back
        conn.execute(sa.text("UPDATE guardrail_audit SET actor = 'mallory' WHERE seq = 2"))
    assert [p.seq for p in store.verify_audit()] == [2]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE guardrail_audit SET actor = 'policy' WHERE seq = 2"))
        conn.execute(sa.text("UPDATE guardrail_audit SET body = replace(body, '\"small\"', '\"big\"') WHERE seq = 3"))
    assert [p.seq for p in store.verify_audit()] == [3]
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE guardrail_audit SET body = replace(body, '\"big\"', '\"small\"') WHERE seq = 3"))
        conn.execute(sa.text("DELETE FROM guardrail_audit WHERE seq = 2"))
    problems = store.verify_audit()
    assert [p.seq for p in problems] == [3] and "missing" in problems[0].message
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM guardrail_audit WHERE seq >= 3"))
    assert any("at the end are missing" in p.message for p in store.verify_audit())
    engine.dispose()


def test_a_replayed_period_counts_its_own_grants(store: GuardrailStore) -> None:
    """Overruns of a period that ended (a backlog caught up after midnight, the demo's replayed day) are decided
    on that period's grants: a grant lasts until its expiry or the period's end, judged at the overrun's time."""
    later = DAY[1] + timedelta(hours=3)  # decided the next morning
    first = store.decide(overrun("ov-r1", forecast=90.0), POLICY, now=later)  # 40 over: granted
    assert (first.decision.action, first.decision.amount_usd, first.decision.expires_at) == ("grant", 40.0, DAY[1])
    # later that day the forecast is 250: 200 over the cap, 160 over cap + the 40 granted
    second = overrun("ov-r2", forecast=250.0).model_copy(update={"at": T + timedelta(hours=5)})
    out = store.decide(second, POLICY, now=later + timedelta(minutes=1))
    assert (out.decision.action, out.approval.amount_usd) == ("escalated", 160.0)

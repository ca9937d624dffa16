"""Guardrails end to end: usage through the real broker and worker -> overruns -> the test's policy decides.

A burst on a sandbox team crosses its daily cap: the policy auto-approves a fixed grant, recorded, emitted on
``guardrail.decisions`` and visible as the effective cap in ``burnguard budgets``. A larger burst on a
production budget becomes a pending approval with a 20 s deadline; the deadline passes and the worker escalates
it to the next group; an unauthorised ``burnguard approve`` is refused and changes nothing, an authorised one
approves and the grant is emitted. The same overrun delivered twice is decided once. ``burnguard audit verify``
passes, and fails once a row is edited in the database.

Every expected value is the test's own arithmetic on what it published (the bursts' sums), the files it wrote
(caps, grants, deadlines, groups) and, for the escalated amount, the overrun as the budgets agent put it on
``guardrail.overruns`` (the policy's "overrun": ``max(spend, forecast) - cap``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from kafka import KafkaProducer

from schemas.decision import Decision
from schemas.overrun import Overrun
from sinks.guardrail_store import GuardrailStore
from sinks.kafka_producer import UsageProducer
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.worker_process import WorkerProcess
from streams.settings import ALL_TOPICS, DECISIONS_TOPIC, OVERRUNS_TOPIC
from tests.support.topics import Topic, consumed
from tests.support.waits import room_in_the_day, until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

LAB_CAP, SHOP_CAP = 10.0, 100.0
LAB_GRANT = 30.0
BUDGETS = f"""version: 1
budgets:
  - id: lab-sandbox
    tier: sandbox
    scope: {{team: lab}}
    period: day
    cap_usd: {LAB_CAP}
    rules: []          # thresholds only: one overrun per period, when the cap is reached
    thresholds: [1.0]
  - id: shop-production
    tier: production
    scope: {{team: shop}}
    period: day
    cap_usd: {SHOP_CAP}
    rules: []
    thresholds: [1.0]
"""
POLICY = f"""version: 7
rules:
  - name: sandbox-auto
    match: {{tier: sandbox}}
    then: {{action: auto_approve, grant_usd: {LAB_GRANT}, expires: 2h}}
  - name: production-leads
    match: {{tier: production}}
    then: {{action: escalate, to: shop-leads, deadline: 20s, expires: 4h,
           on_timeout: {{escalate: finance, deadline: 1h}}}}
  - name: default
    default: true
    then: {{action: deny}}
"""
APPROVERS = """version: 1
groups:
  shop-leads:
    max_usd: unlimited
    members: [{name: lee}]
    next: finance
  finance:
    max_usd: unlimited
    members:
      - {slack: U0FIN00001, name: sam}
      - {name: intern, max_usd: 1}
"""


def _burst(team: str, n: int, usd: float, minute: datetime) -> list[dict[str, Any]]:
    return [{"timestamp": (minute + timedelta(milliseconds=100 * i)).isoformat(), "model": "gpt-4o",
             "provider": "openai", "input_tokens": 1000, "output_tokens": 100, "cost_usd": usd,
             "request_id": f"{team}-{i}", "tags": {"team": team, "feature": "burst", "customer": "internal",
                                                    "environment": "production"}}
            for i in range(n)]


def _decisions(topic: Topic) -> list[Decision]:
    return [Decision.model_validate_json(v) for v in topic.poll()]


def _one(items: list[T], pred: Callable[[T], bool]) -> T | None:
    hits = [x for x in items if pred(x)]
    assert len(hits) <= 1, hits
    return hits[0] if hits else None


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True,
                          env={**env, "COLUMNS": "250"}, cwd=ROOT, timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _json(env: dict[str, str], *args: str) -> Any:
    done = _cli(env, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _budget_caps(env: dict[str, str]) -> dict[str, tuple[float, float, float]]:
    """budget id -> (cap, granted, effective cap) as ``burnguard budgets`` shows them."""
    return {r["budget_id"]: (r["cap_usd"], r["granted_usd"], r["effective_cap_usd"])
            for r in _json(env, "budgets")}


def _store_state(url: str, budget_id: str) -> tuple:
    store = GuardrailStore(url)
    try:
        return (store.approvals(budget_id=budget_id), store.decisions(budget_id=budget_id),
                store.grants(budget_id), len(store.audit()))
    finally:
        store.close()


def test_policy_decides_overruns_from_the_stream(database_url: str, tmp_path: Path) -> None:
    for name, text in (("budgets.yaml", BUDGETS), ("policy.yaml", POLICY), ("approvers.yaml", APPROVERS)):
        (tmp_path / name).write_text(text)
    minute = room_in_the_day()
    period_end = (minute + timedelta(days=1)).replace(hour=0, minute=0)
    lab = _burst("lab", 8, 1.75, minute)     # $14.00 against a $10 cap
    shop = _burst("shop", 10, 23.4, minute)  # $234.00 against a $100 cap
    lab_spend, shop_spend = sum(e["cost_usd"] for e in lab), sum(e["cost_usd"] for e in shop)
    assert lab_spend > LAB_CAP and shop_spend > SHOP_CAP

    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        settings = {"budgets": str(tmp_path / "budgets.yaml"), "policy": str(tmp_path / "policy.yaml"),
                    "approvers": str(tmp_path / "approvers.yaml"), "app_id": "bg-guardrails"}
        with WorkerProcess(broker.url, database_url, tmp_path / "worker.log", **settings) as worker:
            env = worker.env
            overruns, decisions = Topic(broker.bootstrap, OVERRUNS_TOPIC), Topic(broker.bootstrap, DECISIONS_TOPIC)
            try:
                # one envelope: each budget's burst is booked in one step, so its overrun carries the whole sum
                with UsageProducer(broker.bootstrap, batch_size=len(lab) + len(shop), max_linger_s=60,
                                   stream_key="gateway") as producer:
                    for e in lab + shop:
                        producer.send("llm", e)
                t_published = datetime.now(timezone.utc)

                def overrun_of(budget_id: str) -> tuple[bytes, Overrun] | None:
                    for v in overruns.poll():
                        ov = Overrun.model_validate_json(v)
                        if ov.budget_id == budget_id:
                            return v, ov
                    return None

                lab_raw, lab_ov = until("the sandbox overrun", lambda: overrun_of("lab-sandbox"), 90,
                                        worker.check_alive, detail=overruns.poll)
                _, shop_ov = until("the production overrun", lambda: overrun_of("shop-production"), 30,
                                   worker.check_alive, detail=overruns.poll)
                for ov, spend, cap in ((lab_ov, lab_spend, LAB_CAP), (shop_ov, shop_spend, SHOP_CAP)):
                    assert (ov.rule, ov.cap_usd, ov.period_end) == ("threshold_100", cap, period_end)
                    assert ov.spend_usd == pytest.approx(spend, abs=1e-6)
                    assert ov.forecast_usd >= ov.spend_usd
                    assert ov.overrun_usd == pytest.approx(max(ov.spend_usd, ov.forecast_usd) - cap, abs=1e-5)
                # the policy's escalated amount: the overrun no grant covers yet (none on this budget)
                shop_amount = round(max(shop_ov.spend_usd, shop_ov.forecast_usd) - SHOP_CAP, 2)

                # -- sandbox: auto-approved grant of the policy's fixed amount, emitted and effective
                lab_grant = until("the sandbox grant", lambda: _one(
                    _decisions(decisions), lambda d: d.overrun_id == lab_ov.overrun_id), 30, worker.check_alive,
                    detail=lambda: _decisions(decisions))
                assert (lab_grant.action, lab_grant.amount_usd, lab_grant.rule, lab_grant.step) == \
                    ("grant", LAB_GRANT, "sandbox-auto", 0)
                assert lab_grant.budget_id == "lab-sandbox" and lab_grant.scope == {"team": ["lab"]}
                assert lab_grant.policy_version.startswith("7")
                assert t_published - timedelta(seconds=1) <= lab_grant.decided_at <= datetime.now(timezone.utc)
                assert lab_grant.expires_at == min(lab_grant.decided_at + timedelta(hours=2), period_end)

                # -- production: escalated to shop-leads with a 20 s deadline
                shop_esc = until("the production escalation", lambda: _one(
                    _decisions(decisions), lambda d: d.overrun_id == shop_ov.overrun_id and d.step == 0), 30,
                    worker.check_alive, detail=lambda: _decisions(decisions))
                assert (shop_esc.action, shop_esc.group, shop_esc.rule) == ("escalated", "shop-leads",
                                                                            "production-leads")
                assert shop_esc.amount_usd == pytest.approx(shop_amount)
                assert shop_esc.deadline == shop_esc.decided_at + timedelta(seconds=20)
                # (the worker escalates it 20-35 s after the decision: the pending request is read well before)
                assert datetime.now(timezone.utc) < shop_esc.deadline - timedelta(seconds=8), "too slow to look"
                pending = _json(env, "approvals", "--state", "pending")
                assert [(p["approval_id"], p["budget_id"], p["group"], p["amount_usd"], p["state"])
                        for p in pending] == [(shop_esc.approval_id, "shop-production", "shop-leads",
                                               pytest.approx(shop_amount), "pending")]
                assert datetime.fromisoformat(pending[0]["deadline"]) == shop_esc.deadline
                text = _cli(env, "approvals", "--state", "pending")
                assert text.returncode == 0 and shop_esc.approval_id in text.stdout
                assert f"{shop_esc.deadline:%Y-%m-%d %H:%M}" in text.stdout

                caps = _budget_caps(env)
                assert caps["lab-sandbox"] == (LAB_CAP, LAB_GRANT, LAB_CAP + LAB_GRANT)
                assert caps["shop-production"] == (SHOP_CAP, 0.0, SHOP_CAP)

                # -- redelivery: the same overrun message again changes nothing
                before = _store_state(database_url, "lab-sandbox")
                with KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all") as again:
                    again.send(OVERRUNS_TOPIC, lab_raw, key=b"lab-sandbox").get(timeout=30)
                until("the worker to consume the copy",
                      lambda: consumed(broker.bootstrap, settings["app_id"], OVERRUNS_TOPIC), 30, worker.check_alive)
                after = _store_state(database_url, "lab-sandbox")
                assert after[:3] == before[:3]
                store = GuardrailStore(database_url)
                try:
                    assert len(store.decisions(overrun_id=lab_ov.overrun_id)) == 1
                    assert [g.amount_usd for g in store.grants("lab-sandbox")] == [LAB_GRANT]
                    assert len([r for r in store.audit("lab-sandbox") if r.overrun_id == lab_ov.overrun_id]) == 1
                finally:
                    store.close()
                assert sum(d.overrun_id == lab_ov.overrun_id for d in _decisions(decisions)) == 1

                # -- the deadline passes: escalated to finance (the rule's on_timeout), with a 1 h deadline
                to_finance = until("the escalation to finance", lambda: _one(
                    _decisions(decisions), lambda d: d.overrun_id == shop_ov.overrun_id and d.step == 1), 60,
                    worker.check_alive, detail=lambda: _decisions(decisions))
                assert (to_finance.action, to_finance.group, to_finance.decided_by) == ("escalated", "finance",
                                                                                        "deadline")
                assert to_finance.decided_at >= shop_esc.deadline
                assert to_finance.deadline == to_finance.decided_at + timedelta(hours=1)
                assert to_finance.amount_usd == pytest.approx(shop_amount)
                states = {p["approval_id"]: p for p in _json(env, "approvals", "--budget", "shop-production")}
                assert states[shop_esc.approval_id]["state"] == "escalated"
                new_id = to_finance.approval_id
                assert new_id != shop_esc.approval_id and states[new_id]["state"] == "pending"
                assert states[new_id]["group"] == "finance"

                # -- refused: a lead of the first group, and a finance member above their limit; nothing changes
                before = _store_state(database_url, "shop-production")
                for user, why in (("lee", "not a member of approver group finance"), ("intern", "at most 1 USD")):
                    done = _cli(env, "approve", new_id, "--as", user)
                    assert done.returncode == 1 and "refused:" in done.stderr and why in done.stderr, done.stderr
                assert _store_state(database_url, "shop-production") == before

                # -- approved by finance: a grant of the requested amount, emitted, effective
                done = _cli(env, "approve", new_id, "--as", "U0FIN00001", "--reason", "launch week")
                assert done.returncode == 0, done.stderr
                assert f"{new_id}: approved by U0FIN00001" in done.stdout
                approved = until("the approved grant", lambda: _one(
                    _decisions(decisions), lambda d: d.overrun_id == shop_ov.overrun_id and d.step == 2), 40,
                    worker.check_alive, detail=lambda: _decisions(decisions))
                assert (approved.action, approved.decided_by, approved.reason) == ("grant", "U0FIN00001",
                                                                                   "launch week")
                assert approved.amount_usd == pytest.approx(shop_amount)
                assert approved.expires_at == min(approved.decided_at + timedelta(hours=4), period_end)
                caps = _budget_caps(env)
                assert caps["shop-production"] == (SHOP_CAP, pytest.approx(shop_amount),
                                                   pytest.approx(SHOP_CAP + shop_amount))
                assert caps["lab-sandbox"][2] == LAB_CAP + LAB_GRANT
                # every decision exactly once on the topic
                ids = [d.decision_id for d in _decisions(decisions)]
                assert len(ids) == len(set(ids)) == 4
            finally:
                overruns.close()
                decisions.close()

    # -- the audit log: one record per decision and state change (2 policy decisions, 1 escalation, 1 approval)
    done = _cli(env, "audit", "verify")
    assert done.returncode == 0 and "audit verify: ok, 4 record(s), chain intact" in done.stdout, done.stdout
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:  # someone rewrites the approval's reason (record 4) in place
            edited = conn.execute(sa.text("UPDATE guardrail_audit SET body = REPLACE(body, 'launch week', "
                                          "'CFO said so') WHERE seq = 4"))
            assert edited.rowcount == 1
    finally:
        engine.dispose()
    done = _cli(env, "audit", "verify")
    assert done.returncode == 1 and "FAILED" in done.stderr and "record 4" in done.stderr, done.stderr

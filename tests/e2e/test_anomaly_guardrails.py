"""Anomaly-triggered overruns end to end: a spend spike through the real broker and worker -> detect's alerts ->
one overrun per budget the spike speaks for -> the policy's decision on ``guardrail.decisions``, once.

A synthetic day of LLM usage (200 minutes, a prompt-bloat spike on ads/copygen/gpt-4o at minute 150) and two
budgets covering the spiked key: ``ads`` (the team) and ``ads-copygen`` (the feature). The spike alerts on spend
(and other metrics) on the leaf key and on the team roll-up; the feature budget's overrun comes from the leaf's
spend alert, the team budget's from the roll-up's, and nothing else raises one (caps above the day's actual
spend, no burn-rate rules: no budget-triggered overrun). The policy pages on anomalies with a score. Then both
spend alerts are put on ``alerts`` again, as detect re-sends them after a crash: the same overruns come back
and nothing new is decided.

Expected values: the alerts as the worker stored them (fingerprint, score, $ impact), the published events'
sums (each budget's spend is at most what was published on its scope), the budgets file (caps, period).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
import pytest
from kafka import KafkaProducer

from schemas.alert import Alert
from schemas.decision import Decision
from schemas.overrun import Overrun
from sinks.guardrail_store import GuardrailStore
from sinks.kafka_producer import UsageProducer
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.synthetic import Spike, SyntheticDay
from streams.harness.worker_process import WorkerProcess
from streams.settings import ALERTS_TOPIC, ALL_TOPICS, DECISIONS_TOPIC, OVERRUNS_TOPIC
from tests.support.topics import Topic, consumed
from tests.support.waits import until

pytestmark = pytest.mark.e2e

SPIKED = "ads/copygen/gpt-4o"
LEAF = "team=ads|feature=copygen|customer=internal|model=gpt-4o|environment=production"
TEAM = "team=ads|feature=*|customer=*|model=*|environment=production"  # the shipped [team, environment] roll-up
ADS_CAP, COPYGEN_CAP = 12.0, 10.0
BUDGETS = f"""version: 1
budgets:
  - {{id: ads, tier: production, scope: {{team: ads}}, period: day, cap_usd: {ADS_CAP}, rules: [], thresholds: [1.0]}}
  - {{id: ads-copygen, parent: ads, tier: production, scope: {{team: ads, feature: copygen}}, period: day,
     cap_usd: {COPYGEN_CAP}, rules: [], thresholds: [1.0]}}
"""
POLICY = """version: 3
rules:
  - name: page-on-anomalies
    match: {tier: production}
    when: {trigger: {eq: anomaly}, anomaly_score: {gte: 0.9}}
    then: {action: page, to: ads-oncall}
  - name: default
    default: true
    then: {action: deny}
"""


def test_a_spend_spike_is_one_overrun_per_budget_decided_once(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "budgets.yaml").write_text(BUDGETS)
    (tmp_path / "policy.yaml").write_text(POLICY)
    day = SyntheticDay(date.today() - timedelta(days=2), minutes=200, spikes=(Spike(SPIKED, 150, 10, 8.0),))
    events = list(day.events())
    published = {"ads": sum(e["cost_usd"] for e in events if e["tags"]["team"] == "ads"),
                 "ads-copygen": sum(e["cost_usd"] for e in events if e["tags"]["team"] == "ads"
                                    and e["tags"]["feature"] == "copygen")}
    assert published["ads"] < ADS_CAP and published["ads-copygen"] < COPYGEN_CAP  # no threshold overrun
    period = (day.start, day.start + timedelta(days=1))
    app_id = "bg-anomaly-guardrails"

    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        with WorkerProcess(broker.url, database_url, tmp_path / "worker.log", app_id=app_id,
                           budgets=str(tmp_path / "budgets.yaml"), policy=str(tmp_path / "policy.yaml")) as worker:
            alerts_t, overruns_t = Topic(broker.bootstrap, ALERTS_TOPIC), Topic(broker.bootstrap, OVERRUNS_TOPIC)
            decisions_t = Topic(broker.bootstrap, DECISIONS_TOPIC)
            try:
                with UsageProducer(broker.bootstrap, batch_size=400, stream_key="e2e") as producer:
                    for e in events:
                        producer.send("llm", e)

                def overruns() -> dict[str, list[Overrun]]:
                    out: dict[str, list[Overrun]] = {}
                    for v in overruns_t.poll():
                        ov = Overrun.model_validate_json(v)
                        out.setdefault(ov.budget_id, []).append(ov)
                    return out

                def decisions() -> list[Decision]:
                    return [Decision.model_validate_json(v) for v in decisions_t.poll()]

                got = until("both anomaly overruns", lambda: (o := overruns()) and len(o) == 2 and o, 240,
                            worker.check_alive, detail=overruns)
                by_budget = {b: ovs[0] for b, ovs in got.items()}
                assert sorted(by_budget) == ["ads", "ads-copygen"]
                # the alerts they came from: spend, firing, on the leaf (feature budget) and the team roll-up
                def spend_alerts_seen() -> dict[str, tuple[bytes, Alert]]:
                    seen = {a.series_key: (raw, a) for raw in alerts_t.poll()
                            if (a := Alert.model_validate_json(raw)).metric == "spend" and a.status == "firing"}
                    return seen if {LEAF, TEAM} <= set(seen) else {}

                spend_alerts = until("the spend alerts", spend_alerts_seen, 10, worker.check_alive)
                for budget_id, key, cap in (("ads-copygen", LEAF, COPYGEN_CAP), ("ads", TEAM, ADS_CAP)):
                    ov, (_, a) = by_budget[budget_id], spend_alerts[key]
                    assert (ov.trigger, ov.rule, ov.basis, ov.tier) == ("anomaly", "anomaly.spend", "anomaly",
                                                                        "production")
                    assert (ov.alert_fingerprint, ov.anomaly_score) == (a.fingerprint, a.score)
                    assert (ov.period_start, ov.period_end, ov.cap_usd) == (*period, cap)
                    assert day.start + timedelta(minutes=150) <= a.started_at <= day.start + timedelta(minutes=155)
                    # its spend so far is the budget's, from its tracker: at most what was published on its scope
                    assert 0.0 < ov.spend_usd <= published[budget_id] + 1e-6
                    # the anomaly priced to the period's end: its $ impact for every second left after the
                    # budget's clock (at most the last published minute's end)
                    impact = sum(c.impact_usd for c in a.contributors if c.impact_usd > 0) if a.contributors \
                        else a.observed - a.baseline
                    rate = impact / (a.window_end - a.window_start).total_seconds()
                    left = (period[1] - (day.start + timedelta(minutes=200))).total_seconds()
                    assert ov.forecast_usd >= ov.spend_usd + rate * left - 1e-6
                    assert ov.overrun_usd == pytest.approx(ov.forecast_usd - cap, abs=1e-5) and ov.overrun_usd > 0
                # only these two: cost per inference, tokens and the other levels' alerts raise none
                assert {len(v) for v in got.values()} == {1}

                ids = {ov.overrun_id: b for b, ov in by_budget.items()}
                paged = until("both decisions", lambda: (d := [x for x in decisions() if x.overrun_id in ids])
                              and len(d) == 2 and d, 60, worker.check_alive, detail=decisions)
                assert sorted((d.budget_id, d.action, d.group, d.rule, d.step) for d in paged) == [
                    (b, "page", "ads-oncall", "page-on-anomalies", 0) for b in ("ads", "ads-copygen")]
                assert all(d.policy_version.startswith("3") and d.budget_id == ids[d.overrun_id] for d in paged)

                # -- detect re-sends both spend alerts (a crash before its state was saved): nothing new is decided
                with KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all") as again:
                    for key in (LEAF, TEAM):
                        again.send(ALERTS_TOPIC, spend_alerts[key][0], key=key.encode()).get(timeout=30)
                until("the re-sent alerts' overruns", lambda: sum(map(len, overruns().values())) == 4, 60,
                      worker.check_alive, detail=overruns)
                again_ids = [Overrun.model_validate_json(v).overrun_id for v in overruns_t.values]
                assert sorted(again_ids) == sorted([*ids, *ids])  # the same two overruns, each once more
                until("the worker to decide the copies", lambda: consumed(broker.bootstrap, app_id, OVERRUNS_TOPIC), 60,
                      worker.check_alive)
                assert len([d for d in decisions() if d.overrun_id in ids]) == 2
            finally:
                alerts_t.close()
                overruns_t.close()
                decisions_t.close()

    store = GuardrailStore(database_url)
    try:
        stored = store.decisions()
        assert sorted((d.budget_id, d.action) for d in stored) == [("ads", "page"), ("ads-copygen", "page")]
        for d in stored:  # the decision's overrun, as the store keeps it, names the alert and its score
            ov = store.overrun(d.overrun_id)
            assert ov is not None and ov.alert_fingerprint == by_budget[d.budget_id].alert_fingerprint
            assert ov.anomaly_score == by_budget[d.budget_id].anomaly_score
        assert len(store.audit()) == 2
    finally:
        store.close()

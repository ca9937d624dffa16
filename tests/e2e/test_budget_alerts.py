"""Burn rate through the real broker: a surge on a team's daily budget pages once, crosses the
thresholds once each, resolves when it stops, exactly as the tracker predicts offline."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

import pytest

from guardrails.budget_book import BudgetBook
from guardrails.burn_tracker import BurnTracker
from sinks.kafka_producer import UsageProducer
from streams.agents.budgets import burn_alert
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.settings import ALL_TOPICS, Settings
from streams.harness.synthetic import Spike, SyntheticDay
from streams.harness.worker_process import WorkerProcess, last_minutes, wait_for_alerts, wait_for_buckets

pytestmark = pytest.mark.e2e
BUDGETS = """version: 1
budgets:
  - id: team-ads
    scope: {team: ads}
    period: day
    cap_usd: 50
"""


def test_surge_burns_budget_pages_once_and_resolves(tmp_path) -> None:
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(BUDGETS)
    # a leaked-key style surge: ads' calls cost ~28x for an hour
    day = SyntheticDay(date.today() - timedelta(days=2), minutes=420,
                       spikes=(Spike("ads/copygen/gpt-4o", 300, 60, 60.0),))
    events = list(day.events())
    settings = Settings(_env_file=None, budgets=str(budgets))

    # the team's spend per minute, summed here from the events published
    per_minute: dict[datetime, float] = defaultdict(float)
    for e in events:
        if e["tags"]["team"] == "ads":
            per_minute[datetime.fromisoformat(e["timestamp"]).replace(second=0, microsecond=0)] += e["cost_usd"]
    book = BudgetBook.load(budgets)
    tracker = BurnTracker.from_spec(book.get("team-ads"))
    predicted = [burn_alert(ev) for minute, spend in sorted(per_minute.items())
                 for ev in tracker.observe(minute, spend)]
    want = {(a.metric, a.started_at, a.status) for a in predicted if a.status == "firing"} | \
           {(a.metric, a.started_at, a.status) for a in predicted if a.status == "resolved"}
    assert {m for m, _, _ in want} == {"burn_rate.fast", "budget.threshold_80", "budget.threshold_100"}
    assert ("burn_rate.fast", min(t for m, t, _ in want if m == "burn_rate.fast"), "resolved") in want

    database_url = f"sqlite:///{tmp_path / 'budgets.db'}"
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        with WorkerProcess(broker.url, database_url, tmp_path / "worker.log", budgets=str(budgets)) as worker:
            with UsageProducer(broker.bootstrap, stream_key="gateway") as producer:
                for e in events:
                    producer.send("llm", e)
            wait_for_buckets(worker, broker.bootstrap, last_minutes(events, settings.rollups), timeout=120)
            stored = wait_for_alerts(worker, broker.bootstrap, database_url, timeout=60, settle=3)

    got = [a for a in stored if a.series_key == "budget=team-ads"]
    # the store keeps one row per incident with its latest status
    latest = {}
    for m, t, s in sorted(want, key=lambda x: x[2] == "resolved"):
        latest[(m, t)] = s
    assert {(a.metric, a.started_at, a.status) for a in got} == {(m, t, s) for (m, t), s in latest.items()}
    fast = next(a for a in got if a.metric == "burn_rate.fast")
    assert fast.severity == "critical" and fast.status == "resolved"
    spike = day.start + timedelta(minutes=300)
    assert spike < fast.started_at < spike + timedelta(minutes=60)
    assert "of $50.00 spent" in (fast.summary or "")

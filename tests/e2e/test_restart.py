"""Detector state survives a worker restart (Faust tables recovered from their changelogs).

The spike comes 5 buckets after the restart; a detector that re-entered warm-up (30 buckets)
could not alert on it, so an alert proves the state was recovered, not rebuilt.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from sinks.kafka_producer import UsageProducer
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.settings import ALL_TOPICS, Settings
from streams.harness.synthetic import Spike, SyntheticDay
from streams.harness.worker_process import WorkerProcess, last_minutes, wait_for_alerts, wait_for_buckets

pytestmark = pytest.mark.e2e
RESTART_MINUTE, SPIKE_MINUTE = 90, 95
ROLLUPS = Settings(_env_file=None).rollups


def test_monitors_survive_restart_and_alert_without_new_warmup(tmp_path) -> None:
    day = SyntheticDay(date.today() - timedelta(days=3), minutes=120,
                       spikes=(Spike("ads/copygen/gpt-4o", SPIKE_MINUTE, 10, 8.0),))
    restart_at = day.start + timedelta(minutes=RESTART_MINUTE)
    events = list(day.events())
    before = [e for e in events if datetime.fromisoformat(e["timestamp"]) < restart_at]
    after = events[len(before):]
    database_url = f"sqlite:///{tmp_path / 'restart.db'}"
    settings = {"detector": "ew_zscore", "app_id": "bg-restart"}

    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        with WorkerProcess(broker.url, database_url, tmp_path / "worker1.log", **settings) as worker:
            with UsageProducer(broker.bootstrap, stream_key="restart") as producer:
                for e in before:
                    producer.send("llm", e)
            wait_for_buckets(worker, broker.bootstrap, last_minutes(before, ROLLUPS), timeout=90)
            assert wait_for_alerts(worker, broker.bootstrap, database_url, timeout=30) == []
        # worker 1 stopped (SIGTERM): a new process must recover tables from the changelogs
        with WorkerProcess(broker.url, database_url, tmp_path / "worker2.log", **settings) as worker:
            with UsageProducer(broker.bootstrap, stream_key="restart") as producer:
                for e in after:
                    producer.send("llm", e)
            wait_for_buckets(worker, broker.bootstrap, last_minutes(after, ROLLUPS), timeout=90)
            alerts = wait_for_alerts(worker, broker.bootstrap, database_url, timeout=30)

    cpi = [a for a in alerts if a.metric == "cost_per_inference" and "feature=*" not in a.series_key]
    assert len(cpi) == 1, [(a.series_key, a.metric, a.started_at) for a in alerts]
    assert "team=ads|feature=copygen" in cpi[0].series_key
    spike = day.start + timedelta(minutes=SPIKE_MINUTE)
    assert spike <= cpi[0].started_at <= spike + timedelta(minutes=2)

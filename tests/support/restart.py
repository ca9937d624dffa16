"""The restart tests' day (tests/e2e/test_restart.py, test_restart_rocksdb.py): 120 minutes of synthetic usage
with a cost spike on ads/copygen/gpt-4o 5 minutes after the restart, one worker per half, and the check that
the restarted worker alerted on the spike.

The detector (ew_zscore) warms up on 30 buckets: one that re-entered warm-up at the restart could not alert 5
buckets later, so the alert proves the detector state was recovered, not rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.alert import Alert
from sinks.kafka_producer import UsageProducer
from streams.harness.synthetic import Spike, SyntheticDay
from streams.harness.worker_process import WorkerProcess, last_minutes, wait_for_alerts, wait_for_buckets
from streams.settings import Settings

RESTART_MINUTE, SPIKE_MINUTE = 90, 95
SPIKED = "ads/copygen/gpt-4o"
ROLLUPS = Settings(_env_file=None).rollups


@dataclass(frozen=True)
class RestartDay:
    """The day's events, split at the restart minute."""

    day: SyntheticDay
    before: list[dict[str, Any]]
    after: list[dict[str, Any]]

    @classmethod
    def make(cls) -> "RestartDay":
        day = SyntheticDay(date.today() - timedelta(days=3), minutes=120,
                           spikes=(Spike(SPIKED, SPIKE_MINUTE, 10, 8.0),))
        restart_at = day.start + timedelta(minutes=RESTART_MINUTE)
        events = list(day.events())
        before = [e for e in events if datetime.fromisoformat(e["timestamp"]) < restart_at]
        return cls(day, before, events[len(before):])


def run_worker(broker_url: str, bootstrap: str, database_url: str, log: Path, settings: dict[str, str],
               events: list[dict[str, Any]], stream_key: str) -> list[Alert]:
    """Start a worker, publish ``events``, wait until every key's last minute has closed and the store holds
    every alert; stop the worker (SIGTERM) and return the stored alerts."""
    with WorkerProcess(broker_url, database_url, log, **settings) as worker:
        with UsageProducer(bootstrap, stream_key=stream_key) as producer:
            for e in events:
                producer.send("llm", e)
        wait_for_buckets(worker, bootstrap, last_minutes(events, ROLLUPS), timeout=90)
        return wait_for_alerts(worker, bootstrap, database_url, timeout=30)


def assert_alerted_on_the_spike(alerts: list[Alert], day: SyntheticDay) -> None:
    """One cost-per-inference alert on a leaf key, on ads/copygen, starting within 2 minutes of the spike."""
    cpi = [a for a in alerts if a.metric == "cost_per_inference" and "feature=*" not in a.series_key]
    assert len(cpi) == 1, [(a.series_key, a.metric, a.started_at) for a in alerts]
    assert "team=ads|feature=copygen" in cpi[0].series_key
    spike = day.start + timedelta(minutes=SPIKE_MINUTE)
    assert spike <= cpi[0].started_at <= spike + timedelta(minutes=2)

"""kill -9 mid-stream: at-least-once redelivery must neither lose nor double-count a dollar.

Phase 2's messages are in flight when the worker is killed (Faust commits offsets every few
seconds), so the next worker re-reads some usage and costs messages whose effects are already
in the tables' changelogs. Every event must still be in exactly one bucket.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import date, datetime, timedelta

import pytest

from schemas.cost import AllocationKey
from sinks.kafka_producer import UsageProducer
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.offline import replay
from streams.settings import ALL_TOPICS, BUCKETS_TOPIC, Settings
from streams.harness.synthetic import Spike, SyntheticDay
from streams.harness.topic_reader import TopicReader
from streams.harness.worker_process import WorkerProcess, last_minutes, wait_for_alerts, wait_for_buckets

pytestmark = pytest.mark.e2e


def test_kill_minus_nine_loses_nothing_and_counts_nothing_twice(tmp_path) -> None:
    day = SyntheticDay(date.today() - timedelta(days=4), minutes=420,
                       spikes=(Spike("ads/copygen/gpt-4o", 360, 10, 8.0),))
    events = list(day.events())
    split = day.start + timedelta(minutes=300)
    before = [e for e in events if datetime.fromisoformat(e["timestamp"]) < split]
    after = events[len(before):]
    settings = Settings(_env_file=None, detector="ew_zscore")
    database_url = f"sqlite:///{tmp_path / 'crash.db'}"
    env = {"detector": "ew_zscore", "app_id": "bg-crash"}

    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        worker = WorkerProcess(broker.url, database_url, tmp_path / "worker1.log", **env).start()
        try:
            with UsageProducer(broker.bootstrap, batch_size=200, stream_key="gw") as producer:
                for e in before:
                    producer.send("llm", e)
            wait_for_buckets(worker, broker.bootstrap, last_minutes(before, settings.rollups), timeout=120)
            reader = TopicReader(broker.bootstrap, BUCKETS_TOPIC)
            seen_before = sum(1 for _ in reader.poll(timeout_ms=1000))
            with UsageProducer(broker.bootstrap, batch_size=200, stream_key="gw") as producer:
                for e in after:
                    producer.send("llm", e)
            deadline = time.monotonic() + 60
            while sum(1 for _ in reader.poll(timeout_ms=100)) == 0:  # phase 2 is being processed now
                assert time.monotonic() < deadline, "phase 2 never started"
            reader.close()
            worker.process.kill()  # SIGKILL: no graceful commit
            worker.process.wait(timeout=10)
        finally:
            worker.stop()
        with WorkerProcess(broker.url, database_url, tmp_path / "worker2.log", **env) as worker2:
            buckets = wait_for_buckets(worker2, broker.bootstrap, last_minutes(events, settings.rollups),
                                       timeout=120)
            stored = wait_for_alerts(worker2, broker.bootstrap, database_url, timeout=60)
    assert seen_before > 0

    # a bucket re-emitted identically (its close was sent, its state write was lost) is one bucket
    unique = {(b.key, b.start, b.late, b.records, round(b.spend_usd, 9)) for b in buckets}
    per_slot = Counter((k, start, late) for k, start, late, _, _ in unique)
    twice = [u for u in unique if per_slot[u[:3]] > 1]
    assert not twice, f"a bucket was emitted twice with different contents: {sorted(twice)[:6]}"
    full = {str(AllocationKey(model=e["model"], **e["tags"])) for e in events}
    assert sum(r for k, _, _, r, _ in unique if k in full) == len(events)  # nothing lost, nothing twice
    assert sum(s for k, _, _, _, s in unique if k in full) == pytest.approx(sum(e["cost_usd"] for e in events))

    _, predicted = replay(events, settings)
    want = {(a.series_key, a.metric, a.started_at) for a in predicted}
    assert {(a.series_key, a.metric, a.started_at) for a in stored} == want
    assert any(a.metric == "cost_per_inference" and "team=ads|feature=copygen" in a.series_key for a in stored)

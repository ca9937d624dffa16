"""With ``BURNGUARD_TABLE_STORE=rocksdb://`` the worker keeps its tables on disk and a restarted worker
carries on from them.

Worker 1 processes 90 minutes of usage and stops. Its RocksDB files (read with rocksdict while no
worker runs) must hold exactly the last value of every key on the ``monitors`` changelog, per
partition, and remember the changelog offset they are at (what lets a restart skip re-reading the
changelog). Worker 2, on the same data directory, gets a spike 5 buckets after the restart; a detector
that re-entered warm-up (30 buckets) could not alert on it, so the alert proves the state was kept.

The embedded (Tansu) broker answers ListOffsets(latest) with the last record batch's base offset + 1, not
the last offset + 1, so a RocksDB table that applied a whole multi-record batch is "ahead" of the topic's
end and Faust's recovery check refuses to start (ConsistencyError). Against the embedded broker the
worker runs with Faust's ``RECOVERY_CONSISTENCY_CHECK=false`` (docs/operations.md).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from sinks.kafka_producer import UsageProducer
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.synthetic import Spike, SyntheticDay
from streams.harness.worker_process import WorkerProcess, last_minutes, wait_for_alerts, wait_for_buckets
from streams.settings import ALL_TOPICS, Settings
from streams.scoring import SiblingsState
from streams.state.codec import decode
from streams.state.values import ChildrenState, SeriesState

pytestmark = pytest.mark.e2e
rocksdict = pytest.importorskip("rocksdict")
RESTART_MINUTE, SPIKE_MINUTE = 90, 95
ROLLUPS = Settings(_env_file=None).rollups
APP_ID = "bg-rocks"
OFFSET_KEY = b"__faust\x00offset__"  # where faust's RocksDB store keeps the changelog offset it is at


def changelog(bootstrap: str, topic: str) -> tuple[dict[int, dict[bytes, bytes | None]], dict[int, int]]:
    """Per partition: every key's last value on ``topic`` (``None``: deleted) and the highest offset.

    Read to the end offsets, whole record batches at a time (the embedded broker's end offset is the last
    batch's base offset + 1, so the offsets are taken from the records, not from it)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=500)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        last: dict[int, dict[bytes, bytes | None]] = {tp.partition: {} for tp in parts}
        top: dict[int, int] = {}
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            for tp, records in consumer.poll(timeout_ms=500, max_records=10_000).items():
                for r in records:
                    last[tp.partition][r.key] = r.value
                    top[tp.partition] = max(top.get(tp.partition, -1), r.offset)
        return last, top
    finally:
        consumer.close()


def rocksdb_contents(path: Path) -> dict[bytes, bytes]:
    opts = rocksdict.Options(raw_mode=True)
    db = rocksdict.Rdict(str(path), options=opts, access_type=rocksdict.AccessType.read_only())
    try:
        return dict(db.items())
    finally:
        db.close()


def test_rocksdb_tables_are_on_disk_and_survive_restart(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RECOVERY_CONSISTENCY_CHECK", "false")  # the embedded broker's end offsets
    day = SyntheticDay(date.today() - timedelta(days=3), minutes=120,
                       spikes=(Spike("ads/copygen/gpt-4o", SPIKE_MINUTE, 10, 8.0),))
    restart_at = day.start + timedelta(minutes=RESTART_MINUTE)
    events = list(day.events())
    before = [e for e in events if datetime.fromisoformat(e["timestamp"]) < restart_at]
    after = events[len(before):]
    database_url = f"sqlite:///{tmp_path / 'rocks.db'}"
    settings = {"detector": "ew_zscore", "app_id": APP_ID, "table_store": "rocksdb://",
                "data_dir": str(tmp_path / "data")}
    tables = tmp_path / "data" / "v1" / "tables"

    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        with WorkerProcess(broker.url, database_url, tmp_path / "worker1.log", **settings) as worker:
            with UsageProducer(broker.bootstrap, stream_key="rocks") as producer:
                for e in before:
                    producer.send("llm", e)
            wait_for_buckets(worker, broker.bootstrap, last_minutes(before, ROLLUPS), timeout=90)
            assert wait_for_alerts(worker, broker.bootstrap, database_url, timeout=30) == []

        # no worker runs: the files hold the changelog's final state, and the offset they are at
        final, last_offset = changelog(broker.bootstrap, f"{APP_ID}-monitors-changelog")
        series = 0
        for partition, expected in final.items():
            stored = rocksdb_contents(tables / f"monitors-{partition}.db")
            offset = stored.pop(OFFSET_KEY, None)
            assert stored == {k: v for k, v in expected.items() if v is not None}, partition
            if partition in last_offset:
                assert offset is not None and int(offset) == last_offset[partition], partition
            kinds = [type(decode(v)) for v in stored.values()]
            assert set(kinds) <= {SeriesState, ChildrenState, SiblingsState}, partition
            series += kinds.count(SeriesState)
        assert series > 0

        with WorkerProcess(broker.url, database_url, tmp_path / "worker2.log", **settings) as worker:
            with UsageProducer(broker.bootstrap, stream_key="rocks") as producer:
                for e in after:
                    producer.send("llm", e)
            wait_for_buckets(worker, broker.bootstrap, last_minutes(after, ROLLUPS), timeout=90)
            alerts = wait_for_alerts(worker, broker.bootstrap, database_url, timeout=30)

    cpi = [a for a in alerts if a.metric == "cost_per_inference" and "feature=*" not in a.series_key]
    assert len(cpi) == 1, [(a.series_key, a.metric, a.started_at) for a in alerts]
    assert "team=ads|feature=copygen" in cpi[0].series_key
    spike = day.start + timedelta(minutes=SPIKE_MINUTE)
    assert spike <= cpi[0].started_at <= spike + timedelta(minutes=2)

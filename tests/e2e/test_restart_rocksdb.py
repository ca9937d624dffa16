"""With ``BURNGUARD_TABLE_STORE=rocksdb://`` the worker keeps its tables on disk and a restarted worker
carries on from them.

Worker 1 processes 90 minutes of usage and stops. Its RocksDB files (read with rocksdict while no
worker runs) must hold exactly the last value of every key on the ``monitors`` changelog, per
partition, and remember the changelog offset they are at (what lets a restart skip re-reading the
changelog). Worker 2, on the same data directory, gets a spike 5 buckets after the restart; a detector
that re-entered warm-up (30 buckets) could not alert on it, so the alert proves the state was kept.

Faust's recovery consistency check stays on: the embedded (Tansu) broker answers ListOffsets(latest) with
the last record batch's base offset + 1, which would make a RocksDB table that applied a whole batch look
"ahead" of its changelog (ConsistencyError), but the worker checks changelog end offsets against a fetch
(streams.end_offsets).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.settings import ALL_TOPICS
from streams.state.codec import decode
from streams.state.values import KeyMonitors, SeriesState
from tests.support.restart import RestartDay, assert_alerted_on_the_spike, run_worker
from tests.support.topics import changelog

pytestmark = pytest.mark.e2e
rocksdict = pytest.importorskip("rocksdict")
APP_ID = "bg-rocks"
OFFSET_KEY = b"__faust\x00offset__"  # where faust's RocksDB store keeps the changelog offset it is at


def rocksdb_contents(path: Path) -> dict[bytes, bytes]:
    opts = rocksdict.Options(raw_mode=True)
    db = rocksdict.Rdict(str(path), options=opts, access_type=rocksdict.AccessType.read_only())
    try:
        return dict(db.items())
    finally:
        db.close()


def test_rocksdb_tables_are_on_disk_and_survive_restart(tmp_path) -> None:
    split = RestartDay.make()
    database_url = f"sqlite:///{tmp_path / 'rocks.db'}"
    settings = {"detector": "ew_zscore", "app_id": APP_ID, "table_store": "rocksdb://",
                "data_dir": str(tmp_path / "data")}
    tables = tmp_path / "data" / "v1" / "tables"

    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        assert run_worker(broker.url, broker.bootstrap, database_url, tmp_path / "worker1.log", settings,
                          split.before, "rocks") == []

        # no worker runs: the files hold the changelog's final state, and the offset they are at
        final, last_offset = changelog(broker.bootstrap, f"{APP_ID}-monitors-changelog")
        series = 0
        for partition, expected in final.items():
            stored = rocksdb_contents(tables / f"monitors-{partition}.db")
            offset = stored.pop(OFFSET_KEY, None)
            assert stored == {k: v for k, v in expected.items() if v is not None}, partition
            if partition in last_offset:
                assert offset is not None and int(offset) == last_offset[partition], partition
            values = [decode(v) for v in stored.values()]
            assert {type(v) for v in values} <= {KeyMonitors}, partition  # one value per key, all its series
            series += sum(type(s) is SeriesState for v in values for _, s in v.items())
        assert series > 0

        alerts = run_worker(broker.url, broker.bootstrap, database_url, tmp_path / "worker2.log", settings,
                            split.after, "rocks")

    assert_alerted_on_the_spike(alerts, split.day)

"""bench.report: nearest-rank percentiles and the speed table, against hand-worked values."""

from __future__ import annotations

import math

import pytest

from bench.latency import LiveLoad, SPIKE_FACTOR, SPIKE_PER_MINUTE
from bench.report import Latencies, Row, format_table, met, percentile, ratio


def test_percentile_is_a_measured_sample_by_nearest_rank() -> None:
    samples = [9.0, 1.0, 5.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0, 10.0]  # 1..10 shuffled
    assert percentile(samples, 50) == 5.0  # rank ceil(5) = 5
    assert percentile(samples, 90) == 9.0  # rank 9
    assert percentile(samples, 91) == 10.0  # rank ceil(9.1) = 10
    assert percentile(samples, 99) == 10.0
    assert percentile(samples, 10) == 1.0
    assert percentile(list(range(1000)), 99) == 989  # rank 990 of 0..999


@pytest.mark.parametrize("p", [0, -1, 100.5])
def test_percentile_rejects_out_of_range(p: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0], p)


def test_percentile_of_nothing_is_an_error_and_latencies_of_nothing_say_so() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    empty = Latencies.of([])
    assert empty.n == 0 and math.isnan(empty.p99) and empty.text() == "no samples"


def test_latencies_text() -> None:
    assert Latencies.of([0.5, 2.25, 1.0, 12.0]).text() == "p50 1.00 s, p99 12.00 s (max 12.00 s, n=4)"


def test_ratio_and_met() -> None:
    assert ratio(45_000, 450_000) == "0.100×"
    assert ratio(1.0, 0.0) == "" and ratio(float("nan"), 2.0) == ""
    assert (met(True), met(False), met(None)) == ("yes", "no", "")


def test_table_aligns_columns_and_keeps_empty_cells() -> None:
    out = format_table([Row("a", "≥ 1", "2 /s", "0.5×", "yes"), Row("longer figure", measured="x")])
    assert out.splitlines() == [
        "figure         target  measured  ratio  met",
        "-------------------------------------------",
        "a              ≥ 1     2 /s       0.5×  yes",
        "longer figure          x",
    ]


def test_spike_keys_get_their_requests_spread_over_the_minute_and_ten_times_as_many_when_spiking() -> None:
    load = LiveLoad(keys=10, partitions=4, minutes=2)
    load.spike_start = 60_000.0  # live minute 1; key s spikes in minutes 1 + s % 2 and the next one
    assert load.spike_due(59_999.0).count((0, 1)) == SPIKE_PER_MINUTE - 1  # 59.0 s of minute 0: 7 of 8 due
    assert load.spike_due(60_030.0).count((0, SPIKE_FACTOR)) == SPIKE_PER_MINUTE * SPIKE_FACTOR // 2
    assert load.spike_due(60_030.0) == []  # nothing more due at the same instant
    due = load.spike_due(60_059.9)  # 79 of 80 due for key 0; 7 of 8 for key 1 (4 sent at 30 s)
    assert due.count((0, SPIKE_FACTOR)) == 39 and due.count((1, 1)) == 3
    # minute 60_060: both spike (key 0's second minute, key 1's first); minute 60_120: key 1 only
    assert load.spike_due(60_090.0).count((0, SPIKE_FACTOR)) == 40
    due = load.spike_due(60_150.0)
    assert due.count((1, SPIKE_FACTOR)) == 40 and due.count((0, 1)) == 4 and due.count((0, SPIKE_FACTOR)) == 0
    assert load.spike_due(60_210.0).count((1, 1)) == 4  # minute 60_180: nobody spikes


def test_bucket_samples_time_each_bucket_of_the_measured_minutes_from_end_plus_lateness() -> None:
    from datetime import datetime, timezone

    import orjson

    from bench.latency import bucket_samples
    from schemas.bucket import Bucket, dump_batch

    m0 = datetime(2026, 12, 2, 20, 34, tzinfo=timezone.utc)
    buckets = [Bucket(key="team=a|feature=*", start=m0, seconds=60, requests=3),
               Bucket(key="team=a|feature=*", start=m0.replace(minute=35), seconds=60, requests=1),
               Bucket(key="team=a|feature=*", start=m0.replace(minute=33), seconds=60, requests=1, late=True)]
    doc = orjson.loads(dump_batch("team=a|feature=*", 4, buckets))
    emitted = m0.timestamp() + 60 + 60 + 2.5  # 2.5 s after 20:34 became closable (20:36:00)
    measured = {m0.timestamp(), m0.timestamp() - 60}  # 20:34 and 20:33 (whose only bucket here is late)
    assert bucket_samples(doc, emitted, measured, lateness=60) == [("team=a|feature=*", 2.5)]


def test_alert_latencies_read_created_at_of_the_firing_alerts_of_the_measured_minutes(tmp_path) -> None:
    import time
    from datetime import datetime, timezone

    from bench.latency import alert_latencies
    from schemas.alert import Alert
    from sinks.store import AlertStore

    def alert(minute: int, status: str = "firing") -> Alert:
        start = datetime.fromtimestamp(minute * 60, tz=timezone.utc)
        end = datetime.fromtimestamp(minute * 60 + 60, tz=timezone.utc)
        return Alert(series_key=f"k{minute}", metric="spend", detector="d", score=1.0, observed=2.0, baseline=1.0,
                     expected_low=0.5, expected_high=1.5, window_start=start, window_end=end, started_at=start,
                     status=status)  # type: ignore[arg-type]

    now_minute = int(time.time() // 60)
    store = AlertStore(f"sqlite:///{tmp_path / 'a.db'}")
    before = time.time()
    for a in (alert(now_minute - 3), alert(now_minute - 2), alert(now_minute - 9)):
        store.save_alert(a)
    after = time.time()
    store.close()
    got = sorted(alert_latencies(tmp_path / "a.db", {now_minute * 60.0 - 180, now_minute * 60.0 - 120}, 60))
    # minute m closable at (m + 1) * 60 + 60; minute now-9 is not measured
    closable = [now_minute * 60.0, now_minute * 60.0 - 60]  # sorted latencies: the later minute first
    assert len(got) == 2
    for g, c in zip(got, closable):
        assert before - c - 0.01 <= g <= after - c + 0.01

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

"""GpuTracker bounds the GPUs it tracks per allocation: one envelope of 20k distinct GPU ids is linear work."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from detectors.gpu_tracker import MAX_GPUS_PER_ALLOCATION, GpuTracker

T0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)


class CountingDict(dict):
    """Counts the entries its callers walk (items / values / iteration), the tracker's per-sample work."""

    walked = 0

    def items(self):  # type: ignore[override]
        CountingDict.walked += len(self)
        return super().items()

    def values(self):  # type: ignore[override]
        CountingDict.walked += len(self)
        return super().values()


def test_per_sample_work_is_bounded_by_the_cap_not_by_the_gpus_seen() -> None:
    tr = GpuTracker("ns/pod-0", "job")
    tr.gpus, tr.util = CountingDict(), CountingDict()
    CountingDict.walked = 0
    n = 3000
    for i in range(n):
        tr.observe(T0, f"GPU-{i:05d}", 0.5, 0.01, 1.0)
    # walking every GPU on each sample would be n * (n + 1) / 2 * 3 = 13.5 M entries
    assert CountingDict.walked <= 3 * MAX_GPUS_PER_ALLOCATION * n
    assert len(tr.gpus) == MAX_GPUS_PER_ALLOCATION and tr.refused_samples == n - MAX_GPUS_PER_ALLOCATION


@pytest.mark.timeout(60)
def test_one_envelope_of_20k_distinct_gpu_ids_is_processed_quickly() -> None:
    tr = GpuTracker("ns/pod-0", "job")
    start = time.perf_counter()
    for i in range(20_000):
        tr.observe(T0 + timedelta(milliseconds=i), f"GPU-{i}", 0.5, 0.01, 1.0)
    assert time.perf_counter() - start < 5.0  # was ~1 minute (O(n^2): every GPU walked per sample)
    assert len(tr.gpus) == 64 and tr.refused_samples == 20_000 - 64


def test_a_gpu_beyond_the_cap_is_counted_and_ignored_until_one_is_gone() -> None:
    tr = GpuTracker("ns/pod-0", "job", max_gpus=2)
    tr.observe(T0, "GPU-a", 0.9, 0.01, 1.0)
    tr.observe(T0, "GPU-b", 0.9, 0.01, 1.0)
    assert tr.observe(T0, "GPU-c", 0.0, 0.01, 1.0) == [] and tr.refused_samples == 1
    assert sorted(tr.gpus) == ["GPU-a", "GPU-b"] and tr.serving_status().util_now == 0.9  # c's 0.0 not counted
    later = T0 + timedelta(minutes=6)  # a and b not sampled for 6 min: gone, so c is tracked
    tr.observe(later, "GPU-c", 0.1, 0.01, 1.0)
    assert list(tr.gpus) == ["GPU-c"] and tr.refused_samples == 1
    assert tr.observe(later, "GPU-a", 0.3, 0.01, 1.0) is not None and len(tr.gpus) == 2

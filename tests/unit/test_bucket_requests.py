"""Failed calls and response-cache hits are counted apart, outside cost per inference (issue 9)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from schemas.bucket import METRICS, Bucket

T = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)


def test_failures_and_cache_hits_stay_out_of_the_cost_per_inference_denominator() -> None:
    # 10 calls: 6 answered by the provider ($0.60 together), 3 failed ($0), 1 cache hit ($0)
    b = Bucket(key="k", start=T, seconds=60, spend_usd=0.60, requests=10, failed_requests=3, cache_hit_requests=1,
               input_tokens=600, output_tokens=300)
    assert b.metric("cost_per_inference") == pytest.approx(0.10)  # 0.60 / 6, not 0.60 / 10
    assert b.metric("tokens_per_request") == pytest.approx(150.0)  # 900 / 6
    assert b.metric("failure_rate") == pytest.approx(0.3)


def test_a_minute_of_only_failures_has_no_cost_per_inference_but_a_failure_rate() -> None:
    b = Bucket(key="k", start=T, seconds=60, requests=5, failed_requests=5)
    assert b.metric("cost_per_inference") is None and b.metric("tokens_per_request") is None
    assert b.metric("failure_rate") == 1.0
    assert b.metric("failure_rate", min_requests=6) is None


def test_failure_rate_is_a_metric() -> None:
    assert "failure_rate" in METRICS
    assert Bucket(key="k", start=T, seconds=60, gpu_seconds=60.0).metric("failure_rate") is None


def test_failed_and_cache_hit_counts_reach_the_bucket() -> None:
    from schemas.cost import CostRecord
    from streams.state.windows import window_record

    recs = [CostRecord(ts=T, source="llm", cost_usd=0.1, requests=1),
            CostRecord(ts=T, source="llm", requests=1, failed_requests=1),
            CostRecord(ts=T, source="llm", requests=1, cache_hit_requests=1)]
    rows = [window_record(r) for r in recs]
    assert rows[1]["failed_requests"] == 1 and rows[2]["cache_hit_requests"] == 1
    try:  # the lead is replacing OpenBuckets with KeyWindows; either closes buckets from these rows
        from streams.state.windows import KeyWindows as Windows
    except ImportError:
        from streams.state.windows import OpenBuckets as Windows
    w = Windows(key="k", seconds=60)
    for row in rows:
        w.add(row)
    (b,) = w.close_all()
    assert (b.requests, b.failed_requests, b.cache_hit_requests) == (3, 1, 1)
    assert b.metric("cost_per_inference") == pytest.approx(0.1)

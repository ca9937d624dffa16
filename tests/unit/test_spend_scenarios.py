"""AI-spend scenario generator: deterministic, labelled, realistic shape; the evaluation counts correctly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bench import spend_scenarios as sp
from detectors.monitor import SeriesMonitor
from detectors.registry import make_detector


@pytest.fixture(scope="module")
def series() -> list[sp.SpendSeries]:
    return sp.generate(seed=3, per_kind=1, weeks=2)


def test_deterministic_and_complete(series: list[sp.SpendSeries]) -> None:
    again = sp.generate(seed=3, per_kind=1, weeks=2)
    assert [s.values[:50] for s in series] == [s.values[:50] for s in again]
    assert sp.generate(seed=4, per_kind=1, weeks=2)[0].values[:50] != series[0].values[:50]
    assert {s.incidents[0].kind for s in series} == set(sp.KINDS)
    for s in series:
        inc = s.incidents[0]
        assert s.burn_in_end < inc.start < inc.end
        assert s.timestamps == sorted(s.timestamps)


def test_weekly_seasonality_and_incident_effect(series: list[sp.SpendSeries]) -> None:
    storm = next(s for s in series if s.incidents[0].kind == "retry_storm")
    by_t = dict(zip(storm.timestamps, storm.values))
    weekday = [v for t, v in by_t.items() if t.weekday() < 5 and 11 <= t.hour < 16 and t < storm.incidents[0].start]
    weekend = [v for t, v in by_t.items() if t.weekday() >= 5 and 11 <= t.hour < 16]
    assert sum(weekday) / len(weekday) > 1.5 * sum(weekend) / len(weekend)
    inc = storm.incidents[0]
    during = [v for t, v in by_t.items() if inc.start <= t < inc.end]
    before = [v for t, v in by_t.items() if inc.start - timedelta(hours=1) <= t < inc.start]
    assert sum(during) / len(during) > 3 * sum(before) / len(before)


def test_sparse_key_has_few_buckets(series: list[sp.SpendSeries]) -> None:
    sparse = sp.generate(seed=3, per_kind=2, weeks=2)
    leak = [s for s in sparse if s.incidents[0].kind == "leaked_key"][1]
    inc = leak.incidents[0]
    outside = [t for t in leak.timestamps if not inc.start <= t <= inc.end]
    assert len(outside) <= 3 * 14


def test_evaluation_counts_detections_and_false_alerts(series: list[sp.SpendSeries]) -> None:
    storm = next(s for s in series if s.incidents[0].kind == "retry_storm")
    out = sp.evaluate_series(storm, lambda: SeriesMonitor(make_detector(), threshold=0.9999))
    assert out.detected and out.delay_min is not None and out.delay_min <= 5
    assert out.weeks == pytest.approx(1.0, abs=0.01)

    class Never:
        def observe(self, t: object, x: float) -> None:
            return None

    none = sp.evaluate_series(storm, Never)
    assert not none.detected and none.false_alerts == 0 and none.delay_min is None

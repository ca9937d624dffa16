"""SeriesMonitor incident logic with a scripted detector (scores known in advance)."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone

from detectors.base import Expected
from detectors.monitor import SeriesMonitor

T0 = datetime(2026, 11, 20, tzinfo=timezone.utc)


class Scripted:
    """Returns the next scripted score; baseline 1.0. Picklable, records what it learnt."""

    name = "scripted"
    robust = True

    def __init__(self, scores: list[float]) -> None:
        self.scores = list(scores)
        self.i = 0
        self.learnt: list[float] = []

    def score_one(self, x: float, t: datetime) -> float:
        return self.scores[self.i]

    def learn_one(self, x: float, t: datetime) -> None:
        self.learnt.append(x)

    def expected(self) -> Expected:
        return Expected(1.0, 0.5, 1.5)

    @property
    def warmed_up(self) -> bool:
        return True


def run(scores: list[float], values: list[float] | None = None, **kw: object) -> list[tuple[int, str, int]]:
    det = Scripted(scores)
    m = SeriesMonitor(det, threshold=0.9999, **kw)  # type: ignore[arg-type]
    out = []
    for i, s in enumerate(scores):
        det.i = i
        ev = m.observe(T0 + timedelta(minutes=i), (values or [2.0] * len(scores))[i])
        if ev is not None:
            out.append((i, ev.status, int((ev.started_at - T0).total_seconds() // 60)))
    return out


HIGH, INSTANT, LOW = 0.99995, 0.9999995, 0.5


def test_two_of_three_opens_with_first_as_start() -> None:
    assert run([LOW, HIGH, LOW, HIGH, LOW] + [LOW] * 6, quiet_buckets=5) == [(3, "firing", 1), (8, "resolved", 1)]


def test_single_moderate_bucket_does_not_open() -> None:
    assert run([LOW, HIGH, LOW, LOW, LOW, HIGH, LOW, LOW]) == []


def test_instant_score_opens_at_once() -> None:
    assert run([LOW, INSTANT, LOW, LOW], quiet_buckets=2) == [(1, "firing", 1), (3, "resolved", 1)]


def test_confirm_one_is_the_old_behaviour() -> None:
    assert run([LOW, HIGH, LOW], confirm=1, quiet_buckets=1) == [(1, "firing", 1), (2, "resolved", 1)]


def test_drops_open_only_when_two_sided() -> None:
    scores, drops = [LOW, INSTANT, INSTANT, LOW], [1.0, 0.1, 0.1, 1.0]
    assert run(scores, drops) == []
    assert run(scores, drops, two_sided=True, quiet_buckets=1) == [(1, "firing", 1), (3, "resolved", 1)]


def test_robust_detector_learns_anomalies_and_monitor_pickles() -> None:
    det = Scripted([INSTANT, INSTANT])
    m = SeriesMonitor(det)
    m.observe(T0, 9.0)
    det.i = 1
    m.observe(T0 + timedelta(minutes=1), 9.0)
    assert det.learnt == [9.0, 9.0]
    clone = pickle.loads(pickle.dumps(m))
    assert clone.firing and clone.started_at == T0 and clone.last_score == INSTANT


NEAR = 0.9995  # below the threshold, above the resolve level (1 - 10 x 1e-4 = 0.999)


def test_hovering_near_the_threshold_keeps_the_incident_open() -> None:
    """Hysteresis: buckets between the resolve level and the threshold are not quiet, so a
    level shift being adopted does not resolve and re-open (two alerts for one incident)."""
    scores = [INSTANT] + [NEAR] * 8 + [HIGH, HIGH] + [LOW] * 5
    assert run(scores, quiet_buckets=5) == [(0, "firing", 0), (15, "resolved", 0)]
    # without hysteresis the same scores resolve at 5 and open a second incident at 10
    assert run(scores, quiet_buckets=5, resolve_factor=1.0) == [
        (0, "firing", 0), (5, "resolved", 0), (10, "firing", 9), (15, "resolved", 9)]


def test_a_value_below_baseline_is_quiet_even_with_a_high_score() -> None:
    scores = [INSTANT] + [NEAR] * 5
    values = [2.0] + [0.5] * 5  # dropped under the baseline: no longer material
    assert run(scores, values, quiet_buckets=5, min_ratio=1.5) == [(0, "firing", 0), (5, "resolved", 0)]


def test_a_low_threshold_still_resolves() -> None:
    """threshold 0.9 x resolve_factor 10 would put the resolve level at 0: it is floored at half the threshold."""
    det = Scripted([0.99] * 3 + [0.3] * 5)
    m = SeriesMonitor(det, threshold=0.9, two_sided=True)
    out = []
    for i in range(8):
        det.i = i
        ev = m.observe(T0 + timedelta(minutes=i), 2.0)
        if ev is not None:
            out.append((i, ev.status))
    assert out == [(1, "firing"), (7, "resolved")]


def test_a_series_that_drops_to_a_constant_zero_never_alerts() -> None:
    """A held-out replay: unpriced_share, 0 after its first hours, raised alerts observed 0 against
    baseline "0": the fitted baseline had gone slightly below 0 after the drop, and 0 >= 1.5 x (-0.05)."""
    from datetime import datetime, timedelta, timezone

    from detectors.monitor import SeriesMonitor
    from detectors.registry import DETECTORS, make_detector

    t0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
    for name in DETECTORS:
        m = SeriesMonitor(make_detector(name), threshold=0.9999, min_ratio=1.5)
        values = [0.3] * 300 + [0.0] * (8 * 1440)
        fired = [o for i, v in enumerate(values) if (o := m.observe(t0 + timedelta(minutes=i), v))]
        assert not [o for o in fired if o.status == "firing" and o.observed <= 0.0], name

"""NAB scoring: null = 0, perfect = 100, and a hand-computed case."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from bench import nab

T0 = datetime(2015, 1, 1)


def small_file(n: int = 100, windows: tuple[tuple[int, int], ...] = ((40, 49), (80, 89))) -> nab.DataFile:
    ts = [T0 + timedelta(minutes=5 * i) for i in range(n)]
    return nab.DataFile("cat/f.csv", ts, [0.0] * n, [(ts[a], ts[b]) for a, b in windows])


def test_null_is_zero_and_perfect_is_hundred() -> None:
    files = [small_file(), small_file(200, ((100, 119),))]
    files[1] = nab.DataFile("cat/g.csv", files[1].timestamps, files[1].values, files[1].windows)
    for p in nab.PROFILES.values():
        null = nab.collect(files, [[0.0] * len(f.values) for f in files]).score(p)
        perfect = nab.collect(files, [nab.perfect_scores(f) for f in files]).score(p)
        assert null.normalized == pytest.approx(0.0)
        assert perfect.normalized == pytest.approx(100.0)
        assert null.null == -p.fn * 3


def test_hand_computed_case() -> None:
    """One detection halfway into window 1 (index 45 of [40, 49]), one FP 5 rows after window 2."""
    f = small_file()
    scores = [0.0] * 100
    scores[45], scores[94] = 0.9, 0.9
    p = nab.PROFILES["standard"]
    r = nab.collect([f], [scores]).score(p)
    # window 1: position -(49 - 45 + 1) / 10 = -0.5 -> S = 2 / (1 + e^-2.5) - 1, scaled by 1 / S(-1)
    s = lambda x: 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0  # noqa: E731
    tp = s(-0.5) / s(-1.0)
    # FP at 94: 5 rows after the right edge (89) of a width-10 window -> S(5 / 9) * fp weight
    fp = 0.11 * s(5 / 9)
    fn = -1.0  # window 2 missed
    assert r.threshold == 0.9
    assert r.raw == pytest.approx(tp + fp + fn)
    assert r.normalized == pytest.approx(100 * (tp + fp + fn + 2) / (2 + 2))


def test_probationary_rows_are_ignored() -> None:
    f = small_file()
    assert nab.probationary_length(100) == 15
    scores = [0.0] * 100
    scores[3] = 1.0  # inside the probationary period: not an FP
    r = nab.collect([f], [scores]).score(nab.PROFILES["reward_low_FP_rate"])
    assert r.raw == pytest.approx(-2.0)


def test_fp_before_first_window_costs_full_weight() -> None:
    f = small_file()
    scores = [0.0] * 100
    scores[20] = 1.0
    scores[40] = 0.5
    r = nab.collect([f], [scores]).score(nab.PROFILES["reward_low_FP_rate"])
    # threshold 0.5 catches window 1 at its first row (+1) and the FP (-0.22); miss window 2 (-1)
    assert r.threshold == 0.5
    assert r.raw == pytest.approx(1.0 - 0.22 - 1.0)


def test_only_earliest_detection_in_window_counts() -> None:
    f = small_file()
    scores = [0.0] * 100
    for i in range(40, 50):
        scores[i] = 0.7
    for i in range(80, 90):
        scores[i] = 0.7
    r = nab.collect([f], [scores]).score(nab.PROFILES["standard"])
    assert r.normalized == pytest.approx(100.0)


def test_detector_path_runs_registered_detector() -> None:
    f = small_file()
    vals = [1.0 + 0.01 * (i % 7) for i in range(100)]
    vals[60] = 50.0
    g = nab.DataFile(f.name, f.timestamps, vals, f.windows)
    raw = nab.detector_scores("seasonal_z_both", g)
    mon = nab.detector_scores("seasonal_z_both", g, monitor=nab.NAB_MONITOR)
    assert len(raw) == len(mon) == 100
    assert raw[60] == max(raw) and mon[60] == max(mon)
    assert all(s == 0.0 for s in raw[:20])


def test_bench_doctests() -> None:
    """bench/ is outside pytest's doctest collection (addopts ignore it); run its doctests here."""
    import doctest

    from bench import spend_scenarios

    for mod in (nab, spend_scenarios):
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0, mod.__name__

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from detectors.calibration import score_from_p, tail_score


def test_gaussian_tail_values() -> None:
    assert abs(tail_score(3.0) - (1 - 0.0013499)) < 1e-6
    assert abs(tail_score(3.0, two_sided=True) - (1 - 0.0026998)) < 1e-6
    assert tail_score(-3.0) == 0.0


@given(st.floats(0.0, 200.0), st.floats(0.0, 200.0))
def test_monotone_and_bounded(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert 0.0 <= tail_score(lo) <= tail_score(hi) < 1.0


@given(st.floats(0.5, 30.0))
def test_score_from_p_matches_tail(z: float) -> None:
    p = 0.5 * math.erfc(z / math.sqrt(2))
    if p > 1e-300:
        assert abs(score_from_p(p) - tail_score(z)) < 1e-9

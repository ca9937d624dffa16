"""Turn a standardised deviation into a calibrated score in [0, 1].

``score = 1 - p`` where ``p`` is the Gaussian tail probability of ``z``, so every
detector's 0.9999 means the same thing (p = 1e-4, about 3.7 sd one-sided). Beyond
p = 1e-6 doubles cannot tell ``1 - p`` apart, so the score keeps rising slowly with
``-log10 p`` instead of saturating at exactly 1.0: the ordering of extreme values is kept
(threshold sweeps need untied scores), and ``score >= 0.999999`` still means p <= 1e-6.

>>> round(tail_score(0.0), 3), round(tail_score(3.719), 6)
(0.0, 0.9999)
>>> tail_score(-5.0), tail_score(-5.0, two_sided=True) == tail_score(5.0, two_sided=True)
(0.0, True)
>>> 0.999999 <= tail_score(6.0) < tail_score(12.0) < tail_score(40.0) < 1.0
True
>>> round(p_value(tail_score(2.0)), 4)
0.0228
"""

from __future__ import annotations

import math

_SQRT2 = math.sqrt(2.0)
_LN10 = math.log(10.0)
P_FLOOR = 1e-6
_L_FLOOR = 6.0  # -log10(P_FLOOR)


def log10_tail(z: float) -> float:
    """``-log10`` of the one-sided Gaussian tail ``P(Z > z)``, accurate far into the tail."""
    if z < 37.0:  # erfc is exact down to ~1e-300
        return -math.log10(max(0.5 * math.erfc(z / _SQRT2), 1e-300))
    # Mills-ratio asymptote: log P ~ -z^2/2 - log(z sqrt(2 pi))
    return (0.5 * z * z + math.log(z * math.sqrt(2.0 * math.pi))) / _LN10


def tail_score(z: float, two_sided: bool = False) -> float:
    """Calibrated score of a deviation ``z`` (in standard deviations); 0 for ``z <= 0`` one-sided."""
    if two_sided:
        z = abs(z)
        if z <= 0.0:
            return 0.0
        p = math.erfc(z / _SQRT2)  # two-sided tail
        if p >= P_FLOOR:
            return 1.0 - p
        lp = log10_tail(z) - math.log10(2.0)
    else:
        if z <= 0.0:
            return 0.0
        p = 0.5 * math.erfc(z / _SQRT2)
        if p >= P_FLOOR:
            return 1.0 - p
        lp = log10_tail(z)
    return 1.0 - P_FLOOR * _L_FLOOR / max(lp, _L_FLOOR)


def score_from_p(p: float) -> float:
    """Calibrated score of a tail probability ``p`` (same compression beyond 1e-6)."""
    if p >= P_FLOOR:
        return 1.0 - p
    return 1.0 - P_FLOOR * _L_FLOOR / max(-math.log10(max(p, 1e-300)), _L_FLOOR)


def p_value(score: float) -> float:
    """Inverse of :func:`tail_score` for scores below 1 - 1e-6 (the tail probability)."""
    return 1.0 - score

"""river's ``anomaly.GaussianScorer`` over a sliding window (NAB's "windowed Gaussian" reference).

As shipped, river's score ``2 |CDF(y) - 0.5|`` saturates at exactly 1.0 (and a flat window
scores every new value 1.0), so here the window's mean and sd (river ``proba.Gaussian``
inside the scorer) give a z with an sd floor relative to the mean, scored with the shared
calibrated tail. Two-sided. The window (``window_size`` floats) dominates the state size.

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 11, 20, tzinfo=timezone.utc)
>>> d = RiverGaussian(window_size=50, grace_period=20)
>>> for i in range(60):
...     d.learn_one(10.0 + (i % 5) * 0.1, t)
>>> d.warmed_up, d.score_one(10.2, t) < 0.9, d.score_one(14.0, t) > 0.9999
(True, True, True)
"""

from __future__ import annotations

from datetime import datetime

from river import anomaly

from detectors.base import Expected
from detectors.calibration import tail_score


class RiverGaussian:
    name = "river_gaussian"

    def __init__(self, window_size: int = 96, grace_period: int = 30, min_rel_sd: float = 0.01) -> None:
        self.scorer = anomaly.GaussianScorer(window_size=window_size, grace_period=grace_period)
        self.grace_period = grace_period
        self.min_rel_sd = min_rel_sd

    def _moments(self) -> tuple[float, float]:
        g = self.scorer.gaussian
        mu, sd = g.mu, g.sigma
        if isinstance(sd, complex) or sd != sd:  # rounding can make the window variance slightly negative
            sd = 0.0
        return mu, max(sd, self.min_rel_sd * abs(mu), 1e-12)

    @property
    def warmed_up(self) -> bool:
        return self.scorer.gaussian.n_samples >= self.grace_period

    def score_one(self, x: float, t: datetime) -> float:
        if not self.warmed_up:
            return 0.0
        mu, sd = self._moments()
        return tail_score((x - mu) / sd, two_sided=True)

    def learn_one(self, x: float, t: datetime) -> None:
        self.scorer.learn_one(None, x)

    def expected(self) -> Expected:
        mu, sd = self._moments()
        return Expected(mu, mu - 3 * sd, mu + 3 * sd)

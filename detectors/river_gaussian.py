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
from detectors.statecheck import NUM, Spec, fields, floats

#: largest window a stored state may declare (the window's floats dominate the state)
MAX_WINDOW = 10_000


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

    # -- table state (streams.state.codec): the scorer's window and running moments as numbers ----
    STATE_TAG = "river_gaussian"
    STATE_VERSION = 1
    _STATE = Spec({"window_size": int, "grace_period": int, "min_rel_sd": NUM, "window": list, "n": NUM, "mean": NUM,
                   "s": NUM})

    def to_state(self) -> dict[str, object]:
        rolling = self.scorer.gaussian
        var = rolling.obj._var
        if self.scorer.window_size is None or var.ddof != 1:
            raise TypeError("RiverGaussian state holds a windowed scorer only")
        return {"window_size": self.scorer.window_size, "grace_period": self.grace_period,
                "min_rel_sd": self.min_rel_sd, "window": [args[0] for args, _ in rolling.window],
                "n": var.mean.n, "mean": var.mean._mean, "s": var._S}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> "RiverGaussian":
        fields(state, cls._STATE)
        size = state["window_size"]
        if not 1 <= size <= MAX_WINDOW:  # type: ignore[operator]
            raise ValueError(f"window_size must be 1..{MAX_WINDOW}")
        window = floats(state["window"], "window", max_len=size)  # type: ignore[arg-type]
        d = cls.__new__(cls)
        d.grace_period, d.min_rel_sd = state["grace_period"], state["min_rel_sd"]
        d.scorer = anomaly.GaussianScorer(window_size=size, grace_period=state["grace_period"])
        rolling = d.scorer.gaussian
        rolling.window.extend(((x,), {}) for x in window)
        var = rolling.obj._var
        var.mean.n, var.mean._mean, var._S = state["n"], state["mean"], state["s"]
        return d


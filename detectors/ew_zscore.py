"""Exponentially weighted z-score on the log of a positive series (spend, cost per call).

Upward-only: a cost that falls is not an incident. The score is the one-sided normal
tail mapped to [0, 1], so 0.999 means "about 3.1 standard deviations above normal".

>>> from datetime import datetime, timedelta, timezone
>>> import random
>>> rng, t0 = random.Random(1), datetime(2026, 11, 20, tzinfo=timezone.utc)
>>> d = EwZScore()
>>> for i in range(120):
...     d.learn_one(0.010 * (1 + 0.05 * rng.gauss(0, 1)), t0 + timedelta(minutes=i))
>>> d.score_one(0.0102, t0) < 0.9, d.score_one(0.05, t0) > 0.9999
(True, True)
"""

from __future__ import annotations

import math
from datetime import datetime

from detectors.base import Expected
from detectors.statecheck import NUM, Spec, fields

_SQRT2 = math.sqrt(2.0)


class EwZScore:
    name = "ew_zscore"

    def __init__(self, fading_factor: float = 0.05, warmup: int = 30, min_rel_sd: float = 0.05) -> None:
        self.fading_factor = fading_factor
        self.warmup = warmup
        self.min_rel_sd = min_rel_sd  # floor on the sd of log(x): a flat series is not infinitely sensitive
        # river's stats.EWMean / stats.EWVar arithmetic, bit for bit (tests check it against river), kept
        # as two floats so the table state is plain numbers: m = EW mean of log x, sq = EW mean of its square
        self.m = 0.0
        self.sq = 0.0
        self.n = 0

    @staticmethod
    def _log(x: float) -> float:
        return math.log(max(x, 1e-12))

    def _sd(self) -> float:
        return max(math.sqrt(max(self.sq - self.m * self.m, 0.0)), self.min_rel_sd)

    @property
    def warmed_up(self) -> bool:
        return self.n >= self.warmup

    def score_one(self, x: float, t: datetime) -> float:
        if not self.warmed_up:
            return 0.0
        z = (self._log(x) - self.m) / self._sd()
        if z <= 0:
            return 0.0
        return math.erf(z / _SQRT2)  # = 2 * Phi(z) - 1

    def learn_one(self, x: float, t: datetime) -> None:
        lx = self._log(x)
        if self.n == 0:
            self.m, self.sq = lx, lx * lx
        else:
            a, b = self.fading_factor, 1.0 - self.fading_factor
            self.m = a * lx + b * self.m
            self.sq = a * (lx * lx) + b * self.sq
        self.n += 1

    def expected(self) -> Expected:
        m, sd = self.m, self._sd()
        return Expected(math.exp(m), math.exp(m - 3 * sd), math.exp(m + 3 * sd))

    # -- table state (streams.state.codec) ---------------------------------------------------
    STATE_TAG = "ew_zscore"
    STATE_VERSION = 1
    _STATE = Spec({"fading_factor": NUM, "warmup": int, "min_rel_sd": NUM, "m": NUM, "sq": NUM, "n": int})

    def to_state(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self._STATE.order}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> "EwZScore":
        fields(state, cls._STATE)
        d = cls.__new__(cls)
        d.__dict__.update(state)
        return d

"""Seasonal baseline + robust residual z + anomaly likelihood (the default detector).

Model (all exponentially weighted, O(1) per update, ~1 KB pickled):

* a level (river ``stats.EWMean``) and additive seasonal offsets per hour of day and
  per hour of week (float32 arrays indexed by the bucket's timestamp), so a Monday
  09:00 surge that happens every Monday is part of the baseline;
* the residual ``e = y - level - offsets`` is standardised by an EW mean absolute
  deviation (robust, with a floor relative to the level so a flat series is not
  infinitely sensitive): ``z = e / (1.2533 * mad)``;
* two scores are combined: the point tail ``P(Z > z)`` and an *anomaly likelihood*
  (Numenta style): the short-horizon mean of ``|z|`` against its long-horizon
  distribution, which catches a run of moderately odd values that no single point shows;
* the score is the calibrated tail (:mod:`detectors.calibration`) of the stronger one.

Values are taken in log space when the series is positive (spend, cost per call:
multiplicative seasonality), raw otherwise (``transform="auto"`` decides during
warm-up; NAB data can be zero or negative).

>>> from datetime import datetime, timedelta, timezone
>>> import random
>>> rng, t0 = random.Random(3), datetime(2026, 11, 16, tzinfo=timezone.utc)
>>> d = SeasonalLikelihood()
>>> for i in range(400):
...     t = t0 + timedelta(minutes=i)
...     x = 10 + rng.gauss(0, 0.5)
...     d.learn_one(x, t)
>>> t = t0 + timedelta(minutes=400)
>>> d.warmed_up, d.score_one(10.2, t) < 0.99, d.score_one(30.0, t) > 0.9999
(True, True, True)
"""

from __future__ import annotations

import math
from array import array
from datetime import datetime

from river import stats

from detectors.base import Expected
from detectors.calibration import tail_score

_MAD_TO_SD = 1.2533  # sd of a normal / its mean absolute deviation
_Z99 = 2.5758  # two-sided 99 % point of a standard normal


class SeasonalLikelihood:
    name = "seasonal_likelihood"
    robust = True  # learning clips residuals, so SeriesMonitor feeds it anomalies too

    def __init__(self, level_alpha: float = 0.05, season_alpha: float = 0.05, scale_alpha: float = 0.02,
                 short_alpha: float = 0.3, long_alpha: float = 0.005, warmup: int = 30,
                 direction: str = "up", transform: str = "auto", seasonal: bool = True,
                 min_rel_scale: float = 0.01, likelihood: bool = True, z_cap: float = 8.0, clip: float = 3.0,
                 point: bool = True, lik_on_short: bool = False, lik_sd_floor: float = 0.05,
                 scale_clip: float = 3.0, rms: bool = False, tail_q: float = 0.0) -> None:
        self.level_alpha = level_alpha
        self.season_alpha = season_alpha
        self.scale_alpha = scale_alpha
        self.short_alpha = short_alpha
        self.long_alpha = long_alpha
        self.warmup = warmup
        self.two_sided = direction == "both"
        self.transform = transform
        self.seasonal = seasonal
        self.min_rel_scale = min_rel_scale
        self.likelihood = likelihood
        self.z_cap = z_cap
        self.clip = clip
        self.scale_clip = scale_clip
        self.rms = rms
        self.tail_q = tail_q
        self.q99 = _Z99
        self.point = point
        self.lik_on_short = lik_on_short
        self.lik_sd_floor = lik_sd_floor
        self.level = stats.EWMean(fading_factor=level_alpha)
        self.mad = 0.0
        self.short = 0.0
        self.long_mean = 0.0
        self.long_var = 0.0
        self.daily = array("f", bytes(4 * 24))
        self.weekly = array("f", bytes(4 * 168))
        self.n = 0
        self.first_t: datetime | None = None
        self.use_log = False

    # -- helpers ---------------------------------------------------------------------
    def _y(self, x: float) -> float:
        if self.use_log:
            return math.log(x) if x > 1e-12 else math.log(1e-12)
        return x

    def _slots(self, t: datetime) -> tuple[int, int]:
        h = t.hour
        return h, t.weekday() * 24 + h

    def _week_ready(self, t: datetime) -> bool:
        return self.first_t is not None and (t - self.first_t).days >= 7

    def _predict(self, t: datetime) -> float:
        p = self.level.get()
        if self.seasonal and self.n >= self.warmup:
            h, w = self._slots(t)
            p += self.daily[h]
            if self._week_ready(t):
                p += self.weekly[w]
        return p

    def _scale(self) -> float:
        lvl = abs(self.level.get())
        floor = self.min_rel_scale * (1.0 if self.use_log else max(lvl, 1e-9))
        return max(_MAD_TO_SD * self.mad, floor, 1e-12)

    def _z(self, x: float, t: datetime) -> float:
        z = (self._y(x) - self._predict(t)) / self._scale()
        if self.tail_q > 0 and self.q99 > _Z99:
            z *= _Z99 / self.q99  # heavy-tailed residuals: shrink z so 1% of buckets reach z99
        return z

    # -- protocol --------------------------------------------------------------------
    @property
    def warmed_up(self) -> bool:
        return self.n >= self.warmup

    def score_one(self, x: float, t: datetime) -> float:
        if not self.warmed_up:
            return 0.0
        z = self._z(x, t)
        s = tail_score(z, self.two_sided) if self.point else 0.0
        if self.likelihood:
            a = min(abs(z) if self.two_sided else max(z, 0.0), self.z_cap)
            short = self.short + self.short_alpha * (a - self.short)
            sd = math.sqrt(self.long_var) + self.lik_sd_floor
            s = max(s, tail_score((short - self.long_mean) / sd))
        return s

    def learn_one(self, x: float, t: datetime) -> None:
        if self.n < self.warmup:
            if self.transform == "log" or (self.transform == "auto" and self.n == 0 and x > 0):
                self.use_log = True
            if self.transform == "auto" and x <= 0:
                self.use_log = False
        if self.first_t is None:
            self.first_t = t
        y = self._y(x)
        warmed = self.n >= self.warmup
        pred = self._predict(t)
        e = y - pred
        if warmed:
            scale = self._scale()
            z = e / scale
            a = min(abs(z) if self.two_sided else max(z, 0.0), self.z_cap)
            self.short += self.short_alpha * (a - self.short)
            d = (self.short if self.lik_on_short else a) - self.long_mean
            self.long_mean += self.long_alpha * d
            self.long_var = (1 - self.long_alpha) * (self.long_var + self.long_alpha * d * d)
            if self.tail_q > 0:
                raw = abs(e) / scale  # stochastic-approximation EW 99th percentile of |z|
                self.q99 += self.tail_q * max(self.q99, 0.5) * ((0.99 if raw > self.q99 else 0.0) - (0.01 if raw <= self.q99 else 0.0)) * 1.0
            lim = self.scale_clip * scale
            es = lim if e > lim else (-lim if e < -lim else e)
            if self.rms:
                self.mad = math.sqrt(self.mad * self.mad + self.scale_alpha * (es * es / 1.5708 - self.mad * self.mad))
            else:
                self.mad += self.scale_alpha * (abs(es) - self.mad)
            lim = self.clip * scale  # robust learning: one odd bucket moves the baseline a bounded amount
            e = lim if e > lim else (-lim if e < -lim else e)
        elif self.n > 0:
            self.mad += (abs(e) - self.mad) / (self.n + 1)
        y = pred + e
        if self.seasonal and warmed:
            h, w = self._slots(t)
            base = self.level.get()
            self.daily[h] += self.season_alpha * (y - base - self.daily[h])
            week = self._week_ready(t)
            if (t - self.first_t).days >= 1:
                self.weekly[w] += self.season_alpha * (y - base - self.daily[h] - self.weekly[w])
            y = y - self.daily[h] - (self.weekly[w] if week else 0.0)
        self.level.update(y)
        self.n += 1

    def expected(self) -> Expected:
        base, sd = self.level.get(), self._scale()
        if self.use_log:
            return Expected(math.exp(base), math.exp(base - 3 * sd), math.exp(base + 3 * sd))
        return Expected(base, base - 3 * sd, base + 3 * sd)

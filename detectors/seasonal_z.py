"""Seasonal baseline + robust, tail-calibrated z-score (the default detector).

Model (exponentially weighted, O(1) per update, under 2 KB encoded):

* **baseline** = an EW level over de-seasonalised values plus
  additive offsets per hour of day (24) and per hour of week (168, used once a week
  has been seen), float32 arrays indexed by the bucket's timestamp, so a surge that
  happens every Monday at 09:00 becomes part of the baseline;
* **robust learning**: the residual that updates the baseline is clipped to
  ``clip`` standard deviations, so one spike moves the baseline a bounded amount and a
  lasting level shift is adopted gradually (it alerts once, then becomes normal);
* **scale**: a slow EW root-mean-square of the residual (floored relative to the level,
  so a flat series is not infinitely sensitive);
* **tail calibration**, each tail on its own: EW 0.5 % and 0.05 % quantiles of ``z``
  above and below the baseline (stochastic approximation); when a tail is heavier than
  Gaussian (a right-skewed cost per call at night), ``z`` on that side is shrunk
  (piecewise linearly) so that 0.5 % and 0.05 % of buckets reach the Gaussian one-sided
  99.5 % and 99.95 % points. Scores are then comparable across series:
  :func:`detectors.calibration.tail_score` of the calibrated ``z``;
* **sustained shifts**: the score is the larger of the point tail and the tail of an EW
  mean of (clipped) ``z`` against its learnt null spread (which includes autocorrelation),
  so a moderate but lasting shift (a price change, a prompt growing) is caught in minutes.

``transform="auto"`` chooses log or raw space at the end of warm-up, the Box-Cox way: a
raw-space twin learns alongside, and raw space is kept only when its one-step
differences are clearly tighter than log space's scaled back by the geometric mean
(variance ratio below ``raw_margin``, 0.8: the Gaussian likelihood of the two models,
Jacobian included, with a prior for log space, since a multiplicative series wrongly kept
raw has a skewed upper tail that alerts; near-ties, as for most series with a small
coefficient of variation, stay in log space). Spend, cost per call and tokens per request have
multiplicative seasonality and noise and land in log space (a later zero bucket is then
skipped); additive series (utilisation, temperatures, latency) stay raw, and so does
any series with a zero or negative value in warm-up. Seasonal and scale learning rates
are per minute of event time (``per_minute``), so 5-minute data learns its daily shape
as fast per day as 1-minute data; the step is capped at 5 minutes' worth.
A per-hour-of-day residual scale absorbs noisier nights. ``direction="both"`` (default)
or ``"up"``; in the service a drop never opens an incident anyway, because
``SeriesMonitor`` requires ``observed >= min_ratio x baseline`` (spend that falls is not an
incident), while two-sided scores still serve ``burnguard detect score`` and NAB. Warm-up needs
``min_obs`` observations and either ``warmup`` of them or ``warmup_hours`` of event
time, so a sparse series (a few calls a day) warms up after a few days.

>>> from datetime import datetime, timedelta, timezone
>>> import math, random
>>> rng, t0 = random.Random(3), datetime(2026, 11, 16, tzinfo=timezone.utc)
>>> d = SeasonalZ()
>>> for i in range(300):
...     d.learn_one(10 + rng.gauss(0, 0.5), t0 + timedelta(minutes=i))
>>> t = t0 + timedelta(minutes=300)
>>> d.warmed_up, d.score_one(10.3, t) < 0.99, d.score_one(20.0, t) > 0.9999, d.score_one(2.0, t) > 0.9999
(True, True, True, True)
>>> SeasonalZ(direction="up").score_one(2.0, t)
0.0
>>> mult, add = SeasonalZ(), SeasonalZ()  # transform="auto": log or raw, chosen in warm-up
>>> for i in range(120):
...     mult.learn_one(10 * math.exp(rng.gauss(0, 0.5)), t0 + timedelta(minutes=i))  # cost per call
...     add.learn_one(10 + rng.gauss(0, 3), t0 + timedelta(minutes=i))  # a utilisation
>>> mult.use_log, add.use_log
(True, False)
"""

from __future__ import annotations

import math
from array import array
from datetime import datetime

from detectors.base import Expected
from detectors.calibration import tail_score
from detectors import seasonal_z_state

_Z99 = 2.5758  # one-sided 99.5 % point of a standard normal
_Z999 = 3.2905  # one-sided 99.95 % point
_WEEK_S = 7 * 86400.0
_DAY_S = 86400.0
_LOG_FLOOR = math.log(1e-9)
_SPARSE_LOG_GAP = math.log(600.0)  # the burst signal applies when buckets usually come >= 10 min apart
_BURST_SLOW, _BURST_FAST = 0.02, 0.3


def _quantile_step(q: float, x: float, tail: float, rate: float) -> float:
    """One stochastic-approximation step of the ``1 - tail`` quantile ``q`` (step relative to its size)."""
    return q + rate * max(q, 0.5) * ((1.0 - tail) if x > q else -tail)


def _shrink(z: float, q99: float, q999: float) -> float:
    """Calibrate ``z >= 0`` against its tail's 99.5th / 99.95th percentiles (never sharpen)."""
    zc = z * (_Z99 / q99) if q99 > _Z99 else z
    if q999 > 0.0 and z > q99 and q999 > q99 + (_Z999 - _Z99):
        # beyond the 99.5th percentile, map the observed 99.95th onto the Gaussian one
        zc = min(zc, _Z99 + (z - q99) * (_Z999 - _Z99) / (q999 - q99))
    return zc


class SeasonalZ:
    name = "seasonal_z"
    robust = True  # learning clips residuals itself, so SeriesMonitor feeds it anomalies too

    def __init__(self, direction: str = "both", level_alpha: float = 0.03, season_alpha: float = 0.02,
                 scale_alpha: float = 0.002, tail_alpha: float = 0.02, clip: float = 3.0,
                 scale_clip: float = 20.0, min_rel_scale: float = 0.01, warmup: int = 100,
                 min_obs: int = 20, warmup_hours: float = 24.0, seasonal: bool = True,
                 hourly_scale: bool = True, hourly_alpha: float = 0.01, hourly_floor: float = 1.0,
                 transform: str = "auto", weekly_alpha: float = 0.03, short_alpha: float = 0.2,
                 shift_k: float = 0.5, tail999: bool = True, per_minute: bool = True,
                 burst: bool = True, hold: float = 0.0, raw_margin: float = 0.8) -> None:
        if transform not in ("raw", "log", "auto", "shift"):
            raise ValueError("transform must be 'raw', 'log', 'auto' or 'shift'")
        self.transform = transform
        self.use_log = transform in ("log", "auto")  # "auto": log until warm-up decides (see _choose)
        self._alt: SeasonalZ | None = None  # "auto" during warm-up: the raw-space twin
        self._bc: list[float] | None = [0.0, 0.0, 0.0, 0.0, 0.0] if transform == "auto" else None
        self.raw_margin = raw_margin  # "auto": raw space must beat log space by this variance ratio
        self.shift_k = shift_k
        self.shift = 0.0  # "shift": log(x + c), c = shift_k x mean of the first min_obs values
        self._pre = [0, 0.0, math.inf] if transform == "shift" else None  # count, sum, min
        if direction not in ("up", "both"):
            raise ValueError("direction must be 'up' or 'both'")
        self.two_sided = direction == "both"
        self.level_alpha = level_alpha
        self.season_alpha = season_alpha
        self.scale_alpha = scale_alpha
        self.tail_alpha = tail_alpha
        self.clip = clip
        self.scale_clip = scale_clip
        self.min_rel_scale = min_rel_scale
        self.warmup = warmup
        self.min_obs = min_obs
        self.warmup_s = warmup_hours * 3600.0
        self.seasonal = seasonal
        self.short_alpha = short_alpha
        self.zs = 0.0
        self.zs_ms = short_alpha / (2.0 - short_alpha)
        self.weekly_alpha = weekly_alpha
        self.per_minute = per_minute  # seasonal rates per minute of event time (5-min data learn 5x per bucket)
        self.burst = burst  # score arrival bursts on sparse series (typical gap >= 10 min)
        self.hold = hold
        self.lg_mean = self.lg_fast = self.lg_var = 0.0
        self.hourly_scale = hourly_scale
        self.hourly_alpha = hourly_alpha
        self.hourly_floor = hourly_floor
        self.hourly_ms = array("f", bytes(4 * 24))
        self.level = 0.0
        self.hour = -1
        self.rms = 0.0
        # upper tail: EW 99.5th and 99.95th percentiles of z; lower tail: the same of -z (0 = off)
        self.q99 = _Z99
        self.q999 = _Z999 if tail999 else 0.0
        self.qd99 = _Z99
        self.qd999 = _Z999 if tail999 else 0.0
        self.daily = array("f", bytes(4 * 24))
        self.weekly = array("f", bytes(4 * 168))
        self.n = 0
        self.t_first = 0.0
        self.t_last = 0.0
        self._warm = False

    # -- helpers ---------------------------------------------------------------------
    def _predict(self, t: datetime, ts: float) -> float:
        p = self.level
        if self.seasonal and self._warm:
            h = t.hour
            p += self.daily[h]
            if ts - self.t_first >= _WEEK_S:
                p += self.weekly[t.weekday() * 24 + h]
        return p

    def _scale(self, h: int | None = None) -> float:
        r = self.rms
        if h is not None and self.hourly_scale:
            ms = self.hourly_ms[h]
            if ms > 0.0:  # residual spread at this hour of day (nights are noisier for ratio metrics)
                r = max(math.sqrt(ms), self.hourly_floor * r)
        return max(r, self.min_rel_scale * (1.0 if self.use_log else abs(self.level)), 1e-12)

    def _calibrate(self, z: float) -> float:
        if z >= 0.0:
            return _shrink(z, self.q99, self.q999)
        return -_shrink(-z, self.qd99, self.qd999)

    def z(self, x: float, t: datetime) -> float:
        """Calibrated standardised deviation of ``x`` from the baseline at ``t``."""
        return self._calibrate((self._y(x) - self._predict(t, t.timestamp())) / self._scale(t.hour))

    def _y(self, x: float) -> float:
        if self.use_log:
            v = x + self.shift
            return math.log(v) if v > 1e-9 else _LOG_FLOOR
        return x

    # -- protocol --------------------------------------------------------------------
    @property
    def warmed_up(self) -> bool:
        return self._warm

    def score_one(self, x: float, t: datetime) -> float:
        if not self._warm or not math.isfinite(x) or (self.use_log and x + self.shift <= 0.0):
            return 0.0  # log space: a zero bucket (no traffic) is not an upward anomaly
        z = self.z(x, t)
        s = tail_score(z, self.two_sided)
        if self.short_alpha > 0.0:  # sustained moderate shift: EW mean of z vs its null spread
            a = self.short_alpha
            zc = max(-self.clip, min(self.clip, z))
            zs = self.zs + a * (zc - self.zs)
            # null spread of the EW mean: a/(2-a) for independent z, more when residuals are autocorrelated
            s = max(s, tail_score(zs / math.sqrt(max(a / (2.0 - a), self.zs_ms)), self.two_sided))
        if self.burst and self.n > 1 and self.lg_mean >= _SPARSE_LOG_GAP:
            s = max(s, tail_score(self._burst_z(t.timestamp())))
        return s

    def _burst_z(self, ts: float) -> float:
        """Sparse series: buckets arriving much faster than usual (a leaked key's traffic) —
        the EW mean of recent log gaps against the usual one."""
        a = _BURST_FAST
        lg = math.log(min(max(ts - self.t_last, 1.0), 7 * 86400.0))
        fast = self.lg_fast + a * (lg - self.lg_fast)
        sd = math.sqrt(max(self.lg_var, 0.25) * a / (2.0 - a))
        return (self.lg_mean - fast) / sd

    def learn_one(self, x: float, t: datetime) -> None:
        if not math.isfinite(x) or abs(x) > 1e15:  # beyond any real metric (as SeriesMonitor)
            return
        if self._bc is not None and self._learn_twin(x, t):
            return
        self._learn(x, t)
        if self._bc is not None and self._warm:
            self._choose()

    # -- transform="auto": log or raw space, chosen at the end of warm-up --------------
    def _learn_twin(self, x: float, t: datetime) -> bool:
        """Feed the raw-space twin and the Box-Cox statistics; True when raw space won outright."""
        alt = self._alt
        if alt is None:  # first value: the twin starts from the same (empty) state
            alt = self._alt = self.clone()
            alt.transform, alt.use_log, alt._alt, alt._bc = "raw", False, None, None
        alt._learn(x, t)
        if x <= 0.0:  # log space cannot hold this series
            self._adopt_twin()
            return True
        bc = self._bc
        assert bc is not None
        lx, prev = math.log(x), bc[4]
        if prev > 0.0:  # one-step differences in both spaces, and the log Jacobian
            bc[0] += 1.0
            d_raw, d_log = x - prev, lx - math.log(prev)
            bc[1] += d_raw * d_raw  # (a float ** raises OverflowError where * gives inf)
            bc[2] += d_log * d_log
            bc[3] += lx
        bc[4] = x
        return False

    def clone(self) -> "SeasonalZ":
        """A copy of this detector sharing nothing mutable (what ``copy.deepcopy`` gives, at a fraction of
        its cost: its fields are numbers, text, float32 arrays, short lists of numbers and the twin)."""
        twin = self.__class__.__new__(self.__class__)
        d = dict(self.__dict__)
        for k, v in d.items():
            t = type(v)
            if t is array or t is list:
                d[k] = v[:]  # (lists of numbers: _bc, _pre)
            elif isinstance(v, SeasonalZ):
                d[k] = v.clone()
        twin.__dict__.update(d)
        return twin

    def _choose(self) -> None:
        """Raw space if its one-step differences are clearly tighter than log space's scaled by the
        geometric mean (``raw_margin``: a multiplicative series wrongly kept raw has a skewed upper
        tail that alerts, an additive one wrongly logged only loses some sensitivity)."""
        assert self._bc is not None  # called only while choosing
        n, ss_raw, ss_log, sum_log, _ = self._bc
        if n == 0.0 or ss_raw <= self.raw_margin * ss_log * math.exp(min(2.0 * sum_log / n, 700.0)):
            self._adopt_twin()
        else:
            self._alt = self._bc = None

    def _adopt_twin(self) -> None:
        alt = self._alt
        assert alt is not None
        self.__dict__.update(alt.__dict__)
        self.transform = "auto"
        self._alt = self._bc = None

    def _learn(self, x: float, t: datetime) -> None:
        ts = t.timestamp()
        if self._pre is not None:  # "shift": the first min_obs values only choose the transform
            pre = self._pre
            pre[0] += 1
            pre[1] += x
            pre[2] = min(pre[2], x)
            if pre[0] >= self.min_obs:
                self.use_log = pre[2] >= 0.0 and pre[1] > 0.0
                self.shift = max(self.shift_k * pre[1] / pre[0], 1e-9) if self.use_log else 0.0
                self._pre = None
            return
        if self.n == 0:
            self.t_first = ts
        if self.use_log and x + self.shift <= 0.0 and self._warm:
            return  # log space: zero buckets carry no information about the positive level
        gap = min(max(ts - self.t_last, 1.0), 300.0) if self.n else 60.0  # at most 5 minutes' worth
        if self.burst and self.n:  # arrival-rate statistics (log of the gap between buckets)
            lg = math.log(min(max(ts - self.t_last, 1.0), 7 * 86400.0))
            if self.n == 1:
                self.lg_mean = self.lg_fast = lg
            else:
                d = lg - self.lg_mean
                self.lg_mean += _BURST_SLOW * d
                self.lg_var = (1.0 - _BURST_SLOW) * (self.lg_var + _BURST_SLOW * d * d)
                self.lg_fast += _BURST_FAST * (lg - self.lg_fast)
        self.t_last = ts
        pred = self._predict(t, ts)
        e = self._y(x) - pred
        if self._warm:
            h = t.hour
            scale = self._scale(h)
            zr = e / scale  # tail quantiles of z above and below the baseline
            ta = self.tail_alpha
            self.q99 = _quantile_step(self.q99, zr, 0.005, ta)
            self.qd99 = _quantile_step(self.qd99, -zr, 0.005, ta)
            if self.q999 > 0.0:
                self.q999 = _quantile_step(self.q999, zr, 0.0005, 0.1 * ta)
            if self.qd999 > 0.0:
                self.qd999 = _quantile_step(self.qd999, -zr, 0.0005, 0.1 * ta)
            if self.short_alpha > 0.0:
                zc = self._calibrate(zr)
                self.zs += self.short_alpha * (max(-self.clip, min(self.clip, zc)) - self.zs)
                self.zs_ms += self.scale_alpha * (self.zs * self.zs - self.zs_ms)
            lim = self.scale_clip * scale
            es = lim if e > lim else (-lim if e < -lim else e)
            self.rms = math.sqrt(self.rms * self.rms + self.scale_alpha * (es * es - self.rms * self.rms))
            if self.hourly_scale:
                ms = self.hourly_ms[h]
                ms = self.rms * self.rms if ms == 0.0 else ms
                ha = self.hourly_alpha
                if self.per_minute and gap != 60.0:
                    ha = 1.0 - (1.0 - ha) ** (gap / 60.0)
                self.hourly_ms[h] = ms + ha * (es * es - ms)
            lim = self.clip * scale  # robust learning: one odd bucket moves the baseline a bounded amount
            e = lim if e > lim else (-lim if e < -lim else e)
        elif self.n > 0:  # warm-up: plain running RMS of one-step residuals
            self.rms = math.sqrt(self.rms * self.rms + (e * e - self.rms * self.rms) / (self.n + 1))
        y = pred + e
        la, slow = self.level_alpha, 1.0
        if self.hold > 0.0 and self.short_alpha > 0.0 and self._warm:
            # evidence of a sustained shift (short mean of z far from 0): adopt it more slowly, so
            # the evidence can build up to an alert before the baseline has absorbed the shift
            a = self.short_alpha
            slow = 1.0 + self.hold * self.zs * self.zs / max(a / (2.0 - a), self.zs_ms)
            la /= slow
        if self.seasonal and self._warm:
            h = t.hour
            base = self.level
            sa, wa = self.season_alpha / slow, self.weekly_alpha / slow
            if self.per_minute and gap != 60.0:  # seasonal rates are per minute of event time
                k = gap / 60.0
                sa, wa = 1.0 - (1.0 - sa) ** k, 1.0 - (1.0 - wa) ** k
            self.daily[h] += sa * (y - base - self.daily[h])
            y -= self.daily[h]
            w = t.weekday() * 24 + h
            self.weekly[w] += wa * (y - base - self.weekly[w])
            if ts - self.t_first >= _WEEK_S:
                y -= self.weekly[w]
        self.level = y if self.n == 0 else self.level + la * (y - self.level)
        self.n += 1
        if self.seasonal and self._warm and t.hour != self.hour:
            self.hour = t.hour
            self._normalise(t.hour)
        if not self._warm and self.n >= self.min_obs and (
                self.n >= self.warmup or self.t_last - self.t_first >= self.warmup_s):
            self._warm = True

    # -- table state (streams.state.codec): see detectors.seasonal_z_state ----------------------
    STATE_TAG = "seasonal_z"
    STATE_VERSION = 2  # 2: positional fields (1: a dict by name)
    STATE_MIGRATIONS = {1: seasonal_z_state.migrate_v1}

    def to_state(self) -> list[object]:
        return seasonal_z_state.to_state(self)

    @classmethod
    def from_state(cls, state: list[object]) -> "SeasonalZ":
        return seasonal_z_state.from_state(cls, state)

    def _normalise(self, h: int) -> None:
        """Keep the decomposition identifiable: daily offsets average 0 (the level holds the mean)
        and the 7 weekly offsets of an hour average 0 (the daily offset holds the hour's mean)."""
        daily, weekly = self.daily, self.weekly
        m = sum(weekly[d * 24 + h] for d in range(7)) / 7.0
        for d in range(7):
            weekly[d * 24 + h] -= m
        daily[h] += m
        m = sum(daily) / 24.0
        for i in range(24):
            daily[i] -= m
        self.level += m

    def expected(self) -> Expected:
        """Baseline at the last learnt time and a ±3 sd (calibrated) band."""
        ts = self.t_last
        return self._expected(int((ts % _DAY_S) // 3600), int(((ts // _DAY_S) + 3) % 7), ts)  # 1970-01-01: Thu

    def expected_at(self, t: datetime) -> Expected:
        """Baseline and band for a bucket at ``t`` (what an alert at ``t`` should show)."""
        return self._expected(t.hour, t.weekday(), t.timestamp())

    def _expected(self, h: int, wd: int, ts: float) -> Expected:
        base = self.level
        if self.seasonal and self._warm and self.n:
            base += self.daily[h]
            if ts - self.t_first >= _WEEK_S:
                base += self.weekly[wd * 24 + h]
        sd = 3.0 * self._scale(h)
        up, down = sd * max(1.0, self.q99 / _Z99), sd * max(1.0, self.qd99 / _Z99)
        if self.use_log:
            c = self.shift
            return Expected(math.exp(base) - c, math.exp(base - down) - c, math.exp(base + up) - c)
        return Expected(base, base - down, base + up)


def seasonal_z_both() -> SeasonalZ:
    """Two-sided, raw-space variant tuned on NAB (drops are anomalies too; values may be <= 0)."""
    d = SeasonalZ(direction="both", transform="raw", season_alpha=0.05, weekly_alpha=0.05, clip=3.0, scale_clip=20.0,
                  hourly_scale=False, short_alpha=0.0)
    d.name = "seasonal_z_both"
    return d

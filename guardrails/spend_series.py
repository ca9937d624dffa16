"""What a budget chart shows: cumulative spend so far, the cap, and the forecast with its interval (pure).

Built from a :class:`~guardrails.burn_tracker.BurnTracker` (:func:`series_from_tracker`): the
tracker holds trailing sums over its longest rule window only (6 h by default), so the
cumulative spend is exact over that window (``spent - window_sum(now - t)``) and before it only
its two ends are known (0 at the period start, the sum at the window's start: ``observed_from``);
the forecast is :meth:`~guardrails.burn_tracker.BurnTracker.forecast` (statsmodels), cumulated
onto the spend, with the band :mod:`guardrails.forecast` documents (±1.96 residual sd growing
with the square root of the horizon). Without a tracker, :func:`series_from_overrun` draws what
an overrun carries: the spend at detection and a straight line to its forecast (no band).

>>> from datetime import datetime, timedelta, timezone
>>> from guardrails.budget_book import BudgetSpec
>>> from guardrails.burn_rate import DEFAULT_RULES
>>> tr = BurnTracker.from_spec(BudgetSpec("lab", 200.0, "day", DEFAULT_RULES, (0.8, 1.0), ()))
>>> t0 = datetime(2026, 11, 20, 4, tzinfo=timezone.utc)
>>> _ = [tr.observe(t0 + timedelta(minutes=m), 0.25) for m in range(8 * 60)]     # 15 $/h from 04:00 to 12:00
>>> s = series_from_tracker(tr)
>>> s.now.hour, s.observed_usd[-1], s.observed_from.hour, round(s.observed_usd[0], 6)   # 6 h held: 06:00 -> 12:00
(12, 120.0, 6, 30.0)
>>> round(s.forecast_usd[-1]), s.forecast_t[-1] == s.period_end, s.forecast_high[-1] >= s.forecast_usd[-1]
(300, True, True)
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from guardrails.burn_rate import needed_windows
from guardrails.burn_tracker import BurnTracker
from schemas.events import UtcDatetime
from schemas.overrun import Overrun

__all__ = ["SpendSeries", "series_from_overrun", "series_from_tracker"]

#: Points drawn per line (the observed part and the forecast each).
MAX_POINTS = 180
#: A budget without burn-rate rules keeps one hour of trailing sums (the tracker's rate window).
RULELESS_WINDOW_S = 3600


class SpendSeries(BaseModel):
    """Cumulative spend of one budget's period: observed points, then the forecast to the period's end."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    budget_id: str
    period_start: UtcDatetime
    period_end: UtcDatetime
    now: UtcDatetime = Field(description="the newest observation (the tracker's event time)")
    cap_usd: float = Field(ge=0)
    effective_cap_usd: float | None = Field(None, ge=0, description="cap + active grants, when known")
    observed_t: list[UtcDatetime]
    observed_usd: list[float]
    observed_from: UtcDatetime = Field(description="before this, only the period start (0) is known")
    forecast_t: list[UtcDatetime] = Field(default_factory=list)
    forecast_usd: list[float] = Field(default_factory=list)
    forecast_low: list[float] = Field(default_factory=list)
    forecast_high: list[float] = Field(default_factory=list)
    forecast_method: str = "none"
    exhausted_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _shapes(self) -> "SpendSeries":
        if self.period_end <= self.period_start:
            raise ValueError("the period must end after it starts")
        if not self.observed_t or len(self.observed_t) != len(self.observed_usd):
            raise ValueError("observed_t and observed_usd need the same, non-zero length")
        n = len(self.forecast_t)
        if not len(self.forecast_usd) == len(self.forecast_low) == len(self.forecast_high) == n:
            raise ValueError("forecast_t, forecast_usd, forecast_low and forecast_high need the same length")
        if any(b < a for a, b in zip(self.observed_t, self.observed_t[1:])):
            raise ValueError("observed_t must not go back in time")
        return self

    @property
    def spent_usd(self) -> float:
        return self.observed_usd[-1]

    @property
    def has_interval(self) -> bool:
        return any(h > lo for lo, h in zip(self.forecast_low, self.forecast_high))


def _sample(n: int, k: int = MAX_POINTS) -> list[int]:
    """At most ``k`` indices of ``range(n)``, evenly spread, always the last."""
    if n <= k:
        return list(range(n))
    step = n / k
    idx = sorted({min(n - 1, int(i * step)) for i in range(k)} | {n - 1})
    return idx


def series_from_tracker(tr: BurnTracker, effective_cap_usd: float | None = None) -> SpendSeries:
    """The chart of a tracker's current period (``ValueError`` if it has seen nothing yet)."""
    now, ps, pe = tr.now, tr.period_start, tr.period_end
    if now is None or ps is None or pe is None:
        raise ValueError(f"budget {tr.budget_id} has no spend yet: nothing to chart")
    spent = tr.period_spent_usd
    held_s = max(needed_windows(tr.rules)) if tr.rules else RULELESS_WINDOW_S
    reach_min = int(min(held_s, max((now - ps).total_seconds(), 0)) // 60)
    minutes = list(range(reach_min, -1, -1))  # minutes before now, oldest first
    obs_t, obs_usd = [], []
    for i in _sample(len(minutes)):
        back = minutes[i]
        obs_t.append(now - timedelta(minutes=back))
        obs_usd.append(round(spent - (tr.window_sum(back * 60) if back else 0.0), 6))
    f, exhausted = tr.forecast()
    steps = len(f.per_step)
    fc_t, fc, lo, hi = [now], [spent], [spent], [spent]
    if steps:
        step = (pe - now) / steps
        half_hi = max(f.high_total - f.expected_total, 0.0)
        half_lo = max(f.expected_total - f.low_total, 0.0)
        cum = spent
        cums = []
        for v in f.per_step:
            cum += v
            cums.append(cum)
        for i in _sample(steps):
            grow = math.sqrt((i + 1) / steps)
            fc_t.append(min(now + step * (i + 1), pe))
            fc.append(round(cums[i], 6))
            lo.append(round(max(spent, cums[i] - half_lo * grow), 6))
            hi.append(round(cums[i] + half_hi * grow, 6))
    return SpendSeries(budget_id=tr.budget_id, period_start=ps, period_end=pe, now=now, cap_usd=tr.cap_usd,
                       effective_cap_usd=effective_cap_usd, observed_t=obs_t, observed_usd=obs_usd,
                       observed_from=obs_t[0], forecast_t=fc_t, forecast_usd=fc, forecast_low=lo, forecast_high=hi,
                       forecast_method=f.method, exhausted_at=exhausted)


def series_from_overrun(ov: Overrun, effective_cap_usd: float | None = None) -> SpendSeries:
    """What an overrun alone shows: its spend at detection, a straight line to its forecast, no interval.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    >>> ov = Overrun(overrun_id="o", budget_id="b", trigger="threshold", rule="threshold_100", period="day",
    ...              period_start=t.replace(hour=0), period_end=t.replace(day=21, hour=0), at=t, started_at=t,
    ...              cap_usd=100, spend_usd=100, forecast_usd=200, overrun_usd=100, overrun_pct=100)
    >>> s = series_from_overrun(ov)
    >>> s.observed_usd, s.forecast_usd, s.has_interval, s.observed_from == t
    ([100.0], [100.0, 200.0], False, True)
    """
    at: datetime = min(max(ov.at, ov.period_start), ov.period_end)
    end = [ov.period_end] if ov.period_end > at else []
    fc = [ov.spend_usd] + [max(ov.forecast_usd, ov.spend_usd)] * len(end)
    return SpendSeries(budget_id=ov.budget_id, period_start=ov.period_start, period_end=ov.period_end, now=at,
                       cap_usd=ov.cap_usd, effective_cap_usd=effective_cap_usd, observed_t=[at],
                       observed_usd=[ov.spend_usd], observed_from=at, forecast_t=[at, *end], forecast_usd=fc,
                       forecast_low=list(fc), forecast_high=list(fc), forecast_method=ov.forecast_method,
                       exhausted_at=ov.exhausted_at)

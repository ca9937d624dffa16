"""End-of-period spend and time to budget exhaustion (statsmodels exponential smoothing).

Input: spend per step (e.g. per day, or per hour) for the period so far plus some
history, the budget, and how many steps remain. A Holt-Winters model
(``statsmodels.tsa.holtwinters.ExponentialSmoothing``, additive damped trend, additive
seasonality when two full seasons are available) forecasts the remaining steps; the
forecast is cumulated onto what is already spent. Too little data falls back to the
recent mean rate. The band is ±1.96 residual sd, growing with the square root of the
horizon (a rough, documented approximation; not a simulation).

>>> days = [100.0 + 20.0 * (i % 7 >= 5) for i in range(28)]   # higher at weekends
>>> f = forecast_period(days, spent=1500.0, budget=2900.0, remaining_steps=14, season=7)
>>> f.method, round(f.expected_total), f.exhausted_in_steps, round(f.overrun(2900.0))
('holt_winters', 2980, 14, 80)
>>> [round(v) for v in f.per_step[:7]]
[100, 100, 100, 100, 100, 120, 120]
>>> g = forecast_period([50.0, 60.0], spent=110.0, budget=1000.0, remaining_steps=10)
>>> g.method, round(g.expected_total), g.exhausted_in_steps is None
('mean_rate', 660, True)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Forecast:
    expected_total: float  # spent + forecast of the remaining steps
    low_total: float
    high_total: float
    exhausted_in_steps: int | None  # first remaining step at which the budget runs out (expected path)
    method: str  # "holt_winters" | "holt" | "mean_rate"
    per_step: tuple[float, ...]  # forecast spend of each remaining step

    def overrun(self, budget: float) -> float:
        """Expected spend above the budget at the end of the period (0 if none)."""
        return max(0.0, self.expected_total - budget)


def _fit(y: np.ndarray, steps: int, season: int | None) -> tuple[np.ndarray, float, str]:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = season is not None and season > 1 and len(y) >= 2 * season
    model = ExponentialSmoothing(y, trend="add", damped_trend=True, seasonal="add" if seasonal else None,
                                 seasonal_periods=season if seasonal else None,
                                 initialization_method="estimated")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit()
    fc = np.asarray(res.forecast(steps), dtype=float)
    resid = np.asarray(res.resid, dtype=float)
    sd = float(np.std(resid)) if len(resid) > 2 else 0.0
    return fc, sd, "holt_winters" if seasonal else "holt"


def forecast_period(history: Sequence[float], spent: float, budget: float, remaining_steps: int,
                    season: int | None = None, min_points: int = 6) -> Forecast:
    """Forecast end-of-period spend and when (in steps from now) the budget is exhausted."""
    y = np.asarray([max(float(v), 0.0) for v in history], dtype=float)
    steps = max(int(remaining_steps), 0)
    if steps == 0:
        return Forecast(spent, spent, spent, 0 if spent >= budget else None, "mean_rate", ())
    fc: np.ndarray
    if len(y) >= min_points and float(np.ptp(y)) > 0:
        try:
            fc, sd, method = _fit(y, steps, season)
        except (ValueError, np.linalg.LinAlgError):
            fc, sd, method = np.full(steps, float(y[-min_points:].mean())), float(np.std(y)), "mean_rate"
    else:
        rate = float(y[-min_points:].mean()) if len(y) else 0.0
        fc, sd, method = np.full(steps, rate), float(np.std(y)) if len(y) > 1 else 0.0, "mean_rate"
    fc = np.clip(np.nan_to_num(fc, nan=0.0), 0.0, None)
    total = spent + float(fc.sum())
    half = 1.96 * sd * math.sqrt(steps)
    cum = spent + np.cumsum(fc)
    if spent >= budget:
        exhausted: int | None = 0
    else:
        idx = np.nonzero(cum >= budget - 1e-9)[0]
        exhausted = int(idx[0]) + 1 if len(idx) else None
    return Forecast(total, max(spent, total - half), total + half, exhausted, method, tuple(float(v) for v in fc))

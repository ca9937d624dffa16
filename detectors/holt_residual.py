"""River ``time_series.HoltWinters`` one-step-ahead residuals, standardised and calibrated.

Holt's linear method (level + trend, river's ``HoltWinters`` with ``seasonality=0``)
forecasts the next bucket; the residual is divided by an EW RMS of past residuals and
scored with the shared calibrated tail. A seasonal Holt-Winters over per-minute data
would need one state value per minute of the season (1,440 for a day), far above the
2 KB budget, which is why :mod:`detectors.seasonal_z` keeps hourly slots instead; this
detector is the non-seasonal reference. Two-sided.

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 11, 20, tzinfo=timezone.utc)
>>> d = HoltResidual()
>>> for i in range(200):
...     d.learn_one(10.0 + 0.01 * i + 0.1 * ((i * 7) % 5 - 2), t)
>>> d.warmed_up, d.score_one(12.0, t) < 0.99, d.score_one(20.0, t) > 0.9999
(True, True, True)
"""

from __future__ import annotations

import math
from datetime import datetime

from river import time_series

from detectors.base import Expected
from detectors.calibration import tail_score
from detectors.statecheck import NUM, Spec, fields, floats


class HoltResidual:
    name = "holt_residual"

    def __init__(self, alpha: float = 0.3, beta: float = 0.01, scale_alpha: float = 0.01, warmup: int = 30,
                 min_rel_scale: float = 0.01) -> None:
        self.model = time_series.HoltWinters(alpha=alpha, beta=beta)
        self.scale_alpha = scale_alpha
        self.warmup = warmup
        self.min_rel_scale = min_rel_scale
        self.ms = 0.0
        self.n = 0
        self.last = 0.0

    def _forecast(self) -> float:
        return float(self.model.forecast(horizon=1)[0]) if self.n >= 2 else self.last

    def _scale(self, pred: float) -> float:
        return max(math.sqrt(self.ms), self.min_rel_scale * abs(pred), 1e-12)

    @property
    def warmed_up(self) -> bool:
        return self.n >= self.warmup

    def score_one(self, x: float, t: datetime) -> float:
        if not self.warmed_up:
            return 0.0
        pred = self._forecast()
        return tail_score((x - pred) / self._scale(pred), two_sided=True)

    def learn_one(self, x: float, t: datetime) -> None:
        if self.n >= 2:
            pred = self._forecast()
            e = x - pred
            lim = 6.0 * self._scale(pred) if self.n >= self.warmup else math.inf
            e = max(-lim, min(lim, e))
            a = self.scale_alpha if self.n >= self.warmup else 1.0 / (self.n - 1)
            self.ms += a * (e * e - self.ms)
        self.model.learn_one(x)
        self.last = x
        self.n += 1

    def expected(self) -> Expected:
        pred = self._forecast()
        half = 3.0 * self._scale(pred)
        return Expected(pred, pred - half, pred + half)

    # -- table state (streams.state.codec): river's HoltWinters as its numbers, not its objects ----
    STATE_TAG = "holt_residual"
    STATE_VERSION = 1
    _STATE = Spec({"alpha": NUM, "beta": NUM, "scale_alpha": NUM, "warmup": int, "min_rel_scale": NUM, "ms": NUM,
                   "n": int, "last": NUM, "level": list, "trend": list, "first_values": list, "initialized": bool})

    def to_state(self) -> dict[str, object]:
        hw = self.model
        if hw.season is not None or hw.multiplicative:
            raise TypeError("HoltResidual state holds a non-seasonal, additive HoltWinters only")
        return {"alpha": hw.alpha, "beta": hw.beta or 0.0, "scale_alpha": self.scale_alpha, "warmup": self.warmup,
                "min_rel_scale": self.min_rel_scale, "ms": self.ms, "n": self.n, "last": self.last,
                "level": list(hw.level), "trend": list(hw.trend) if hw.trend is not None else [],
                "first_values": list(hw._first_values), "initialized": hw._initialized}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> "HoltResidual":
        fields(state, cls._STATE)
        level, trend = floats(state["level"], "level", max_len=2), floats(state["trend"], "trend", max_len=2)
        first = floats(state["first_values"], "first_values", max_len=2)
        d = cls.__new__(cls)
        for k in ("scale_alpha", "warmup", "min_rel_scale", "ms", "n", "last"):
            setattr(d, k, state[k])
        hw = d.model = time_series.HoltWinters(alpha=state["alpha"], beta=state["beta"] or None)  # two floats
        hw.level.extend(level)
        if hw.trend is not None:
            hw.trend.extend(trend)
        elif trend:
            raise ValueError("a trend without beta")
        hw._first_values = list(first)
        hw._initialized = state["initialized"]
        return d


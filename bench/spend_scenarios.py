"""Deterministic, labelled AI-spend series with injected incidents, and their evaluation.

Every series is per-minute buckets of one allocation key × metric over ``weeks`` weeks
(starting on a Monday 00:00 UTC) with daily and weekly seasonality (business-hours
peak, quiet nights and weekends, a recurring Monday 09:00 surge), Poisson request
counts and log-normal cost/token noise. One incident is injected per series, after a
``burn_in`` (default one week, so the weekly baseline exists):

=====================  ===================  ==============================================
kind                   metric               effect
=====================  ===================  ==============================================
retry_storm            spend                requests x4-8 for 20-60 min
prompt_bloat           tokens_per_request   context grows x2.5-4 over 20 min, then stays
frontier_misroute      cost_per_inference   cost per call x8-15 for 2-6 h
leaked_key             spend                a customer key gets extra traffic (x4-8 peak) at night;
                                            one variant is a sparse key (3 calls a day)
price_change           cost_per_inference   permanent x1.5-2 step (alert once, then normal)
weekend_sweep          spend                a GPU sweep from Friday 18:00 to Monday 06:00 x4-6
idle_notebook          idle_gpu_cost        +$2-4/h idle for 4-10 h from the evening
pinned_idle_model      idle_gpu_cost        permanent +$3-6/h idle (a model pinned on a GPU)
=====================  ===================  ==============================================

>>> s = generate(seed=1, per_kind=1, weeks=2)
>>> len(s), sorted({x.incidents[0].kind for x in s}) == sorted(KINDS)
(8, True)
>>> s[0].values[:3] == generate(seed=1, per_kind=1, weeks=2)[0].values[:3]
True
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

KINDS: tuple[str, ...] = ("retry_storm", "prompt_bloat", "frontier_misroute", "leaked_key", "price_change",
                          "weekend_sweep", "idle_notebook", "pinned_idle_model")
T0 = datetime(2026, 10, 5, tzinfo=timezone.utc)  # a Monday
MIN_PER_WEEK = 7 * 1440


@dataclass(frozen=True, slots=True)
class LabelledIncident:
    kind: str
    start: datetime
    end: datetime  # detections up to ``end`` count; alerts after it are false


@dataclass(frozen=True, slots=True)
class SpendSeries:
    key: str
    metric: str
    timestamps: list[datetime]
    values: list[float]
    incidents: list[LabelledIncident]
    burn_in_end: datetime = field(default=T0)


def _profile(minutes: np.ndarray, peak_hour: float, weekend: float, monday_surge: float) -> np.ndarray:
    """Relative traffic at each minute: business-hours bump, quiet weekends, Monday 09:00 surge."""
    hour = (minutes % 1440) / 60.0
    dow = (minutes // 1440) % 7
    daily = 0.15 + 0.85 * np.exp(-0.5 * ((hour - peak_hour) / 3.5) ** 2)
    week = np.where(dow >= 5, weekend, 1.0)
    surge = np.where((dow == 0) & (hour >= 9) & (hour < 10), monday_surge, 1.0)
    return daily * week * surge


def _traffic(rng: np.random.Generator, n: int, peak_rpm: float, cpr: float, tokens: float,
             minutes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Requests, cost per request and tokens per request for ``n`` minutes."""
    prof = _profile(minutes, rng.uniform(11, 16), rng.uniform(0.25, 0.5), rng.uniform(1.5, 2.2))
    req = rng.poisson(peak_rpm * prof).astype(float)
    per = np.maximum(req, 1.0)
    cost = cpr * np.exp(rng.normal(0, 0.25, n) / np.sqrt(per))
    tok = tokens * np.exp(rng.normal(0, 0.3, n) / np.sqrt(per))
    return req, cost, tok


def _make(kind: str, idx: int, seed: int, weeks: int, burn_in_days: float) -> SpendSeries:
    rng = np.random.default_rng([seed, KINDS.index(kind), idx])
    n = weeks * MIN_PER_WEEK
    minutes = np.arange(n)
    # incident start: a random minute after the burn-in, leaving room before the end
    lo, hi = int(burn_in_days * 1440) + 120, n - 2 * 1440
    start = int(rng.integers(lo, hi))
    team = ("search", "support-bot", "ads", "research", "billing")[idx % 5]
    peak = float(rng.uniform(10, 40))
    cpr = float(rng.uniform(0.002, 0.02))
    tokens = float(rng.uniform(800, 3000))
    req, cost, tok = _traffic(rng, n, peak, cpr, tokens, minutes)
    end = start
    metric = "spend"
    key = f"team={team}/feature=f{idx}/model=m{idx % 3}"
    present = np.ones(n, dtype=bool)
    if kind == "retry_storm":
        dur = int(rng.integers(20, 61))
        f = rng.uniform(4, 8)
        req[start:start + dur] = rng.poisson(req[start:start + dur] * f + 1)
        end = start + dur
    elif kind == "prompt_bloat":
        metric = "tokens_per_request"
        f = rng.uniform(2.5, 4.0)
        ramp = np.clip((minutes - start) / 20.0, 0.0, 1.0)
        tok = tok * (1.0 + (f - 1.0) * ramp)
        cost = cost * (1.0 + (f - 1.0) * ramp)
        end = start + 240
    elif kind == "frontier_misroute":
        metric = "cost_per_inference"
        dur = int(rng.integers(120, 361))
        cost[start:start + dur] *= rng.uniform(8, 15)
        end = start + dur
    elif kind == "leaked_key":
        key = f"customer=c{idx}/key=k{idx}"
        sparse = idx % 2 == 1
        if sparse:  # 3 calls a day at random minutes
            req = np.zeros(n)
            calls = rng.choice(n, size=3 * weeks * 7, replace=False)
            req[calls] = 1.0
            cost = cpr * np.exp(rng.normal(0, 0.25, n))
        start = (start // 1440) * 1440 + int(rng.integers(60, 240))  # 01:00-04:00
        dur = int(rng.integers(180, 480))
        extra = rng.poisson((2.0 if sparse else peak * rng.uniform(4, 8)), dur)
        req[start:start + dur] += extra
        end = start + dur
        present = req > 0
    elif kind == "price_change":
        metric = "cost_per_inference"
        cost[start:] *= rng.uniform(1.5, 2.0)
        end = start + 360
    elif kind == "weekend_sweep":
        key = f"team=research/project=sweep{idx}/gpu=a100"
        days = (start // 1440)
        fri = (days - days % 7) + 4
        if fri * 1440 < lo:
            fri += 7
        if (fri + 3) * 1440 > n:
            fri -= 7
        start = fri * 1440 + 18 * 60
        dur = 60 * 60  # to Monday 06:00
        req[start:start + dur] = rng.poisson(req[start:start + dur] + peak * rng.uniform(4, 6))
        end = start + dur
    elif kind in ("idle_notebook", "pinned_idle_model"):
        metric = "idle_gpu_cost"
        key = f"team={team}/gpu-pool=p{idx}"
        base = 0.004 + 0.003 * _profile(minutes, 3.0, 1.3, 1.0)  # a little idle, more at night
        idle = base * np.exp(rng.normal(0, 0.3, n))
        if kind == "idle_notebook":
            start = (start // 1440) * 1440 + int(rng.integers(17 * 60, 20 * 60))
            dur = int(rng.integers(240, 601))
            idle[start:start + dur] += rng.uniform(2, 4) / 60.0
            end = start + dur
        else:
            idle[start:] += rng.uniform(3, 6) / 60.0
            end = start + 360
        values = idle
        return _pack(key, metric, minutes, values, np.ones(n, dtype=bool), kind, start, end, burn_in_days)
    if metric == "spend":
        values = req * cost
    elif metric == "cost_per_inference":
        values = cost
        present &= req > 0
    else:
        values = tok
        present &= req > 0
    return _pack(key, metric, minutes, values, present, kind, start, end, burn_in_days)


def _pack(key: str, metric: str, minutes: np.ndarray, values: np.ndarray, present: np.ndarray, kind: str,
          start: int, end: int, burn_in_days: float) -> SpendSeries:
    idx = np.nonzero(present)[0]
    ts = [T0 + timedelta(minutes=int(m)) for m in minutes[idx]]
    inc = LabelledIncident(kind, T0 + timedelta(minutes=start), T0 + timedelta(minutes=end))
    return SpendSeries(key, metric, ts, [float(v) for v in values[idx]], [inc],
                       T0 + timedelta(days=burn_in_days))


def generate(seed: int = 7, per_kind: int = 6, weeks: int = 3, burn_in_days: float = 7.0) -> list[SpendSeries]:
    """``per_kind`` labelled series for each incident kind (deterministic in ``seed``)."""
    return [_make(kind, i, seed, weeks, burn_in_days) for kind in KINDS for i in range(per_kind)]


# -- evaluation ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SeriesOutcome:
    kind: str
    detected: bool
    delay_min: float | None
    false_alerts: int
    weeks: float  # evaluated series-weeks (after burn-in)
    normal_buckets: int = 0  # buckets after burn-in and before the incident
    exceed: tuple[int, ...] = ()  # of those, how many scored >= each of CALIBRATION_LEVELS


#: score levels whose exceedance rate on normal buckets is reported (calibration check)
CALIBRATION_LEVELS: tuple[float, ...] = (0.99, 0.999, 0.9999)


def evaluate_series(s: SpendSeries, make_monitor: Callable[[], object]) -> SeriesOutcome:
    """Feed ``s`` through a fresh SeriesMonitor; classify each incident-open event."""
    m = make_monitor()
    inc = s.incidents[0]
    first: datetime | None = None
    false = 0
    normal = 0
    exceed = [0] * len(CALIBRATION_LEVELS)
    for t, x in zip(s.timestamps, s.values):
        ev = m.observe(t, x)  # type: ignore[attr-defined]
        if s.burn_in_end <= t < inc.start and hasattr(m, "last_score"):
            normal += 1
            for i, level in enumerate(CALIBRATION_LEVELS):
                exceed[i] += m.last_score >= level
        if ev is None or ev.status != "firing" or t < s.burn_in_end:
            continue
        if inc.start <= t <= inc.end:
            if first is None:
                first = t
        else:
            false += 1
    span = (s.timestamps[-1] - max(s.burn_in_end, s.timestamps[0])).total_seconds() / (7 * 86400)
    delay = (first - inc.start).total_seconds() / 60 if first is not None else None
    return SeriesOutcome(inc.kind, first is not None, delay, false, max(span, 0.0), normal, tuple(exceed))


def exceedance_rates(outcomes: Sequence[SeriesOutcome]) -> tuple[float, ...]:
    """Share of normal buckets scoring at or above each calibration level (ideal: 1 - level).

    >>> exceedance_rates([SeriesOutcome("a", True, 0.0, 0, 1.0, 1000, (12, 2, 0))])
    (0.012, 0.002, 0.0)
    """
    n = sum(o.normal_buckets for o in outcomes)
    return tuple(sum(o.exceed[i] for o in outcomes if o.exceed) / n if n else 0.0
                 for i in range(len(CALIBRATION_LEVELS)))


@dataclass(frozen=True, slots=True)
class KindSummary:
    kind: str
    incidents: int
    recall: float
    false_per_series_week: float
    median_delay: float | None
    p95_delay: float | None


def _pct(xs: Sequence[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    f = math.floor(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def summarise(outcomes: Sequence[SeriesOutcome]) -> list[KindSummary]:
    """Per incident kind, plus an ``all`` row.

    >>> o = [SeriesOutcome("a", True, 2.0, 0, 1.0), SeriesOutcome("a", False, None, 1, 1.0)]
    >>> summarise(o)[0]
    KindSummary(kind='a', incidents=2, recall=0.5, false_per_series_week=0.5, median_delay=2.0, p95_delay=2.0)
    """
    out = []
    groups: dict[str, list[SeriesOutcome]] = {}
    for o in outcomes:
        groups.setdefault(o.kind, []).append(o)
    groups["all"] = list(outcomes)
    for kind, os_ in groups.items():
        delays = [o.delay_min for o in os_ if o.delay_min is not None]
        weeks = sum(o.weeks for o in os_)
        out.append(KindSummary(kind, len(os_), sum(o.detected for o in os_) / len(os_),
                               sum(o.false_alerts for o in os_) / weeks if weeks else 0.0,
                               statistics.median(delays) if delays else None,
                               _pct(delays, 0.95) if delays else None))
    return out

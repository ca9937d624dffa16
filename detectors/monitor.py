"""One series under watch: a detector plus incident logic (alert once, then resolve).

Feeds closed-bucket values; returns an :class:`Incident` transition when an incident
opens or resolves, and ``None`` otherwise. An incident opens after ``confirm``
anomalous buckets in a row (``started_at`` is the first of them), or at once when the
score is ``instant_factor`` times rarer than the threshold; it resolves after
``quiet_buckets`` quiet buckets in a row, a quiet bucket scoring below a resolve level
``resolve_factor`` times commoner than the threshold (hysteresis: a value still hovering
near the threshold while the baseline adopts a level shift does not resolve the incident
and re-open it a minute later). Anomalous values are kept out of the baseline, unless
they persist for ``adopt_after`` buckets (a level shift becomes the new normal) or the
detector is ``robust`` (it bounds the influence of one value itself and learns everything).

*Early firing* (:meth:`SeriesMonitor.peek`): the value of a bucket still open, for a metric that only grows
while its bucket fills (spend), is scored without learning; if it already opens an incident at once (the
instant rule), so will the closed bucket, which is at least as large: the incident opens now, dated to that
bucket. Nothing else changes, so the closed buckets are fed to :meth:`observe` as usual: one before it neither
resolves the incident nor counts as quiet, and the early bucket itself, closed, confirms the incident (no second
transition) or, below the threshold after all, resolves it at once.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
>>> m = SeriesMonitor()
>>> values = [1.0 + 0.02 * (i % 5) for i in range(200)] + [5.0] * 3 + [1.0] * 10
>>> out = [m.observe(t0 + timedelta(minutes=i), v) for i, v in enumerate(values)]
>>> [(i, o.status, o.started_at.minute) for i, o in enumerate(out) if o]
[(200, 'firing', 20), (207, 'resolved', 20)]
>>> m.last_score < 0.9
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from detectors.base import Expected, SeriesDetector
from detectors.registry import make_detector
from detectors.statecheck import NUM, Spec, fields


@dataclass(frozen=True, slots=True)
class Incident:
    status: str  # "firing" | "resolved"
    started_at: datetime
    at: datetime
    score: float
    observed: float
    expected: Expected
    peak_score: float


class SeriesMonitor:
    def __init__(self, detector: SeriesDetector | None = None, threshold: float = 0.9999,
                 quiet_buckets: int = 5, adopt_after: int = 30, min_ratio: float = 1.0,
                 confirm: int = 2, instant_factor: float = 100.0, confirm_window: int = 3,
                 two_sided: bool = False, resolve_factor: float = 10.0) -> None:
        self.detector = detector or make_detector()
        self.threshold = threshold
        # materiality: an incident also needs observed >= min_ratio x baseline (1.0 = off)
        self.min_ratio = min_ratio
        # two_sided: drops open incidents too (no materiality check); the service watches rises only
        self.two_sided = two_sided
        self.quiet_buckets = quiet_buckets
        self.resolve_factor = resolve_factor  # quiet: 1 - score > resolve_factor x (1 - threshold)
        # persistence: an incident opens after ``confirm`` anomalous buckets among the last
        # ``confirm_window``, or at once when the score is ``instant_factor`` times rarer than the
        # threshold (1 - s <= (1 - thr) / f)
        self.confirm = confirm
        self.confirm_window = max(confirm_window, confirm)
        self.instant_factor = instant_factor
        self.recent = 0  # bitmask of the last confirm_window buckets' anomalous flags
        self.run_started: datetime | None = None
        self.adopt_after = adopt_after
        self.started_at: datetime | None = None
        self.peak = 0.0
        self.quiet = 0
        self.anomalous_run = 0
        self.last_score = 0.0
        # detectors that bound the influence of one odd value themselves learn everything
        self.robust = bool(getattr(self.detector, "robust", False))

    @property
    def firing(self) -> bool:
        return self.started_at is not None

    def peek(self, t: datetime, x: float) -> Incident | None:
        """Score ``x``, the value so far of the still open bucket at ``t`` of a metric that only grows as its
        bucket fills, without learning: if it is anomalous at the instant level (``instant_factor`` times rarer
        than the threshold, and material) and no incident is open, open one dated ``t`` and return it (firing);
        else ``None`` and nothing changes. A repeat (a larger value so far, or the same one again) returns
        ``None``: the incident is open.

        >>> from datetime import datetime, timedelta, timezone
        >>> t0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
        >>> m = SeriesMonitor()
        >>> for i in range(200):
        ...     _ = m.observe(t0 + timedelta(minutes=i), 1.0 + 0.02 * (i % 5))
        >>> t = t0 + timedelta(minutes=201)       # minute 200 still open too: 201 is scored against minute 199
        >>> m.peek(t, 1.1), m.firing               # so far within the expected range: nothing
        (None, False)
        >>> m.peek(t, 10.0).status, m.started_at == t, m.peek(t, 12.0)
        ('firing', True, None)
        >>> m.observe(t - timedelta(minutes=1), 1.02), m.firing   # minute 200 closes: neither quiet nor resolved
        (None, True)
        >>> m.observe(t, 14.0), m.firing          # the early minute closes above: confirmed, no second transition
        (None, True)
        """
        if self.started_at is not None or not math.isfinite(x) or abs(x) > 1e15:
            return None
        at = getattr(self.detector, "expected_at", None)
        expected = at(t) if at is not None else self.detector.expected()
        score = self.detector.score_one(x, t)
        floor = max(expected.baseline, 0.0)
        material = self.two_sided or (x > floor and x >= floor * self.min_ratio)
        if not (material and score >= self.threshold
                and 1.0 - score <= (1.0 - self.threshold) / self.instant_factor):
            return None
        self.started_at, self.peak, self.quiet = t, score, 0
        return Incident("firing", t, t, score, x, expected, score)

    def observe(self, t: datetime, x: float) -> Incident | None:
        if not math.isfinite(x) or abs(x) > 1e15:  # beyond any real metric: squares would overflow
            return None  # a NaN/inf bucket would poison the baseline; it carries no information
        at = getattr(self.detector, "expected_at", None)  # optional: baseline at this bucket's time
        expected = at(t) if at is not None else self.detector.expected()
        score = self.detector.score_one(x, t)
        self.last_score = score
        # materiality: strictly above the baseline and at least min_ratio times it, with the baseline
        # floored at 0 (metrics are rates, shares and spend: a baseline fitted below 0 after a level
        # drop must not make a constant 0 look like a rise)
        floor = max(expected.baseline, 0.0)
        material = getattr(self, "two_sided", False) or (x > floor and x >= floor * getattr(self, "min_ratio", 1.0))
        anomalous = score >= self.threshold and material
        self.anomalous_run = self.anomalous_run + 1 if anomalous else 0
        robust = getattr(self, "robust", None)
        if robust is None:  # a monitor pickled before this attribute existed
            robust = self.robust = bool(getattr(self.detector, "robust", False))
        if not anomalous or self.anomalous_run > self.adopt_after or robust:
            self.detector.learn_one(x, t)
        confirm = getattr(self, "confirm", 1)
        prev = getattr(self, "recent", 0)
        self.recent = ((prev << 1) | anomalous) & ((1 << getattr(self, "confirm_window", confirm)) - 1)
        if anomalous:
            self.quiet = 0
            if prev == 0:
                self.run_started = t
            if self.started_at is None:
                confirmed = bin(self.recent).count("1") >= confirm or (
                    1.0 - score <= (1.0 - self.threshold) / getattr(self, "instant_factor", 100.0))
                if not confirmed:
                    return None
                started = self.run_started or t
                self.started_at, self.peak = started, score
                return Incident("firing", started, t, score, x, expected, score)
            self.peak = max(self.peak, score)
            return None
        if self.started_at is not None and t <= self.started_at:  # an incident opened early (peek), unconfirmed
            if t < self.started_at:
                return None  # a bucket before the early one: not a quiet bucket of this incident
            started, peak = self.started_at, self.peak  # the early bucket closed below the threshold after all
            self.started_at, self.peak, self.quiet = None, 0.0, 0
            return Incident("resolved", started, t, score, x, expected, peak)
        if self.started_at is not None:
            # (never below half the threshold: a low threshold times the factor would reach 0)
            resolve_level = max(1.0 - (1.0 - self.threshold) * getattr(self, "resolve_factor", 1.0),
                                self.threshold / 2.0)
            if material and score >= resolve_level:
                self.quiet = 0  # still elevated: not a quiet bucket
                return None
            self.quiet += 1
            if self.quiet >= self.quiet_buckets:
                started, peak = self.started_at, self.peak
                self.started_at, self.peak, self.quiet = None, 0.0, 0
                return Incident("resolved", started, t, score, x, expected, peak)
        return None

    # -- table state (streams.state.codec): declared fields, rebuilt without __init__ -----------
    STATE_TAG = "series_monitor"
    STATE_VERSION = 2  # 2: positional fields in _STATE's order (1: a dict by name)
    _STATE = Spec({"detector": object, "threshold": NUM, "min_ratio": NUM, "two_sided": bool, "quiet_buckets": int,
                   "resolve_factor": NUM, "confirm": int, "confirm_window": int, "instant_factor": NUM, "recent": int,
                   "run_started": (datetime, type(None)), "adopt_after": int, "started_at": (datetime, type(None)),
                   "peak": NUM, "quiet": int, "anomalous_run": int, "last_score": NUM, "robust": bool})
    STATE_FIELDS = _STATE.order  # the order of a version-2 state's fields

    @staticmethod
    def _migrate_v1(state: dict[str, object]) -> list[object]:
        """Version 1 (a dict by field name) -> version 2 (positional)."""
        fields(state, SeriesMonitor._STATE)
        return [state[k] for k in SeriesMonitor._STATE.order]

    STATE_MIGRATIONS = {1: _migrate_v1.__func__}

    def to_state(self) -> list[object]:
        return [getattr(self, k) for k in self._STATE.order]

    @classmethod
    def from_state(cls, positional: list[object]) -> "SeriesMonitor":
        order = cls._STATE.order
        if type(positional) is not list or len(positional) != len(order):
            raise ValueError(f"state is not a list of the {len(order)} fields")
        state = dict(zip(order, positional))
        fields(state, cls._STATE)
        if not 1 <= state["confirm_window"] <= 64 or not 0 <= state["recent"] < 1 << 64:  # type: ignore[operator]
            raise ValueError("confirm_window must be 1..64 (a bitmask of that many buckets)")
        if not state["instant_factor"] > 0:  # type: ignore[operator]
            raise ValueError("instant_factor must be > 0")
        if not callable(getattr(state["detector"], "score_one", None)):
            raise ValueError("detector is not a detector")
        m = cls.__new__(cls)
        m.__dict__.update(state)
        return m

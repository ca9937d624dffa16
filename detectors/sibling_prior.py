"""Cold start: a never-seen key that spends far above what its siblings typically spend.

A new series sits in warm-up before its own detector can score it, so a leaked key that
appears as a brand-new customer raised nothing until its team roll-up noticed. This keeps,
per parent roll-up (e.g. a team), the distribution of what one *established* child spends
per bucket (an exponentially weighted mean and variance of log spend: spend is multiplicative,
customers differ by orders of magnitude), and scores every child still in its warm-up
against it. A new child opens a transition when its spend is above ``threshold`` of the
siblings' distribution and ``min_ratio`` times their typical (median) spend, and resolves
after ``quiet_buckets`` buckets at or below the siblings' high (or absent).

State is a few floats plus the children's ages (bounded by ``max_children``; a child dropped
from that bound is new again). Feed it the parent's per-child spend of each closed bucket
(``Bucket.children``); :func:`detectors.incidents.grouping.with_child` names the child's full key.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
>>> p = SiblingPrior(warmup=30)
>>> siblings = {f"customer=c{i}": 0.10 * (1 + i % 4) for i in range(8)}   # $0.10-0.40 a minute each
>>> for m in range(120):
...     assert p.observe(t0 + timedelta(minutes=m), siblings) == []
>>> leak = dict(siblings, **{"customer=leaked": 6.0})                          # never seen, $6 a minute
>>> [(e.child, e.status, round(e.baseline, 2)) for e in p.observe(t0 + timedelta(minutes=120), leak)]
[('customer=leaked', 'firing', 0.22)]
>>> p.observe(t0 + timedelta(minutes=121), leak)                                # once, not every bucket
[]
>>> quiet = [e for m in range(122, 130) for e in p.observe(t0 + timedelta(minutes=m), siblings)]
>>> [(e.child, e.status, e.at.minute) for e in quiet]
[('customer=leaked', 'resolved', 6)]
>>> p.observe(t0 + timedelta(minutes=130), dict(siblings, **{"customer=new": 0.3}))  # a normal newcomer
[]
>>> q = SiblingPrior.from_state(p.to_state()); (q.mean, q.var, q.learned, q.ages) == (p.mean, p.var, p.learned, p.ages)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist

from detectors.statecheck import NUM, fields, mapping


@dataclass(frozen=True, slots=True)
class NewChildSpend:
    """A transition for a child in warm-up: ``firing`` when it opens, ``resolved`` when it ends."""

    child: str
    status: str  # "firing" | "resolved"
    started_at: datetime
    at: datetime
    spend: float
    score: float
    baseline: float  # siblings' typical (median) spend per bucket
    low: float
    high: float


_NORMAL = NormalDist()
_phi = _NORMAL.cdf


class SiblingPrior:
    __slots__ = ("alpha", "warmup", "threshold", "min_ratio", "quiet_buckets", "min_learned", "max_children",
                 "mean", "var", "learned", "ages", "flagged")

    def __init__(self, alpha: float = 0.01, warmup: int = 30, threshold: float = 0.9999, min_ratio: float = 3.0,
                 quiet_buckets: int = 5, min_learned: int = 60, max_children: int = 500) -> None:
        self.alpha = alpha
        self.warmup = warmup  # buckets a child is "new" for (the child's own monitor warms up meanwhile)
        self.threshold = threshold
        self.min_ratio = min_ratio
        self.quiet_buckets = quiet_buckets
        self.min_learned = min_learned  # sibling observations needed before anything is scored
        self.max_children = max_children
        self.mean = 0.0  # of log spend per bucket of established children
        self.var = 0.0
        self.learned = 0
        self.ages: dict[str, int] = {}  # child -> buckets seen (capped at warmup)
        self.flagged: dict[str, tuple[float, int]] = {}  # child -> (started_at epoch s, quiet buckets)

    @property
    def warm(self) -> bool:
        return self.learned >= self.min_learned

    def expected(self) -> tuple[float, float, float]:
        """(typical, low, high) spend per bucket of one established sibling (high: the threshold's quantile)."""
        sd = math.sqrt(max(self.var, 1e-12))
        z = _NORMAL.inv_cdf(self.threshold)
        return math.exp(self.mean), math.exp(self.mean - z * sd), math.exp(self.mean + z * sd)

    def score(self, spend: float) -> float:
        """How unusual ``spend`` per bucket would be for one established sibling (0..1)."""
        if spend <= 0 or not self.warm:
            return 0.0
        sd = math.sqrt(max(self.var, 1e-12))
        return _phi((math.log(spend) - self.mean) / sd)

    def learn(self, spend: float) -> None:
        """One established child's spend in one bucket (zero spend carries no scale: skipped)."""
        if spend <= 0 or not math.isfinite(spend):
            return
        y = math.log(spend)
        if self.learned == 0:
            self.mean, self.var = y, 0.0
        else:
            a = max(self.alpha, 1.0 / (self.learned + 1))  # plain mean/variance first, then exponential
            d = y - self.mean
            self.mean += a * d
            self.var = (1 - a) * (self.var + a * d * d)
        self.learned += 1

    def observe(self, t: datetime, spend_by_child: Mapping[str, float]) -> list[NewChildSpend]:
        """One closed bucket of the parent (at ``t``): score new children, then learn established ones."""
        out: list[NewChildSpend] = []
        typical, low, high = self.expected()
        for child, (started, quiet) in list(self.flagged.items()):
            spend = spend_by_child.get(child, 0.0)
            quiet = quiet + 1 if spend <= high else 0
            if quiet >= self.quiet_buckets:
                del self.flagged[child]
                out.append(NewChildSpend(child, "resolved", datetime.fromtimestamp(started, tz=t.tzinfo), t, spend,
                                         self.score(spend), typical, low, high))
            else:
                self.flagged[child] = (started, quiet)
        new = []
        for child, spend in spend_by_child.items():
            age = self.ages.get(child, 0)
            if age < self.warmup:
                new.append((child, spend))
            elif child not in self.flagged:
                self.learn(spend)
            self.ages[child] = min(age + 1, self.warmup)
        if self.warm:
            for child, spend in new:
                if child in self.flagged:
                    continue
                s = self.score(spend)
                if s >= self.threshold and spend >= self.min_ratio * typical:
                    self.flagged[child] = (t.timestamp(), 0)
                    out.append(NewChildSpend(child, "firing", t, t, spend, s, typical, low, high))
        if len(self.ages) > self.max_children:  # forget the children absent longest (dict order: first seen)
            for child in [c for c in self.ages if c not in spend_by_child and c not in self.flagged][
                    : len(self.ages) - self.max_children]:
                del self.ages[child]
        return out

    # -- table state (streams.state.codec) ---------------------------------------------------
    STATE_TAG = "sibling_prior"
    STATE_VERSION = 1
    _CONFIG = {"alpha": NUM, "warmup": int, "threshold": NUM, "min_ratio": NUM, "quiet_buckets": int,
               "min_learned": int, "max_children": int}

    def to_state(self) -> dict[str, object]:
        return {**{k: getattr(self, k) for k in self._CONFIG}, "mean": self.mean, "var": self.var,
                "learned": self.learned, "ages": dict(self.ages),
                "flagged": {c: [float(st), int(q)] for c, (st, q) in self.flagged.items()}}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> "SiblingPrior":
        fields(state, {**cls._CONFIG, "mean": NUM, "var": NUM, "learned": int, "ages": dict, "flagged": dict})
        p = cls.__new__(cls)
        for k in cls._CONFIG:
            setattr(p, k, state[k])
        p.mean, p.var, p.learned = float(state["mean"]), float(state["var"]), state["learned"]  # type: ignore[arg-type]
        p.ages = mapping(state["ages"], "ages", str, int)
        flagged = mapping(state["flagged"], "flagged", str, list)
        p.flagged = {}
        for child, v in flagged.items():
            if len(v) != 2 or type(v[0]) not in NUM or type(v[1]) is not int:
                raise ValueError(f"field 'flagged' of {child!r} is not [started_at, quiet buckets]")
            p.flagged[child] = (float(v[0]), v[1])
        if p.learned < 0 or p.var < 0 or not math.isfinite(p.mean) or len(p.ages) > 4 * p.max_children + 16:
            raise ValueError("sibling prior state out of range")
        return p

"""A deterministic synthetic day of LLM usage, with an optional injected spike (demo and tests).

>>> day = SyntheticDay(date(2026, 11, 20), minutes=5, seed=1)
>>> events = list(day.events())
>>> len(events) > 0 and all(e["tags"]["team"] in {s.team for s in day.streams} for e in events)
True
>>> events == list(SyntheticDay(date(2026, 11, 20), minutes=5, seed=1).events())
True
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any


@dataclass(frozen=True)
class UsageStream:
    """One steady source of calls: a team's feature on a model."""

    team: str
    feature: str
    model: str
    provider: str
    calls_per_minute: float
    input_tokens: int
    output_tokens: int
    usd_per_m_input: float
    usd_per_m_output: float
    customer: str = "internal"

    @property
    def label(self) -> str:
        return f"{self.team}/{self.feature}/{self.model}"


@dataclass(frozen=True)
class Spike:
    """Multiply a stream's prompt size for a while (prompt bloat: cost per call jumps)."""

    stream: str  # UsageStream.label
    start_minute: int
    minutes: int
    input_multiplier: float


DEFAULT_STREAMS: tuple[UsageStream, ...] = (
    UsageStream("search", "query-rewrite", "gpt-4o-mini", "openai", 30, 600, 120, 0.15, 0.60),
    UsageStream("support", "chat", "claude-sonnet-4", "anthropic", 12, 2500, 400, 3.0, 15.0, "acme"),
    UsageStream("support", "summarise", "gpt-4o-mini", "openai", 6, 4000, 300, 0.15, 0.60, "globex"),
    UsageStream("ads", "copygen", "gpt-4o", "openai", 8, 1200, 350, 2.5, 10.0),
)
DEFAULT_SPIKE = Spike("ads/copygen/gpt-4o", start_minute=14 * 60, minutes=20, input_multiplier=8.0)


@dataclass
class SyntheticDay:
    day: date
    minutes: int = 24 * 60
    seed: int = 7
    streams: tuple[UsageStream, ...] = DEFAULT_STREAMS
    spikes: tuple[Spike, ...] = (DEFAULT_SPIKE,)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.day, time(0), tzinfo=timezone.utc)

    def load(self, minute: int) -> float:
        """Smooth diurnal shape: quiet at night, busy in the afternoon (0.4 .. 1.0)."""
        return 0.7 - 0.3 * math.cos(2 * math.pi * minute / (24 * 60))

    def _multiplier(self, stream: UsageStream, minute: int) -> float:
        m = 1.0
        for s in self.spikes:
            if s.stream == stream.label and s.start_minute <= minute < s.start_minute + s.minutes:
                m *= s.input_multiplier
        return m

    def _poisson(self, lam: float) -> int:
        # Knuth for small rates; normal approximation for large ones.
        if lam > 50:
            return max(0, int(round(self._rng.gauss(lam, math.sqrt(lam)))))
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self._rng.random()
            if p <= limit:
                return k
            k += 1

    def events(self) -> Iterator[dict[str, Any]]:
        self._rng = random.Random(self.seed)
        n = 0
        for minute in range(self.minutes):
            t0 = self.start + timedelta(minutes=minute)
            for s in self.streams:
                for _ in range(self._poisson(s.calls_per_minute * self.load(minute))):
                    n += 1
                    tin = max(1, int(self._rng.lognormvariate(math.log(s.input_tokens), 0.25)
                                     * self._multiplier(s, minute)))
                    tout = max(1, int(self._rng.lognormvariate(math.log(s.output_tokens), 0.25)))
                    cost = (tin * s.usd_per_m_input + tout * s.usd_per_m_output) / 1e6
                    ts = t0 + timedelta(seconds=self._rng.random() * 60)
                    yield {
                        "timestamp": ts.isoformat(), "model": s.model, "provider": s.provider,
                        "input_tokens": tin, "output_tokens": tout, "cost_usd": round(cost, 8),
                        "request_id": f"req-{self.seed}-{n}",
                        "tags": {"team": s.team, "feature": s.feature,
                                 "customer": s.customer, "environment": "production"},
                    }

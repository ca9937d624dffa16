"""The contract every per-series detector meets (river style: ``learn_one`` / ``score_one``).

A detector sees one value per closed bucket of one series. It must be small (target
≤ 2 KB encoded) and pure; its state lives in a Faust table through ``to_state()`` (a dict of
plain data) and a ``from_state(state)`` classmethod, with ``STATE_TAG`` and ``STATE_VERSION``
(registered in :mod:`streams.state.codec`; no pickle).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple, Protocol, runtime_checkable


class Expected(NamedTuple):
    """What the detector thinks is normal right now."""

    baseline: float
    low: float
    high: float


@runtime_checkable
class SeriesDetector(Protocol):
    name: str

    def score_one(self, x: float, t: datetime) -> float:
        """Anomaly score in [0, 1] for ``x`` at ``t``; 0.0 while warming up. Does not learn."""

    def learn_one(self, x: float, t: datetime) -> None:
        """Update the baseline with ``x`` observed at ``t``."""

    def expected(self) -> Expected:
        """Current baseline and expected range (in the series' own units)."""

    @property
    def warmed_up(self) -> bool:
        """True once enough has been seen for a score to mean something."""

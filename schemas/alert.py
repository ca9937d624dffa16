"""Alerts: what an on-call engineer receives when a series misbehaves.

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
>>> a = Alert(series_key="team=a|feature=f|customer=c|model=m|environment=prod",
...     metric="cost_per_inference", detector="ew_zscore", score=0.999, observed=0.2,
...     baseline=0.01, expected_low=0.008, expected_high=0.012, window_start=t,
...     window_end=t, started_at=t)
>>> a.fingerprint == Alert.make_fingerprint(a.series_key, a.metric, t)
True
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from schemas.events import UtcDatetime

Severity = Literal["info", "warning", "critical"]


class Contributor(BaseModel):
    """A sub-key ranked by its $ impact against its own baseline (root cause)."""

    key: str
    impact_usd: float
    observed: float
    baseline: float


class Alert(BaseModel):
    """One incident on one series. The fingerprint makes sinks idempotent."""

    fingerprint: str = ""
    series_key: str
    metric: str
    detector: str
    score: float = Field(ge=0.0, le=1.0)
    severity: Severity = "warning"
    observed: float
    baseline: float
    expected_low: float
    expected_high: float
    window_start: UtcDatetime
    window_end: UtcDatetime
    started_at: UtcDatetime
    status: Literal["firing", "resolved"] = "firing"
    contributors: list[Contributor] = Field(default_factory=list)
    summary: str | None = None  # one line for humans, e.g. a zombie GPU's "idle 95 min"
    runbook_url: str | None = None

    @staticmethod
    def make_fingerprint(series_key: str, metric: str, started_at: datetime) -> str:
        raw = f"{series_key}\x1f{metric}\x1f{started_at.isoformat()}".encode()
        return hashlib.sha256(raw).hexdigest()[:32]

    @model_validator(mode="after")
    def _fill_fingerprint(self) -> "Alert":
        if not self.fingerprint:
            self.fingerprint = self.make_fingerprint(self.series_key, self.metric, self.started_at)
        return self

    @property
    def ratio(self) -> float:
        """Observed over baseline (how many times the normal value)."""
        return self.observed / self.baseline if self.baseline else float("inf")

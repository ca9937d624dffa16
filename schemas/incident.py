"""An incident as stored and shown (database, CLI, Slack): the boundary model.

Built from the dispatcher's state by :func:`detectors.incidents.summary.to_record`.

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 11, 20, 14, tzinfo=timezone.utc)
>>> r = IncidentRecord(id="inc-1", status="firing", title="tokens per request 8.0x on ads/copygen",
...     subject_key="team=ads|feature=copygen|customer=*|model=*|environment=*", metric="tokens_per_request",
...     severity="critical", score=0.99999, observed=8000.0, baseline=1000.0, expected_low=800.0,
...     expected_high=1200.0, started_at=t, updated_at=t)
>>> r.where["team"], r.ratio
('ads', 8.0)
>>> IncidentRecord.model_validate_json(r.model_dump_json()) == r
True
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from schemas.cost import KEY_FIELDS, AllocationKey
from schemas.events import UtcDatetime

IncidentStatus = Literal["pending", "firing", "resolved"]


class EvidenceAlert(BaseModel):
    """One alert of the incident (the subject's own, a roll-up, a sibling, another metric)."""

    fingerprint: str
    series_key: str
    metric: str
    status: str
    score: float
    observed: float
    baseline: float
    started_at: UtcDatetime
    at: UtcDatetime
    summary: str | None = None


class ContributorRow(BaseModel):
    key: str
    excess_usd_per_hour: float


class BudgetState(BaseModel):
    """The budget the incident eats into, if the caller knows it."""

    budget_id: str
    spent_usd: float
    cap_usd: float
    projected_usd: float | None = None
    exhausted_at: UtcDatetime | None = None

    @property
    def fraction(self) -> float:
        return self.spent_usd / self.cap_usd if self.cap_usd else 0.0


class IncidentRecord(BaseModel):
    id: str
    status: IncidentStatus
    title: str
    subject_key: str
    metric: str
    severity: str = "warning"
    score: float
    observed: float
    baseline: float
    expected_low: float
    expected_high: float
    started_at: UtcDatetime
    updated_at: UtcDatetime
    resolved_at: UtcDatetime | None = None
    summary: str | None = None
    excess_usd_per_hour: float | None = Field(None, description="spend above baseline now, $/h (0 once resolved)")
    spend_usd_per_hour: float | None = Field(None, description="the subject's spend now, $/h, when a spend alert says")
    excess_usd_total: float | None = Field(None, description="estimated excess since it started, $")
    contributors: list[ContributorRow] = Field(default_factory=list)
    evidence: list[EvidenceAlert] = Field(default_factory=list)
    alert_count: int = 0
    acked_by: str | None = None
    acked_at: UtcDatetime | None = None
    snoozed_until: UtcDatetime | None = None
    snoozed_by: str | None = None
    resolved_by: str | None = None
    reopened: int = 0
    runbook_url: str | None = None
    budget: BudgetState | None = None
    rev: int = 0

    @property
    def where(self) -> dict[str, str]:
        """Allocation fields of the subject (``*`` where it is a roll-up); ``{"key": ...}`` for other keys."""
        try:
            parts = dict(p.split("=", 1) for p in self.subject_key.split("|"))
        except ValueError:
            return {"key": self.subject_key}
        if not set(KEY_FIELDS) <= parts.keys():
            return {"key": self.subject_key}
        return AllocationKey.parse(self.subject_key).model_dump()

    @property
    def ratio(self) -> float:
        return self.observed / self.baseline if self.baseline else float("inf")

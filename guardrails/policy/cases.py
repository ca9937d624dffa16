"""Policy test cases (``burnguard policy test``) and partial overruns (``policy explain --overrun``).

A case gives the overrun's interesting fields only; the rest take defaults (a ``threshold_100``
crossing on a daily budget at ``at``); ``overrun_usd``/``overrun_pct`` follow from cap, spend
and forecast unless given. ``expect`` names the rule and/or the action (and optionally the
decision and amount) the policy must produce.

>>> c = OverrunCase.model_validate({"tier": "sandbox", "cap_usd": 50, "spend_usd": 50, "forecast_usd": 70})
>>> ov = c.to_overrun()
>>> ov.overrun_usd, ov.overrun_pct, ov.period_start.isoformat(), ov.budget_id
(20.0, 40.0, '2026-01-05T00:00:00+00:00', 'test')
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from guardrails.budget_book import period_bounds
from guardrails.overrun import overrun_amounts
from guardrails.policy.actions import DecisionContext
from schemas.alert import Contributor
from schemas.decision import DecisionAction
from schemas.events import UtcDatetime
from schemas.overrun import BurnRateInfo, Overrun, Trigger

__all__ = ["CasesFile", "Expect", "OverrunCase", "PolicyCase"]

DEFAULT_AT = datetime(2026, 1, 5, 12, tzinfo=timezone.utc)  # a Monday, noon UTC


class OverrunCase(BaseModel):
    """An overrun with defaults for everything a case does not care about."""

    model_config = ConfigDict(extra="forbid")

    overrun_id: str | None = None
    budget_id: str = "test"
    budget_name: str | None = None
    trigger: Trigger = "threshold"
    rule: str = "threshold_100"
    severity: str = "page"
    scope: dict[str, list[str]] = Field(default_factory=dict)
    tier: str | None = None
    environment: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    owner: str | None = None
    approvers: list[str] = Field(default_factory=list)
    period: Literal["day", "week", "month"] = "day"
    period_start: UtcDatetime | None = None
    period_end: UtcDatetime | None = None
    at: UtcDatetime = DEFAULT_AT
    started_at: UtcDatetime | None = None
    cap_usd: float = Field(100.0, ge=0)
    spend_usd: float = Field(100.0, ge=0)
    forecast_usd: float | None = Field(None, ge=0)
    forecast_method: str = "projection"
    exhausted_at: UtcDatetime | None = None
    overrun_usd: float | None = Field(None, ge=0)
    overrun_pct: float | None = Field(None, ge=0)
    basis: Literal["actual", "forecast", "anomaly"] | None = None
    threshold: float | None = None
    burn_rate: BurnRateInfo | float | None = None
    anomaly_score: float | None = Field(None, ge=0, le=1)
    alert_fingerprint: str | None = None
    contributors: list[Contributor] = Field(default_factory=list)

    def to_overrun(self) -> Overrun:
        data: dict[str, Any] = self.model_dump(exclude_none=True)
        start, end = period_bounds(self.period, self.at)
        data.setdefault("period_start", start)
        data.setdefault("period_end", end)
        data.setdefault("started_at", self.at)
        forecast = self.forecast_usd if self.forecast_usd is not None else self.spend_usd
        data["forecast_usd"] = forecast
        usd, pct, basis = overrun_amounts(self.cap_usd, self.spend_usd, forecast)
        data.setdefault("overrun_usd", usd)
        data.setdefault("overrun_pct", pct)
        data.setdefault("basis", basis)
        if self.environment is None and len(self.scope.get("environment", [])) == 1:
            data["environment"] = self.scope["environment"][0]
        if isinstance(self.burn_rate, (int, float)):
            data["burn_rate"] = {"long_rate": float(self.burn_rate), "short_rate": float(self.burn_rate)}
        if self.overrun_id is None:
            raw = self.model_dump_json(exclude={"overrun_id"}).encode()
            data["overrun_id"] = "case-" + hashlib.sha256(raw).hexdigest()[:16]
        return Overrun.model_validate(data)


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str | None = None
    action: str | None = Field(None, description="the rule's action: auto_approve, escalate, page, ...")
    decision: DecisionAction | None = Field(None, description="the decision: grant, escalated, page, throttle, deny")
    amount_usd: float | None = None
    group: str | None = None


class PolicyCase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    overrun: OverrunCase
    granted_usd: float = Field(0.0, ge=0, description="grants already active on the budget")
    granted_by_rule: dict[str, float] = Field(default_factory=dict, description="rule -> USD granted this period")
    now: UtcDatetime | None = Field(None, description="decision time; default: the overrun's time + 1 minute")
    expect: Expect

    def context(self) -> DecisionContext:
        ov_at = self.overrun.at
        return DecisionContext(self.now or ov_at + timedelta(minutes=1), self.granted_usd, dict(self.granted_by_rule))


class CasesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cases: list[PolicyCase] = Field(min_length=1)

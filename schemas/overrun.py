"""Overruns: what guardrail policies decide on (the ``guardrail.overruns`` topic, keyed by budget id).

An overrun is a budget crossing a threshold (``trigger: threshold``, rule ``threshold_80``,
``threshold_100`` ...), a burn-rate rule firing (``trigger: burn_rate``, rule ``fast``,
``slow`` ...), or an anomaly alert with a $ impact on a key a budget covers
(``trigger: anomaly``). Built by :mod:`guardrails.overrun`; ``overrun_id`` is stable, so a
redelivered or recomputed overrun is the same overrun.

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
>>> o = Overrun(overrun_id="ov-1", budget_id="research-sandbox", trigger="threshold", rule="threshold_100",
...             scope={"team": ["research"]}, tier="sandbox", period="day", period_start=t,
...             period_end=t.replace(day=21), at=t, started_at=t, cap_usd=50, spend_usd=55,
...             forecast_usd=80, overrun_usd=30, overrun_pct=60)
>>> o.scope_value("team"), o.scope_value("customer"), o.fraction_spent
('research', None, 1.1)
>>> Overrun.model_validate_json(o.model_dump_json()) == o
True
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.alert import Contributor
from schemas.events import UtcDatetime

Trigger = Literal["threshold", "burn_rate", "anomaly"]
OverrunBasis = Literal["actual", "forecast", "anomaly"]


class BurnRateInfo(BaseModel):
    """The burn rate behind an overrun (1.0 = the even rate that lands exactly on the cap).

    For a burn-rate trigger: the firing rule, its factor, windows and both windows' rates.
    For a threshold trigger: ``long_rate`` is the period-to-date rate, ``short_rate`` the rate
    over the longest rule window, and ``rule``/``factor``/windows are empty.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str | None = None
    factor: float | None = None
    long_window_s: int | None = None
    short_window_s: int | None = None
    long_rate: float
    short_rate: float


class Overrun(BaseModel):
    """One budget overrun, with everything a policy may look at."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    overrun_id: str = Field(min_length=1, max_length=64)
    budget_id: str = Field(min_length=1, max_length=128)
    budget_name: str | None = None
    trigger: Trigger
    rule: str = Field(min_length=1, max_length=64, description="threshold_100, fast, slow, anomaly detector ...")
    severity: str = "page"
    scope: dict[str, list[str]] = Field(default_factory=dict,
                                        description="the budget's scope: dimension -> allowed values")
    tier: str | None = None
    environment: str | None = Field(None, description="the scope's environment when it names exactly one")
    labels: dict[str, str] = Field(default_factory=dict)
    owner: str | None = None
    approvers: list[str] = Field(default_factory=list, description="the budget's approver groups")
    period: Literal["day", "week", "month"]
    period_start: UtcDatetime
    period_end: UtcDatetime
    at: UtcDatetime = Field(description="event time the overrun was detected")
    started_at: UtcDatetime = Field(description="when its incident opened (threshold: the crossing)")
    cap_usd: float = Field(ge=0)
    spend_usd: float = Field(ge=0, description="period to date")
    forecast_usd: float = Field(ge=0, description="projected end-of-period spend")
    forecast_method: str = "projection"
    exhausted_at: UtcDatetime | None = Field(None, description="projected exhaustion (None: not this period)")
    overrun_usd: float = Field(ge=0, description="spend (actual or forecast, the larger) above the cap")
    overrun_pct: float = Field(ge=0, description="overrun_usd as a percentage of the cap")
    basis: OverrunBasis = "actual"
    threshold: float | None = Field(None, description="fraction of the cap, threshold triggers only")
    burn_rate: BurnRateInfo | None = None
    anomaly_score: float | None = Field(None, ge=0, le=1)
    alert_fingerprint: str | None = None
    contributors: list[Contributor] = Field(default_factory=list, description="top contributors by $ impact")

    def scope_value(self, dim: str) -> str | None:
        """The single value a scope dimension names, or ``None`` (absent or several values)."""
        vals = self.scope.get(dim)
        return vals[0] if vals and len(vals) == 1 else None

    @property
    def fraction_spent(self) -> float:
        return round(self.spend_usd / self.cap_usd, 9) if self.cap_usd else float("inf")


def overrun_json_schema() -> dict:
    """JSON Schema of an overrun message (``burnguard schemas export``)."""
    return Overrun.model_json_schema()

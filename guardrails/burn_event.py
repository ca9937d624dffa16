"""What a budget's tracker reports: a burn-rate or threshold transition (:class:`BurnEvent`).

The guardrail path (overruns), the alert path and ``burnguard budgets`` all read these; the
tracker that makes them is :mod:`guardrails.burn_tracker`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal


def threshold_name(fraction: float) -> str:
    """Rule name of a period-to-date threshold event.

    >>> threshold_name(0.8), threshold_name(1.0), threshold_name(0.125)
    ('threshold_80', 'threshold_100', 'threshold_12.5')
    """
    pct = round(fraction * 100, 6)
    return f"threshold_{int(pct)}" if pct == int(pct) else f"threshold_{pct:g}"


@dataclass(frozen=True, slots=True)
class BurnEvent:
    """A budget transition for the alert / guardrail path.

    ``kind`` is ``burn_rate`` (rule ``fast``, ``slow``, ...; rates are the rule's long and
    short window burn rates) or ``threshold`` (rule ``threshold_80`` ...; ``long_rate`` is
    the period-to-date burn rate, ``short_rate`` the burn rate over the forecast window).
    ``started_at`` is when the incident opened (a ``resolved`` event repeats its firing's),
    so ``(budget_id, rule, started_at)`` identifies an incident (fingerprint).
    """

    budget_id: str
    rule: str
    severity: str
    status: Literal["firing", "resolved"]
    at: datetime
    long_rate: float
    short_rate: float
    period_spent_usd: float
    cap_usd: float
    projected_spend_usd: float  # at the end of the period
    projected_exhaustion: datetime | None  # None: not exhausted within the period at the current rate
    started_at: datetime
    period_start: datetime
    period_end: datetime
    kind: Literal["burn_rate", "threshold"] = "burn_rate"
    threshold: float | None = None  # fraction of the cap, threshold events only

    @property
    def fraction_spent(self) -> float:
        return self.period_spent_usd / self.cap_usd if self.cap_usd else math.inf

"""Grants: what raises a budget's effective cap, and how much a rule may still grant (pure).

A ``period`` grant counts in the budget period it was made for, until ``expires_at``; an
``expand`` grant (a pilot's higher cap) counts in every period and has no expiry.

- effective cap = cap + the grants active now (:func:`effective_cap`);
- a rule's limit counts everything it granted the budget this period, expired or not, plus its
  expansions (:func:`granted_by_rule`), so two overruns decided one after the other (the store
  serialises them per budget) never grant more than the rule allows.

>>> from datetime import datetime, timezone, timedelta
>>> p0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
>>> g1 = Grant("g1", "lab", "small", 30.0, "period", p0, p0 + timedelta(days=1), p0, p0 + timedelta(hours=12))
>>> g2 = Grant("g2", "lab", "small", 20.0, "period", p0, p0 + timedelta(days=1), p0, p0 + timedelta(hours=2))
>>> now = p0 + timedelta(hours=6)
>>> effective_cap(50.0, [g1, g2], now), dict(granted_by_rule([g1, g2], p0))
(80.0, {'small': 50.0})
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = ["Grant", "GrantKind", "active_grants_usd", "effective_cap", "granted_by_rule", "is_active"]

GrantKind = Literal["period", "expand"]


@dataclass(frozen=True, slots=True)
class Grant:
    grant_id: str  # the decision id that made it
    budget_id: str
    rule: str
    amount_usd: float
    kind: GrantKind
    period_start: datetime
    period_end: datetime
    created_at: datetime
    expires_at: datetime | None = None
    overrun_id: str | None = None
    decided_by: str = "policy"


def is_active(g: Grant, now: datetime) -> bool:
    """Whether ``g`` raises the cap at ``now``."""
    if g.expires_at is not None and now >= g.expires_at:
        return False
    return g.kind == "expand" or g.period_start <= now < g.period_end


def active_grants_usd(grants: Iterable[Grant], now: datetime) -> float:
    return round(sum(g.amount_usd for g in grants if is_active(g, now)), 6)


def effective_cap(cap_usd: float, grants: Iterable[Grant], now: datetime) -> float:
    """The cap the budget has at ``now``: its own plus the active grants."""
    return round(cap_usd + active_grants_usd(grants, now), 6)


def granted_by_rule(grants: Iterable[Grant], period_start: datetime) -> dict[str, float]:
    """Rule -> USD it granted the budget in the period starting ``period_start`` (any expiry), plus expansions."""
    out: dict[str, float] = defaultdict(float)
    for g in grants:
        if g.kind == "expand" or g.period_start == period_start:
            out[g.rule] = round(out[g.rule] + g.amount_usd, 6)
    return dict(out)

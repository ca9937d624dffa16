"""A rule's ``match``: which budgets it is for, by budget id, scope fields, tier, environment and labels.

Every field given must match (AND); a value or a list of values (any of them). ``budget``
takes shell-style patterns (``search-*``). A scope field (``team``, ``feature``,
``customer``, ``model``) matches when the budget's scope names that dimension and every value
it allows is in the list (a budget for all teams is not a budget of team ``search``).
``tier`` is the budget's tier, ``environment`` the single environment its scope names.

>>> from datetime import datetime, timezone
>>> from schemas.overrun import Overrun
>>> t = datetime(2026, 11, 20, tzinfo=timezone.utc)
>>> ov = Overrun(overrun_id="o", budget_id="search-lab", trigger="threshold", rule="threshold_100",
...              scope={"team": ["search"], "environment": ["dev"]}, tier="sandbox", environment="dev",
...              period="day", period_start=t, period_end=t, at=t, started_at=t, cap_usd=50, spend_usd=50,
...              forecast_usd=60, overrun_usd=10, overrun_pct=20)
>>> Match.model_validate({"tier": ["sandbox", "pilot"], "budget": "search-*"}).failures(ov)
[]
>>> [f.text() for f in Match.model_validate({"team": "ads", "labels": {"owner": "x"}}).failures(ov)]
["match.team: ['search'] not in ['ads']", "match.labels.owner: missing not in ['x']"]
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, field_validator

from schemas.overrun import Overrun

__all__ = ["Failure", "Match", "SCOPE_FIELDS"]

SCOPE_FIELDS: tuple[str, ...] = ("team", "feature", "customer", "model")
StrOrList = str | list[str]


def _as_list(v: StrOrList | None) -> list[str] | None:
    return None if v is None else [v] if isinstance(v, str) else list(v)


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a rule did not apply: the field, what it needs and the overrun's actual value."""

    field: str
    expected: str
    actual: str

    def text(self) -> str:
        return f"{self.field}: {self.actual} {self.expected}" if self.expected else f"{self.field}: {self.actual}"


class Match(BaseModel):
    """Budget selectors of a rule (all optional; an empty match matches every budget)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    budget: StrOrList | None = None
    team: StrOrList | None = None
    feature: StrOrList | None = None
    customer: StrOrList | None = None
    model: StrOrList | None = None
    tier: StrOrList | None = None
    environment: StrOrList | None = None
    labels: dict[str, StrOrList] | None = None

    @field_validator("budget", "team", "feature", "customer", "model", "tier", "environment")
    @classmethod
    def _non_empty(cls, v: StrOrList | None) -> StrOrList | None:
        if v is not None and (v == "" or (isinstance(v, list) and (not v or any(not x for x in v)))):
            raise ValueError("give a non-empty value or list of values (omit the field to match anything)")
        return v

    def is_empty(self) -> bool:
        return all(getattr(self, f) is None for f in type(self).model_fields)

    def failures(self, ov: Overrun) -> list[Failure]:
        """Every field that does not match (empty: the match holds)."""
        out: list[Failure] = []
        budgets = _as_list(self.budget)
        if budgets is not None and not any(fnmatchcase(ov.budget_id, p) for p in budgets):
            out.append(Failure("match.budget", f"matches none of {budgets}", repr(ov.budget_id)))
        for dim in SCOPE_FIELDS:
            allowed = _as_list(getattr(self, dim))
            if allowed is None:
                continue
            have = ov.scope.get(dim)
            if not have or not set(have) <= set(allowed):
                out.append(Failure(f"match.{dim}", f"not in {allowed}", str(have) if have else "any (not scoped)"))
        for name, actual in (("tier", ov.tier), ("environment", ov.environment)):
            allowed = _as_list(getattr(self, name))
            if allowed is not None and actual not in allowed:
                out.append(Failure(f"match.{name}", f"not in {allowed}", repr(actual) if actual else "missing"))
        for key, want in (self.labels or {}).items():
            allowed = _as_list(want) or []
            actual = ov.labels.get(key)
            if actual not in allowed:
                out.append(Failure(f"match.labels.{key}", f"not in {allowed}", repr(actual) if actual else "missing"))
        return out

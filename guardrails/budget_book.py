"""The budget book: hierarchical, tiered money budgets from YAML, and which ones a key spends from.

A budget has a stable ``id``, a ``scope`` (a match on team, feature, customer, model,
environment and tier; an omitted dimension matches anything, so an empty scope is the
org-level budget), a calendar ``period`` in UTC (``day``, ``week`` starting Monday,
``month``), a ``cap_usd``, burn-rate ``rules`` (default
:data:`guardrails.burn_rate.DEFAULT_RULES`), period-to-date ``thresholds`` (fractions of
the cap, default ``[0.8, 1.0]``) and optional ``owner``/``approvers`` group names. A
budget may name a ``parent`` whose scope must be strictly wider (org → team →
feature/customer), and a ``tier`` (experiment maturity: sandbox, pilot, production)
whose settings fill what the budget leaves out, then the file's ``defaults``.

>>> book = BudgetBook.from_yaml_text('''
... tiers:
...   sandbox: {period: day, cap_usd: 20}
...   production: {period: month}
... budgets:
...   - {id: org, cap_usd: 100000}
...   - {id: search, parent: org, tier: production, scope: {team: search}, cap_usd: 20000}
...   - {id: search-lab, parent: search, tier: sandbox, scope: {team: search, environment: dev}}
... ''')
>>> [b.id for b in book.matching({"team": "search", "environment": "dev"})]
['org', 'search', 'search-lab']
>>> [b.id for b in book.matching("team=ads|feature=x|customer=c|model=m|environment=production")]
['org']
>>> lab = book.get("search-lab")
>>> lab.period, lab.cap_usd, lab.thresholds, [r.name for r in lab.rules]
('day', 20.0, (0.8, 1.0), ['fast', 'slow'])
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from guardrails.burn_rate import DEFAULT_RULES, Budget, BurnRule
from schemas.cost import KEY_FIELDS, AllocationKey, Source
from schemas.events import UNKNOWN, as_utc
from schemas.yamlconf import ConfigError, load_yaml_file, load_yaml_text

__all__ = ["BudgetBook", "BudgetSpec", "BudgetsFile", "ConfigError", "DEFAULT_BUDGETS_PATH",
           "DEFAULT_THRESHOLDS", "DEFAULT_TIERS", "MATCH_FIELDS", "Period", "period_bounds"]

DEFAULT_BUDGETS_PATH = Path(__file__).with_name("budgets.yaml")
Period = Literal["day", "week", "month"]
#: Dimensions a scope can match on: the allocation key's fields, then the record's tier.
MATCH_FIELDS: tuple[str, ...] = (*KEY_FIELDS, "tier")
DEFAULT_TIERS: tuple[str, ...] = ("sandbox", "pilot", "production")
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.8, 1.0)
DEFAULT_PERIOD: Period = "month"
#: Usage a budget counts unless it says otherwise: metered LLM and GPU spend, not invoice rows (FOCUS
#: billing restates the same calls hours later; a budget that counts both would count them twice).
DEFAULT_SOURCES: tuple[str, ...] = ("llm", "gpu")
#: Memoised ``matching`` results kept before the cache is cleared (bounded memory).
CACHE_SIZE = 65_536
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


def period_bounds(period: Period, t: datetime) -> tuple[datetime, datetime]:
    """The calendar period (UTC) containing ``t``: ``[start, end)``; naive times are UTC.

    >>> t = datetime(2026, 11, 25, 13, 5, tzinfo=timezone.utc)       # a Wednesday
    >>> [tuple(x.strftime("%a %d %H:%M") for x in period_bounds(p, t)) for p in ("day", "week", "month")]
    [('Wed 25 00:00', 'Thu 26 00:00'), ('Mon 23 00:00', 'Mon 30 00:00'), ('Sun 01 00:00', 'Tue 01 00:00')]
    """
    t = as_utc(t)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        return start, (start + timedelta(days=32)).replace(day=1)
    raise ValueError(f"unknown period {period!r}")


# --------------------------------------------------------------------------- config (YAML)


def _err(loc: tuple[Any, ...], msg: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("value_error", msg), loc=loc, input=value)


class RuleConf(BaseModel):
    """A burn-rate rule: page when both windows burn at ``factor`` times the even rate."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    long_s: int = Field(gt=0, description="long window, seconds (a multiple of 60)")
    short_s: int = Field(gt=0, description="short window, seconds (a multiple of 60)")
    factor: float = Field(gt=0)
    severity: str = Field("page", min_length=1)

    @model_validator(mode="after")
    def _windows(self) -> "RuleConf":
        errors = [_err((name,), f"{name} must be a multiple of 60 (1-minute buckets)", getattr(self, name))
                  for name in ("long_s", "short_s") if getattr(self, name) % 60]
        if not errors and self.short_s >= self.long_s:
            errors.append(_err(("short_s",), "short_s must be shorter than long_s", self.short_s))
        if self.long_s > 7 * 86400:
            errors.append(_err(("long_s",), "long_s is at most 7 days (604800)", self.long_s))
        if errors:
            raise ValidationError.from_exception_data("RuleConf", errors)
        return self

    def to_rule(self) -> BurnRule:
        return BurnRule(self.name, self.long_s, self.short_s, self.factor, self.severity)


StrOrList = str | list[str]


def _names(v: StrOrList | None) -> tuple[str, ...] | None:
    if v is None:
        return None
    return (v,) if isinstance(v, str) else tuple(v)


class BudgetSettings(BaseModel):
    """Settings a budget, a tier or the file's ``defaults`` may give."""

    model_config = ConfigDict(extra="forbid")

    period: Period | None = None
    cap_usd: float | None = Field(None, gt=0, allow_inf_nan=False)
    rules: list[RuleConf] | None = None
    thresholds: list[float] | None = Field(None, description="fractions of the cap, e.g. [0.5, 0.8, 1.0]")
    owner: str | None = Field(None, min_length=1)
    approvers: StrOrList | None = None
    sources: list[Source] | None = Field(
        None, min_length=1, description="which usage counts: llm and gpu (metered, the default) and/or billing "
                                        "(invoice rows, which restate metered usage: count one or the other)")

    @field_validator("rules")
    @classmethod
    def _unique_rules(cls, v: list[RuleConf] | None) -> list[RuleConf] | None:
        if v is not None:
            names = [r.name for r in v]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"duplicate rule name(s) {dup}")
        return v

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            if any(not (0 < x <= 10) for x in v):
                raise ValueError("each threshold is a fraction of the cap in (0, 10]")
            if len(set(v)) != len(v):
                raise ValueError("duplicate thresholds")
            v = sorted(v)
        return v

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, v: StrOrList | None) -> StrOrList | None:
        if v is not None and (v == "" or (isinstance(v, list) and (not v or any(not a for a in v)))):
            raise ValueError("approvers are non-empty group names")
        return v


class Scope(BaseModel):
    """What spend a budget covers: each given dimension must equal the value (or one of the list)."""

    model_config = ConfigDict(extra="forbid")

    team: StrOrList | None = None
    feature: StrOrList | None = None
    customer: StrOrList | None = None
    model: StrOrList | None = None
    environment: StrOrList | None = None
    tier: StrOrList | None = None

    @field_validator("*")
    @classmethod
    def _non_empty(cls, v: StrOrList | None) -> StrOrList | None:
        if v is not None and (v == "" or (isinstance(v, list) and (not v or any(not x for x in v)))):
            raise ValueError("give a non-empty value or list of values (omit the field to match anything)")
        return v

    def sets(self) -> dict[str, frozenset[str]]:
        return {f: frozenset(_names(getattr(self, f)) or ()) for f in MATCH_FIELDS if getattr(self, f) is not None}


class BudgetConf(BudgetSettings):
    """One budget as written in the file."""

    id: str
    name: str | None = None
    parent: str | None = None
    tier: str | None = None
    scope: Scope = Field(default_factory=Scope)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError("id: 1-128 characters, letters, digits and . _ : / - (starting with a letter or digit)")
        return v


class BudgetsFile(BaseModel):
    """The whole ``budgets.yaml``: tiers, defaults and the budgets, cross-checked."""

    model_config = ConfigDict(extra="forbid")

    version: int | str = 1
    tiers: dict[str, BudgetSettings] = Field(default_factory=lambda: {t: BudgetSettings() for t in DEFAULT_TIERS})
    defaults: BudgetSettings = Field(default_factory=BudgetSettings)
    budgets: list[BudgetConf] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_check(self) -> "BudgetsFile":
        errors: list[InitErrorDetails] = []
        seen: dict[str, int] = {}
        for i, b in enumerate(self.budgets):
            if b.id in seen:
                errors.append(_err(("budgets", i, "id"), f"duplicate budget id {b.id!r} (first at budgets.{seen[b.id]})",
                                   b.id))
            else:
                seen[b.id] = i
            if b.tier is not None and b.tier not in self.tiers:
                errors.append(_err(("budgets", i, "tier"), f"unknown tier {b.tier!r}; known: {sorted(self.tiers)}",
                                   b.tier))
            for t in _names(b.scope.tier) or ():
                if t not in self.tiers:
                    errors.append(_err(("budgets", i, "scope", "tier"),
                                       f"unknown tier {t!r}; known: {sorted(self.tiers)}", t))
            tier = self.tiers.get(b.tier) if b.tier else None
            if all(s.cap_usd is None for s in (b, tier, self.defaults) if s is not None):
                errors.append(_err(("budgets", i, "cap_usd"),
                                   "no cap_usd: set it on the budget, its tier or the defaults", None))
        for i, b in enumerate(self.budgets):
            if b.parent is None:
                continue
            if b.parent not in seen:
                errors.append(_err(("budgets", i, "parent"), f"unknown parent budget {b.parent!r}", b.parent))
                continue
            parent = self.budgets[seen[b.parent]]
            if b.parent == b.id or not _narrower(b.scope.sets(), parent.scope.sets()):
                errors.append(_err(("budgets", i, "scope"),
                                   f"scope must be narrower than its parent {b.parent!r} "
                                   f"({_show(parent.scope.sets())}): keep each of its dimensions "
                                   f"(same or fewer values) and restrict at least one more", b.parent))
        if errors:
            raise ValidationError.from_exception_data("BudgetsFile", errors)
        return self


def _narrower(child: Mapping[str, frozenset[str]], parent: Mapping[str, frozenset[str]]) -> bool:
    """Every spend the child matches, the parent matches too, and the two are not the same scope."""
    if any(d not in child or not child[d] <= vals for d, vals in parent.items()):
        return False
    return dict(child) != dict(parent)


def _show(scope: Mapping[str, frozenset[str]]) -> str:
    if not scope:
        return "scope: everything"
    return "scope: {" + ", ".join(f"{d}: {sorted(v)}" for d, v in scope.items()) + "}"


# --------------------------------------------------------------------------- resolved budgets


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """A budget with its tier and defaults applied: what the tracker and guardrails use."""

    id: str
    cap_usd: float
    period: Period
    rules: tuple[BurnRule, ...]
    thresholds: tuple[float, ...]
    scope: tuple[tuple[str, tuple[str, ...]], ...]  # (dimension, allowed values), in MATCH_FIELDS order
    parent: str | None = None
    tier: str | None = None
    owner: str | None = None
    approvers: tuple[str, ...] = ()
    name: str | None = None
    level: int = 0  # 0 for a budget without a parent, parent's level + 1 otherwise
    sources: tuple[str, ...] = DEFAULT_SOURCES  # usage sources whose spend counts (see BudgetSettings.sources)

    def matches(self, values: Sequence[str]) -> bool:
        """Whether a key's values (in :data:`MATCH_FIELDS` order) fall in the scope."""
        for dim, allowed in self.scope:
            if values[MATCH_FIELDS.index(dim)] not in allowed:
                return False
        return True

    def period_bounds(self, t: datetime) -> tuple[datetime, datetime]:
        return period_bounds(self.period, t)

    def budget_at(self, t: datetime) -> Budget:
        """The burn-rate :class:`~guardrails.burn_rate.Budget` of the period containing ``t``.

        >>> s = BudgetSpec("b", 3000.0, "month", DEFAULT_RULES, DEFAULT_THRESHOLDS, ())
        >>> s.budget_at(datetime(2026, 11, 5)).period_s / 86400
        30.0
        """
        start, end = self.period_bounds(t)
        return Budget(self.cap_usd, (end - start).total_seconds())


def _resolve(conf: BudgetsFile) -> tuple[BudgetSpec, ...]:
    by_id = {b.id: b for b in conf.budgets}

    def level(b: BudgetConf) -> int:
        n = 0
        while b.parent is not None and n <= len(by_id):
            b, n = by_id[b.parent], n + 1
        return n

    specs = []
    for b in conf.budgets:
        layers = [b] + ([conf.tiers[b.tier]] if b.tier else []) + [conf.defaults]

        def pick(name: str, layers: list[BudgetSettings] = layers) -> Any:
            return next((getattr(s, name) for s in layers if getattr(s, name) is not None), None)

        rules = pick("rules")
        thresholds = pick("thresholds")
        scope = b.scope.sets()
        specs.append(BudgetSpec(
            id=b.id, cap_usd=float(pick("cap_usd")), period=pick("period") or DEFAULT_PERIOD,
            rules=tuple(r.to_rule() for r in rules) if rules is not None else DEFAULT_RULES,
            thresholds=tuple(thresholds) if thresholds is not None else DEFAULT_THRESHOLDS,
            scope=tuple((d, tuple(sorted(scope[d]))) for d in MATCH_FIELDS if d in scope),
            parent=b.parent, tier=b.tier, owner=pick("owner"), approvers=_names(pick("approvers")) or (),
            name=b.name, level=level(b), sources=tuple(pick("sources") or DEFAULT_SOURCES)))
    return tuple(specs)


@lru_cache(maxsize=CACHE_SIZE)
def _parse_key(key: str) -> tuple[str, ...]:
    k = AllocationKey.parse(key)
    return tuple(getattr(k, f) for f in KEY_FIELDS)


_KEY_DEFAULTS: dict[str, str] = {f: AllocationKey.model_fields[f].default for f in KEY_FIELDS}


class BudgetBook:
    """All budgets of a config file, and a memoised lookup of the budgets a key spends from."""

    __slots__ = ("specs", "version", "source", "_by_id", "_matchers", "_cache")

    def __init__(self, specs: Sequence[BudgetSpec], version: int | str = 1, source: str = "<memory>") -> None:
        self.specs: tuple[BudgetSpec, ...] = tuple(specs)
        self.version = version
        self.source = source
        self._by_id = {s.id: s for s in self.specs}
        # (spec, ((index in the values tuple, allowed set), ...)) for a tight matching loop
        self._matchers = tuple((s, tuple((MATCH_FIELDS.index(d), frozenset(v)) for d, v in s.scope))
                               for s in self.specs)
        self._cache: dict[tuple[str, ...], tuple[BudgetSpec, ...]] = {}

    @classmethod
    def from_file(cls, conf: BudgetsFile, source: str = "<memory>") -> "BudgetBook":
        return cls(_resolve(conf), conf.version, source)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "BudgetBook":
        """Read a budgets file (default: the shipped ``budgets.yaml``).

        Raises :class:`ConfigError` ``file:line: field: problem`` for anything invalid.
        """
        p = Path(path) if path else DEFAULT_BUDGETS_PATH
        return cls.from_file(load_yaml_file(p, BudgetsFile), str(p))

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<string>") -> "BudgetBook":
        return cls.from_file(load_yaml_text(text, BudgetsFile, source=source), source)

    def __len__(self) -> int:
        return len(self.specs)

    def __iter__(self) -> Iterator[BudgetSpec]:
        return iter(self.specs)

    def __contains__(self, budget_id: object) -> bool:
        return budget_id in self._by_id

    def get(self, budget_id: str) -> BudgetSpec | None:
        return self._by_id.get(budget_id)

    def children(self, budget_id: str) -> list[BudgetSpec]:
        return [s for s in self.specs if s.parent == budget_id]

    def ancestors(self, budget_id: str) -> list[BudgetSpec]:
        """Parent, grandparent, ... of a budget (nearest first)."""
        out: list[BudgetSpec] = []
        s = self._by_id.get(budget_id)
        while s is not None and s.parent is not None and len(out) < len(self.specs):
            s = self._by_id.get(s.parent)
            if s is not None:
                out.append(s)
        return out

    def matching(self, key: AllocationKey | Mapping[str, str] | str,
                 tier: str | None = None) -> list[BudgetSpec]:
        """Every budget whose scope covers ``key`` (org, team, feature ... levels), in file order.

        ``key`` is an :class:`AllocationKey`, its string form (a bucket's ``key``) or a
        mapping (missing dimensions take the allocation defaults; a ``tier`` entry is used
        when ``tier`` is not given). An unknown tier (``None``) matches no tier-scoped budget.
        Results are memoised on the (team, feature, customer, model, environment, tier) tuple.
        """
        if isinstance(key, str):
            values = _parse_key(key)
        elif isinstance(key, AllocationKey):
            values = tuple(getattr(key, f) for f in KEY_FIELDS)
        else:
            values = tuple(str(key.get(f, _KEY_DEFAULTS[f])) for f in KEY_FIELDS)
            if tier is None:
                tier = key.get("tier")
        values = (*values, tier if tier is not None else UNKNOWN)
        hit = self._cache.get(values)
        if hit is None:
            hit = tuple(s for s, tests in self._matchers if all(values[i] in allowed for i, allowed in tests))
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[values] = hit
        return list(hit)

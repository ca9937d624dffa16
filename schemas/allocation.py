"""Allocation: who and what a cost belongs to, from an event's tags and YAML mapping rules.

Dimensions are team, feature, customer, model, environment and tier. Each is taken, in
order, from (1) the first non-empty tag listed for it under ``tag_keys``, (2) the first
rule that matches and sets it (a rule only fills dimensions still unset, unless it says
``override: true``), (3) ``defaults``; spend with no team is ``unallocated``.

>>> rules = AllocationRules.model_validate({"rules": [
...     {"match": {"key": "namespace", "regex": "^team-(?P<team>[a-z]+)$"}, "set": {"team": "{team}"}},
...     {"match": {"key": "api_key_alias", "prefix": "search-"}, "set": {"feature": "search"}}]})
>>> a = rules.allocate({"namespace": "team-ml", "api_key_alias": "search-prod-1"}, model="gpt-4o")
>>> a.team, a.feature, a.customer, a.model, a.environment, a.tier
('ml', 'search', 'unknown', 'gpt-4o', 'production', 'unknown')
>>> rules.allocate({}).team
'unallocated'
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from schemas.events import UNALLOCATED, UNKNOWN
from schemas.yamlconf import ConfigError, load_yaml_file

__all__ = ["Allocation", "AllocationRules", "ConfigError", "DEFAULT_RULES_PATH", "DIMENSIONS",
           "Match", "Rule", "tag_value"]

DEFAULT_RULES_PATH = Path(__file__).with_name("allocation.yaml")
Dimension = Literal["team", "feature", "customer", "model", "environment", "tier"]
DIMENSIONS: tuple[str, ...] = ("team", "feature", "customer", "model", "environment", "tier")
BUILTIN_DEFAULTS: dict[str, str] = {"team": UNALLOCATED, "feature": UNKNOWN, "customer": UNKNOWN,
                                    "model": UNKNOWN, "environment": "production", "tier": UNKNOWN}
#: Tag values that mean "not set".
_UNSET = frozenset({"", UNKNOWN, UNALLOCATED, "none", "null"})
MAX_VALUE_LEN = 128


def tag_value(v: Any) -> str | None:
    """A tag value as a dimension value: scalars as stripped text (max 128 chars), else ``None``.

    >>> tag_value(" search "), tag_value(42), tag_value({"a": 1}), tag_value("unknown")
    ('search', '42', None, None)
    """
    if isinstance(v, str):
        s = v.strip()
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        s = str(v)
    else:
        return None
    if s.lower() in _UNSET:
        return None
    return s[:MAX_VALUE_LEN]


CACHE_SIZE = 65_536


class Allocation(NamedTuple):
    team: str
    feature: str
    customer: str
    model: str
    environment: str
    tier: str


class Match(BaseModel):
    """A test on one tag (or, if no such tag, on a dimension resolved so far or its default)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    key: str = Field(min_length=1)
    equals: str | None = None
    prefix: str | None = None
    regex: str | None = None
    any_of: list[str] | None = Field(None, alias="in")
    _pattern: re.Pattern[str] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _one_test(self) -> "Match":
        given = [n for n in ("equals", "prefix", "regex", "any_of") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of equals, prefix, regex, in")
        if self.regex is not None:
            try:
                self._pattern = re.compile(self.regex)
            except re.error as err:
                raise ValueError(f"invalid regex {self.regex!r}: {err}") from None
        return self

    @property
    def pattern(self) -> re.Pattern[str] | None:
        """The compiled ``regex`` (``None`` for the other tests)."""
        return self._pattern

    @property
    def groups(self) -> set[str]:
        return set(self._pattern.groupindex) if self._pattern is not None else set()

    def test(self, value: str) -> dict[str, str] | None:
        """Named groups (empty for non-regex tests) if ``value`` matches, else ``None``."""
        if self._pattern is not None:
            m = self._pattern.search(value)
            return {k: v for k, v in m.groupdict().items() if v is not None} if m else None
        if self.equals is not None:
            return {} if value == self.equals else None
        if self.prefix is not None:
            return {} if value.startswith(self.prefix) else None
        return {} if self.any_of is not None and value in self.any_of else None


class Rule(BaseModel):
    """When ``match`` holds, set dimensions; values may use ``{value}`` and regex groups."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    match: Match
    set: dict[Dimension, str] = Field(min_length=1)
    override: bool = False

    @model_validator(mode="after")
    def _placeholders(self) -> "Rule":
        allowed = self.match.groups | {"value"}
        for dim, template in self.set.items():
            try:
                names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
            except ValueError as err:
                raise ValueError(f"set.{dim}: bad template {template!r}: {err}") from None
            unknown = names - allowed
            if unknown:
                raise ValueError(f"set.{dim}: unknown placeholder(s) {sorted(unknown)}; "
                                 f"allowed: {sorted(allowed)}")
        return self


def _default_tag_keys() -> dict[str, list[str]]:
    return {d: [d] for d in DIMENSIONS}


class AllocationRules(BaseModel):
    """Mapping from tags to allocation dimensions. Build with :meth:`load` or ``model_validate``."""

    model_config = ConfigDict(extra="forbid")

    version: int | str = 1
    tag_keys: dict[Dimension, list[str]] = Field(
        default_factory=_default_tag_keys,
        description="tag keys read per dimension, first non-empty wins; an unlisted dimension reads "
                    "the tag of its own name, [] reads none")
    defaults: dict[Dimension, str] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    _keys: tuple[tuple[str, tuple[str, ...]], ...] = PrivateAttr(())
    _defaults: dict[str, str] = PrivateAttr(default_factory=dict)
    _relevant: frozenset[str] = PrivateAttr(frozenset())
    _cache: dict[tuple[Any, ...], Allocation] = PrivateAttr(default_factory=dict)
    # the rules as plain tuples: (key, regex, equals, prefix, in, set items, override); and each dimension's
    # default as a tested value. Read through __pydantic_private__ once per call: a pydantic private attribute
    # read costs a __getattr__ fallback each time, and this is on the per-key path.
    _plan: tuple[tuple[Any, ...], ...] = PrivateAttr(())
    _dim_defaults: dict[str, str | None] = PrivateAttr(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "AllocationRules":
        """Read rules (default: the shipped ``allocation.yaml``); errors give file:line: field."""
        return load_yaml_file(path or DEFAULT_RULES_PATH, cls)

    @model_validator(mode="after")
    def _prepare(self) -> "AllocationRules":
        self._keys = tuple((d, tuple(self.tag_keys.get(d, [d]))) for d in DIMENSIONS)  # type: ignore[arg-type]
        self._defaults = {d: self.defaults.get(d, BUILTIN_DEFAULTS[d]) for d in DIMENSIONS}  # type: ignore[call-overload]
        relevant = [k for _, keys in self._keys for k in keys] + [r.match.key for r in self.rules]
        self._relevant = frozenset(relevant)
        self._cache = {}
        self._plan = tuple((r.match.key, r.match.pattern, r.match.equals, r.match.prefix, r.match.any_of,
                            tuple(r.set.items()), r.override) for r in self.rules)
        self._dim_defaults = {d: tag_value(v) for d, v in self._defaults.items()}
        return self

    def _dim_default(self, key: str) -> str | None:
        d = self._defaults.get(key)
        return tag_value(d) if d is not None else None

    def allocate(self, tags: Mapping[str, Any], model: str | None = None) -> Allocation:
        """Resolve all dimensions for one event. ``model`` (the event's own) beats a model tag.

        Results are memoised on the scalar tags the rules read (non-scalars never count).
        """
        priv = self.__pydantic_private__
        rel = priv["_relevant"]
        key = (model, *[(k, v) for k, v in tags.items() if k in rel and isinstance(v, (str, int, float))])
        cache = priv["_cache"]
        hit = cache.get(key)
        if hit is not None:
            return hit
        result = self._allocate(tags, model)
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        cache[key] = result
        return result

    def _allocate(self, tags: Mapping[str, Any], model: str | None) -> Allocation:
        priv = self.__pydantic_private__
        dims: dict[str, str] = {}
        if model:
            m = tag_value(model)
            if m is not None:
                dims["model"] = m
        for dim, keys in priv["_keys"]:
            if dim in dims:
                continue
            for k in keys:
                v = tags.get(k)
                if v is not None:
                    s = tag_value(v)
                    if s is not None:
                        dims[dim] = s
                        break
        dim_defaults = priv["_dim_defaults"]
        for key, pattern, equals, prefix, any_of, sets, override in priv["_plan"]:
            raw = tags.get(key)
            value = tag_value(raw) if raw is not None else (dims.get(key) or dim_defaults.get(key))
            if value is None:
                continue
            # Match.test, inlined
            if pattern is not None:
                found = pattern.search(value)
                if not found:
                    continue
                groups = {k: v for k, v in found.groupdict().items() if v is not None}
            elif equals is not None:
                if value != equals:
                    continue
                groups = {}
            elif prefix is not None:
                if not value.startswith(prefix):
                    continue
                groups = {}
            elif any_of is None or value not in any_of:
                continue
            else:
                groups = {}
            for dim, template in sets:
                if override or dim not in dims:
                    out = tag_value(template.format(value=value, **groups)) if "{" in template else template
                    if out is not None:
                        dims[dim] = out
        d = priv["_defaults"]
        return Allocation(dims.get("team") or d["team"], dims.get("feature") or d["feature"],
                          dims.get("customer") or d["customer"], dims.get("model") or d["model"],
                          dims.get("environment") or d["environment"], dims.get("tier") or d["tier"])

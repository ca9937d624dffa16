"""The policy file: rules, validated against the condition and action registries at load.

``load_policy(path)`` returns a :class:`Policy` or raises :class:`ConfigError` naming file,
line and field of every problem (``ConfigError.errors``): an unknown condition, action or
field, a bad operator, a missing default rule, a rule that can never be reached because an
unconditional one precedes it, an approver group that approvers.yaml does not define.

>>> p = Policy.from_text('''
... version: 3
... rules:
...   - name: small
...     match: {tier: sandbox}
...     when: {overrun_usd: {lte: 100}}
...     then: {action: auto_approve, grant_usd: overrun, expires: 24h}
...   - name: default
...     default: true
...     then: {action: escalate, to: finops-approvers, deadline: 24h}
... ''', source="p.yaml")
>>> [(r.name, r.line, r.action.name) for r in p.rules], p.version.startswith("3@")
([('small', 4, 'auto_approve'), ('default', 8, 'escalate')], True)
>>> try:
...     Policy.from_text("rules:\\n  - name: a\\n    when: {overrun_usd: {le: 5}}\\n    then: {action: page}\\n",
...                      source="bad.yaml")
... except ConfigError as err:
...     print("\\n".join(err.errors))
bad.yaml:3: rules.0.when.overrun_usd: unknown operator 'le'; use lt, lte, gt, gte, eq or in
bad.yaml:1: rules: no default rule: end the rules with one that has `default: true`
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from guardrails.policy.actions import Action, AutoApprove, actions
from guardrails.policy.conditions import Condition, conditions
from guardrails.policy.match import Match
from schemas.yamlconf import ConfigError, load_yaml_text

__all__ = ["ConfigError", "DEFAULT_POLICY_PATH", "Policy", "PolicyFile", "Rule", "RuleConf", "load_policy"]

DEFAULT_POLICY_PATH = Path(__file__).resolve().parent.parent / "policy.yaml"
#: Actions a default rule may not take: it must always decide (these can refuse past a limit).
NOT_FOR_DEFAULT = ("auto_approve", "expand_budget")


def _err(loc: tuple[Any, ...], msg: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("policy", "{msg}", {"msg": msg}), loc=loc, input=None)


class RuleConf(BaseModel):
    """One rule as written: ``name``, optional ``match`` and ``when``, ``then``; or ``default: true``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    default: bool = False
    match: Match | None = None
    when: dict[str, Any] | None = None
    then: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule."""

    name: str
    index: int
    default: bool
    match: Match | None
    conditions: tuple[Condition, ...]
    action: Action
    description: str | None = None
    line: int = 0

    @property
    def unconditional(self) -> bool:
        return self.default or ((self.match is None or self.match.is_empty()) and not self.conditions)


class PolicyFile(BaseModel):
    """The whole policy file, cross-checked; ``compiled`` holds the rules ready to evaluate."""

    model_config = ConfigDict(extra="forbid")
    #: Approver groups the policy may name (``None``: not checked). Set on a subclass by the loader.
    known_groups: ClassVar[frozenset[str] | None] = None

    version: int | str = 1
    description: str | None = None
    rules: list[RuleConf] = Field(min_length=1)
    _compiled: list[Rule] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _compile(self) -> "PolicyFile":
        errors: list[InitErrorDetails] = []
        compiled: list[Rule] = []
        names: dict[str, int] = {}
        first_unconditional: Rule | None = None
        for i, rc in enumerate(self.rules):
            at = ("rules", i)
            if rc.name in names:
                errors.append(_err((*at, "name"), f"duplicate rule name {rc.name!r} (first at rules.{names[rc.name]})"))
            names.setdefault(rc.name, i)
            conds = self._conditions(rc, at, errors)
            action = self._action(rc, at, errors, conds)
            if rc.default and (rc.match is not None or rc.when):
                errors.append(_err((*at, "default"), "a default rule has no match or when: it decides what no "
                                                    "rule above it did"))
            if action is None:
                continue
            rule = Rule(rc.name, i, rc.default, rc.match, tuple(conds), action, rc.description)
            if first_unconditional is not None:
                u = first_unconditional
                errors.append(_err((*at, "name"), f"rule {rc.name!r} is unreachable: rule {u.name!r} "
                                                  f"(rules.{u.index}) above it matches every overrun"))
            elif rule.unconditional:
                first_unconditional = rule
            compiled.append(rule)
        if not any(r.default for r in self.rules):
            errors.append(_err(("rules",), "no default rule: end the rules with one that has `default: true`"))
        if errors:
            raise ValidationError.from_exception_data("PolicyFile", errors)
        self._compiled = compiled
        return self

    @staticmethod
    def _conditions(rc: RuleConf, at: tuple[Any, ...], errors: list[InitErrorDetails]) -> list[Condition]:
        out = []
        for key, raw in (rc.when or {}).items():
            cls = conditions.get(key)
            if cls is None:
                errors.append(_err((*at, "when", key), conditions.unknown(key)))
                continue
            try:
                out.append(cls.build(raw))
            except ValidationError as err:
                errors.extend(_err((*at, "when", key, *e["loc"]), e["msg"]) for e in err.errors())
        return out

    def _action(self, rc: RuleConf, at: tuple[Any, ...], errors: list[InitErrorDetails],
                conds: Iterable[Condition]) -> Action | None:
        then = dict(rc.then)
        name = then.pop("action", None)
        if name is None:
            errors.append(_err((*at, "then", "action"), f"give an action: {', '.join(actions.names())}"))
            return None
        cls = actions.get(name) if isinstance(name, str) else None
        if cls is None:
            errors.append(_err((*at, "then", "action"), actions.unknown(name)))
            return None
        if rc.default and name in NOT_FOR_DEFAULT:
            errors.append(_err((*at, "then", "action"), f"the default rule must always decide; {name} can refuse "
                                                       f"past its limit: use escalate, page, throttle or deny"))
        try:
            action = cls.build(then)
        except ValidationError as err:
            errors.extend(_err((*at, "then", *e["loc"]), e["msg"]) for e in err.errors())
            return None
        if isinstance(action, AutoApprove):
            bounds = [b for c in conds if c.name == "overrun_usd" and (b := c.spec.upper_bound()) is not None]
            action.bind(min(bounds) if bounds else None)
        known = type(self).known_groups
        if known is not None:
            for loc, group in action.groups():
                if group not in known:
                    errors.append(_err((*at, "then", *loc), f"unknown approver group {group!r}; "
                                                            f"known: {', '.join(sorted(known)) or 'none'}"))
        return action


def _rule_lines(text: str) -> list[int]:
    """1-based line of each rule (its ``- name:`` item) in the policy text."""
    root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            if k.value == "rules" and isinstance(v, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in v.value]
    return []


class Policy:
    """A loaded policy: its rules in order, its source and version (``VERSION@sha256[:8]``)."""

    __slots__ = ("rules", "source", "version", "sha256", "file")

    def __init__(self, conf: PolicyFile, text: str, source: str) -> None:
        lines = _rule_lines(text)
        self.rules: tuple[Rule, ...] = tuple(
            Rule(r.name, r.index, r.default, r.match, r.conditions, r.action, r.description,
                 lines[r.index] if r.index < len(lines) else 0) for r in conf._compiled)
        self.file = conf
        self.source = source
        self.sha256 = hashlib.sha256(text.encode()).hexdigest()
        self.version = f"{conf.version}@{self.sha256[:8]}"

    @classmethod
    def from_text(cls, text: str, source: str = "<string>", groups: Iterable[str] | None = None) -> "Policy":
        """Validate policy text; ``groups`` (approver group names) also checks every group it names."""
        model: type[PolicyFile] = PolicyFile
        if groups is not None:
            model = type("PolicyFile", (PolicyFile,), {"known_groups": frozenset(groups), "__module__": __name__})
        return cls(load_yaml_text(text, model, source=source), text, source)

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def __repr__(self) -> str:
        return f"Policy({self.source!r}, version={self.version!r}, rules={[r.name for r in self.rules]})"


def load_policy(path: str | Path | None = None, groups: Iterable[str] | None = None) -> Policy:
    """Read a policy file (default: the shipped ``guardrails/policy.yaml``); see :meth:`Policy.from_text`."""
    p = Path(path) if path else DEFAULT_POLICY_PATH
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{p}: cannot read: {err.strerror or err}") from None
    return Policy.from_text(text, str(p), groups)

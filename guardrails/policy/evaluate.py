"""Evaluate a policy on an overrun: the first rule that matches and can decide wins; explain the rest.

:func:`evaluate` returns an :class:`Explanation`: the deciding rule and its effect, and for
every rule before it why it did not apply (each failing match field or condition with the
overrun's actual value, or the action's refusal, e.g. a grant limit reached).

>>> from datetime import datetime, timezone
>>> from guardrails.policy.model import Policy
>>> from schemas.overrun import Overrun
>>> p = Policy.from_text('''
... rules:
...   - {name: small, match: {tier: sandbox}, when: {overrun_usd: {lte: 100}}, then: {action: auto_approve}}
...   - {name: rest, default: true, then: {action: escalate, to: finops, deadline: 4h}}
... ''')
>>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
>>> ov = Overrun(overrun_id="o", budget_id="b", trigger="threshold", rule="threshold_100", tier="production",
...              period="day", period_start=t, period_end=t, at=t, started_at=t, cap_usd=100, spend_usd=100,
...              forecast_usd=350, overrun_usd=250, overrun_pct=250)
>>> print(evaluate(p, ov, DecisionContext(now=t)).text())
rule small (line 3): no
  match.tier: 'production' not in ['sandbox']
  when.overrun_usd: 250 needs <= 100
rule rest (line 4): DECIDES -> escalate: to finops, deadline 4h, on timeout expire
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from guardrails.policy.actions import DecisionContext, Effect
from guardrails.policy.match import Failure
from guardrails.policy.model import Policy, Rule
from schemas.overrun import Overrun

__all__ = ["DecisionContext", "Explanation", "RuleVerdict", "evaluate", "rule_failures"]


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    rule: Rule
    failures: tuple[Failure, ...] = ()
    effect: Effect | None = None

    @property
    def applies(self) -> bool:
        return self.effect is not None

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule.name, "line": self.rule.line, "applies": self.applies,
                "action": self.rule.action.name if self.applies else None,
                "failures": [{"field": f.field, "expected": f.expected, "actual": f.actual} for f in self.failures]}


@dataclass(frozen=True, slots=True)
class Explanation:
    """Rules tried in order; the last one decided (``decided``)."""

    overrun_id: str
    policy_version: str
    verdicts: tuple[RuleVerdict, ...] = field(default_factory=tuple)

    @property
    def decided(self) -> RuleVerdict:
        return self.verdicts[-1]

    @property
    def rule(self) -> Rule:
        return self.decided.rule

    @property
    def effect(self) -> Effect:
        assert self.decided.effect is not None
        return self.decided.effect

    def text(self) -> str:
        lines = []
        for v in self.verdicts:
            head = f"rule {v.rule.name} (line {v.rule.line})"
            if v.applies:
                lines.append(f"{head}: DECIDES -> {v.rule.action.describe()}")
            else:
                lines.append(f"{head}: no")
                lines.extend(f"  {f.text()}" for f in v.failures)
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        e = self.effect
        return {"overrun_id": self.overrun_id, "policy_version": self.policy_version, "rule": self.rule.name,
                "action": self.rule.action.name, "decision": e.action, "amount_usd": e.amount_usd,
                "expires_at": e.expires_at.isoformat() if e.expires_at else None, "group": e.group,
                "deadline": e.deadline.isoformat() if e.deadline else None,
                "rules": [v.as_dict() for v in self.verdicts]}


def rule_failures(rule: Rule, ov: Overrun) -> list[Failure]:
    """Every match field and condition of ``rule`` that ``ov`` fails (all of them, for the explanation)."""
    out = rule.match.failures(ov) if rule.match is not None else []
    for cond in rule.conditions:
        ok, actual = cond.test(ov)
        if not ok:
            out.append(Failure(f"when.{cond.name}", f"needs {cond.spec.describe()}", cond.show(actual)))
    return out


def evaluate(policy: Policy, ov: Overrun, ctx: DecisionContext) -> Explanation:
    """Try the rules in order; the first whose match and conditions hold and whose action decides wins."""
    verdicts: list[RuleVerdict] = []
    for rule in policy.rules:
        failures = rule_failures(rule, ov)
        if not failures:
            effect = rule.action.apply(ov, ctx, rule.name)
            if isinstance(effect, Effect):
                verdicts.append(RuleVerdict(rule, (), effect))
                return Explanation(ov.overrun_id, policy.version, tuple(verdicts))
            failures = [Failure(f"then.{rule.action.name}", "", effect)]
        verdicts.append(RuleVerdict(rule, tuple(failures)))
    raise AssertionError("a validated policy ends with a default rule that always decides")  # pragma: no cover

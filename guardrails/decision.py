"""The decision engine: overrun + policy + context -> one :class:`Outcome` (pure).

The first rule that matches and can decide wins (:func:`guardrails.policy.evaluate`). The
outcome is the :class:`~schemas.decision.Decision` for ``guardrail.decisions`` (step 0, id
from the overrun id), the :class:`~guardrails.grants.Grant` it makes (grant actions) and the
:class:`~guardrails.approvals.ApprovalRequest` it opens (escalate). An approval's later
transitions become decisions too (:func:`decision_for_transition`).

>>> from datetime import datetime, timezone
>>> from guardrails.policy import Policy
>>> from schemas.overrun import Overrun
>>> p = Policy.from_text('''
... rules:
...   - {name: small, when: {overrun_usd: {lte: 100}}, then: {action: auto_approve, expires: 6h}}
...   - {name: rest, default: true, then: {action: escalate, to: finops, deadline: 4h}}
... ''')
>>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
>>> ov = Overrun(overrun_id="o1", budget_id="lab", trigger="threshold", rule="threshold_100", period="day",
...              period_start=t.replace(hour=0), period_end=t.replace(day=21, hour=0), at=t, started_at=t,
...              cap_usd=50, spend_usd=50, forecast_usd=90, overrun_usd=40, overrun_pct=80)
>>> out = decide(ov, p, DecisionContext(now=t))
>>> out.decision.action, out.decision.amount_usd, out.decision.expires_at.hour, out.grant.amount_usd
('grant', 40.0, 15, 40.0)
>>> again = decide(ov, p, DecisionContext(now=t, granted_usd=40.0, granted_by_rule={"small": 40.0}))
>>> again.decision.action, again.decision.amount_usd, again.decision.reason
('grant', 0.0, 'nothing to cover: spend and forecast are within the cap and active grants')
>>> later = decide(ov.model_copy(update={"forecast_usd": 200.0}), p,
...                DecisionContext(now=t, granted_usd=40.0, granted_by_rule={"small": 100.0}))
>>> later.rule, later.decision.action, later.approval.amount_usd, later.approval.group
('rest', 'escalated', 110.0, 'finops')
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from guardrails.approvals import ApprovalRequest, Transition, approval_id, grant_expiry, granted_usd
from guardrails.grants import Grant
from guardrails.policy import DecisionContext, Explanation, Policy, evaluate
from schemas.decision import Decision
from schemas.overrun import Overrun

__all__ = ["DecisionContext", "Outcome", "decide", "decision_for_transition", "grant_for_transition"]


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: Decision
    explanation: Explanation
    grant: Grant | None = None
    approval: ApprovalRequest | None = None

    @property
    def rule(self) -> str:
        return self.decision.rule


def decide(ov: Overrun, policy: Policy, ctx: DecisionContext) -> Outcome:
    """The policy's decision on ``ov`` (step 0), given the budget's grants in ``ctx``."""
    ex = evaluate(policy, ov, ctx)
    e, rule = ex.effect, ex.rule.name
    decision = Decision(
        decision_id=Decision.make_id(ov.overrun_id, 0), overrun_id=ov.overrun_id, budget_id=ov.budget_id,
        scope=ov.scope, action=e.action, amount_usd=e.amount_usd, expires_at=e.expires_at,
        policy_version=policy.version, rule=rule, step=0, decided_at=ctx.now, decided_by="policy",
        reason=e.reason, group=e.group, deadline=e.deadline, throttle_factor=e.throttle_factor,
        approval_id=approval_id(ov.overrun_id, 0) if e.action == "escalated" else None)
    grant = None
    if e.action == "grant" and e.amount_usd:
        grant = Grant(decision.decision_id, ov.budget_id, rule, e.amount_usd, e.grant_kind or "period",
                      ov.period_start, ov.period_end, ctx.now, e.expires_at, ov.overrun_id)
    approval = None
    if e.action == "escalated":
        assert e.deadline is not None and e.group is not None
        approval = ApprovalRequest(
            approval_id=approval_id(ov.overrun_id, 0), overrun_id=ov.overrun_id, budget_id=ov.budget_id, rule=rule,
            group=e.group, amount_usd=e.amount_usd or 0.0, created_at=ctx.now, deadline=e.deadline,
            deadline_s=(e.deadline - ctx.now).total_seconds(), on_timeout=e.on_timeout or "expire",
            grant_expires_s=e.grant_expires.total_seconds() if e.grant_expires else None,
            period_start=ov.period_start, period_end=ov.period_end)
    return Outcome(decision, ex, grant, approval)


def decision_for_transition(tr: Transition, scope: dict[str, list[str]], policy_version: str,
                            now: datetime) -> Decision | None:
    """The decision an approval transition emits (``None`` for an expiry: nothing to enforce)."""
    req = tr.after
    step = req.level + 1
    common = dict(decision_id=Decision.make_id(req.overrun_id, step), overrun_id=req.overrun_id,
                  budget_id=req.budget_id, scope=scope, policy_version=policy_version, rule=req.rule, step=step,
                  decided_at=now, decided_by=tr.actor, reason=req.reason, approval_id=req.approval_id)
    if tr.event == "approved":
        return Decision(action="grant", amount_usd=granted_usd(req), expires_at=grant_expiry(req, now),
                        group=req.group, **common)
    if tr.event == "denied":
        return Decision(action="deny", expires_at=req.period_end, group=req.group, **common)
    if tr.event == "escalated":
        assert tr.created is not None
        return Decision(action="escalated", amount_usd=req.amount_usd, group=tr.created.group,
                        deadline=tr.created.deadline,
                        **{**common, "approval_id": tr.created.approval_id})
    return None


def grant_for_transition(tr: Transition, decision: Decision) -> Grant | None:
    """The grant an approved request makes."""
    if tr.event != "approved" or not decision.amount_usd:
        return None
    req = tr.after
    return Grant(decision.decision_id, req.budget_id, req.rule, decision.amount_usd, "period", req.period_start,
                 req.period_end, decision.decided_at, decision.expires_at, req.overrun_id, tr.actor)

"""Actions of a rule's ``then``: what happens to an overrun the rule matches.

Each action validates its parameters with its own schema and turns an overrun into an
:class:`Effect` (what the decision says), given a :class:`DecisionContext` (the clock and the
grants the budget already has). Amounts called ``overrun`` mean the part of the overrun
that active grants do not cover yet: ``max(spend, forecast) - (cap + granted)``.

>>> from guardrails.policy.actions import actions
>>> a = actions.get("auto_approve").build({"grant_usd": "overrun", "expires": "24h"})
>>> a.describe()
'auto_approve: grant the overrun, expires after 1d'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from guardrails.policy.durations import Duration, format_duration
from guardrails.policy.registry import Registry
from schemas.decision import DecisionAction
from schemas.overrun import Overrun

__all__ = ["Action", "DecisionContext", "Effect", "OnTimeout", "actions", "uncovered_usd"]

EndOfPeriod = Literal["end_of_period"]
#: The reason on a zero grant: spend and forecast fit in the cap plus active grants.
NOTHING_TO_COVER = "nothing to cover: spend and forecast are within the cap and active grants"


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """What a decision needs besides the overrun and the policy (the store reads it under a lock).

    ``granted_usd``: grants active on the budget at the overrun's time; ``granted_by_rule``: rule name -> USD that
    rule already granted the budget this period (its limit counts against it).
    """

    now: datetime
    granted_usd: float = 0.0
    granted_by_rule: Mapping[str, float] = field(default_factory=dict)


def uncovered_usd(ov: Overrun, granted_usd: float) -> float:
    """Spend (actual or forecast, the larger) above the cap plus active grants; at least 0.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 11, 20, tzinfo=timezone.utc)
    >>> ov = Overrun(overrun_id="o", budget_id="b", trigger="threshold", rule="threshold_100", period="day",
    ...              period_start=t, period_end=t, at=t, started_at=t, cap_usd=100, spend_usd=110,
    ...              forecast_usd=160, overrun_usd=60, overrun_pct=60)
    >>> uncovered_usd(ov, 0.0), uncovered_usd(ov, 25.0), uncovered_usd(ov, 100.0)
    (60.0, 35.0, 0.0)
    """
    return round(max(max(ov.spend_usd, ov.forecast_usd) - (ov.cap_usd + granted_usd), 0.0), 6)


@dataclass(frozen=True, slots=True)
class Effect:
    """What an action decided. ``grant_kind``: ``period`` (this period) or ``expand`` (no expiry)."""

    action: DecisionAction
    amount_usd: float | None = None
    expires_at: datetime | None = None
    group: str | None = None
    deadline: datetime | None = None
    throttle_factor: float | None = None
    reason: str | None = None
    grant_kind: Literal["period", "expand"] | None = None
    on_timeout: "OnTimeout | None" = None
    grant_expires: timedelta | None = None  # escalate: expiry of the grant an approval gives (None: period end)


class OnTimeoutEscalate(BaseModel):
    """``on_timeout: {escalate: GROUP}``: hand the request to GROUP (omit it: the group's ``next``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    escalate: str | None = Field(None, min_length=1, description="next group; omitted: the group's next in approvers.yaml")
    deadline: Duration | None = Field(None, description="the new request's deadline; omitted: the same as before")
    then: Literal["expire", "approve", "deny", "escalate"] = Field(
        "expire", description="what the escalated request does on its own timeout")


OnTimeout = Literal["expire", "approve", "deny", "escalate"] | OnTimeoutEscalate


class Action:
    """A registered action: ``schema`` validates the ``then`` mapping without its ``action`` key."""

    name: ClassVar[str]
    schema: ClassVar[type[BaseModel]]

    def __init__(self, spec: BaseModel) -> None:
        self.spec: Any = spec

    @classmethod
    def build(cls, raw: Mapping[str, Any]) -> "Action":
        return cls(cls.schema.model_validate(dict(raw)))

    def groups(self) -> list[tuple[tuple[str, ...], str]]:
        """Approver groups this action names: (location under ``then``, group)."""
        return []

    def limit_usd(self, upper_bound: float | None) -> float | None:
        """The most this rule may grant one budget per period (``None``: no grant or no limit)."""
        return None

    def apply(self, ov: Overrun, ctx: DecisionContext, rule: str) -> Effect | str:
        """The effect on ``ov``, or the reason this rule cannot decide it (the next rule is tried)."""
        raise NotImplementedError  # pragma: no cover

    def describe(self) -> str:  # pragma: no cover - every subclass overrides it
        return self.name


actions: Registry[type[Action]] = Registry("action")


def _expiry(expires: timedelta | str, ov: Overrun, now: datetime, cap_at_period_end: bool) -> datetime:
    if expires == "end_of_period":
        return ov.period_end
    at = now + expires  # type: ignore[operator]
    return min(at, ov.period_end) if cap_at_period_end else at


def _show_expires(expires: timedelta | str) -> str:
    return "at the end of the period" if expires == "end_of_period" else f"after {format_duration(expires)}"  # type: ignore[arg-type]


class AutoApproveSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    grant_usd: Literal["overrun"] | float = Field(
        "overrun", description="`overrun` (what active grants do not cover yet) or a fixed amount")
    expires: Duration | EndOfPeriod = Field("end_of_period", description="grant lifetime (never past the period)")
    limit_usd: float | None = Field(None, gt=0, description="most this rule grants one budget per period; default: "
                                    "a fixed grant_usd, else the rule's overrun_usd upper bound")

    @model_validator(mode="after")
    def _positive(self) -> "AutoApproveSpec":
        if not isinstance(self.grant_usd, str) and self.grant_usd <= 0:
            raise ValueError("grant_usd must be > 0 (or `overrun`)")
        return self


@actions.register("auto_approve")
class AutoApprove(Action):
    """Grant automatically: raise the budget's effective cap by the uncovered overrun (or a fixed
    amount) until ``expires``. The rule grants one budget at most ``limit_usd`` per period in
    total (default: a fixed ``grant_usd``, else the upper bound of the rule's ``overrun_usd``
    condition); past that the rule no longer applies and the next rule decides.

    ```yaml
    then: {action: auto_approve, grant_usd: overrun, expires: 24h, limit_usd: 100}
    ```
    """

    schema = AutoApproveSpec
    _upper: float | None = None

    def limit_usd(self, upper_bound: float | None) -> float | None:
        s = self.spec
        if s.limit_usd is not None:
            return s.limit_usd
        return float(s.grant_usd) if not isinstance(s.grant_usd, str) else upper_bound

    def bind(self, upper_bound: float | None) -> None:
        """Called by the loader with the upper bound of the rule's ``overrun_usd`` condition."""
        self._upper = upper_bound

    def apply(self, ov: Overrun, ctx: DecisionContext, rule: str) -> Effect | str:
        s = self.spec
        want = uncovered_usd(ov, ctx.granted_usd) if s.grant_usd == "overrun" else float(s.grant_usd)
        limit = self.limit_usd(self._upper)
        already = ctx.granted_by_rule.get(rule, 0.0)
        if limit is not None and want > 0:
            room = round(limit - already, 6)
            if room <= 0:
                return f"grant limit {limit:g} USD reached ({already:g} USD granted this period)"
            want = min(want, room)
        return Effect("grant", amount_usd=round(want, 2), expires_at=_expiry(s.expires, ov, ctx.now, True),
                      grant_kind="period",
                      reason=None if want > 0 else NOTHING_TO_COVER)

    def describe(self) -> str:
        s = self.spec
        what = "the overrun" if s.grant_usd == "overrun" else f"{s.grant_usd:g} USD"
        lim = self.limit_usd(self._upper)
        return (f"auto_approve: grant {what}, expires {_show_expires(s.expires)}"
                + (f", at most {lim:g} USD per period" if lim is not None else ""))


class EscalateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    to: str = Field(min_length=1, description="approver group (approvers.yaml)")
    deadline: Duration = Field(description="how long the group has to decide")
    amount_usd: Literal["overrun"] | float = Field("overrun", description="the grant requested")
    on_timeout: OnTimeout = Field("expire", description="expire, approve, deny, escalate (the group's next) "
                                                        "or {escalate: GROUP, deadline: 4h}")
    expires: Duration | EndOfPeriod = Field("end_of_period", description="lifetime of the grant if approved")


@actions.register("escalate")
class Escalate(Action):
    """Ask an approver group: create an approval request for the uncovered overrun (or a fixed
    amount) with a deadline; on timeout it expires, is approved or denied, or goes to the next
    group (``escalate``: the group's ``next`` in approvers.yaml, or ``{escalate: GROUP}``).
    When active grants already cover the overrun there is nothing to approve: a zero grant is
    recorded instead of a request.

    ```yaml
    then: {action: escalate, to: finance-approvers, deadline: 4h, on_timeout: {escalate: cfo}}
    ```
    """

    schema = EscalateSpec

    def groups(self) -> list[tuple[tuple[str, ...], str]]:
        out = [(("to",), self.spec.to)]
        if isinstance(self.spec.on_timeout, OnTimeoutEscalate) and self.spec.on_timeout.escalate:
            out.append((("on_timeout", "escalate"), self.spec.on_timeout.escalate))
        return out

    def apply(self, ov: Overrun, ctx: DecisionContext, rule: str) -> Effect | str:
        s = self.spec
        amount = uncovered_usd(ov, ctx.granted_usd) if s.amount_usd == "overrun" else float(s.amount_usd)
        if amount <= 0:  # a crossing with the forecast inside the cap (and grants): no one needs to approve $0
            return Effect("grant", amount_usd=0.0, expires_at=_expiry(s.expires, ov, ctx.now, True), grant_kind="period",
                          reason=NOTHING_TO_COVER)
        return Effect("escalated", amount_usd=round(amount, 2), group=s.to, deadline=ctx.now + s.deadline,
                      on_timeout=s.on_timeout, grant_expires=None if s.expires == "end_of_period" else s.expires)

    def describe(self) -> str:
        s = self.spec
        t = s.on_timeout
        timeout = t if isinstance(t, str) else f"escalate to {t.escalate or 'the next group'}"
        return f"escalate: to {s.to}, deadline {format_duration(s.deadline)}, on timeout {timeout}"


class PageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    to: str | None = Field(None, min_length=1, description="who to page; omitted: the budget's owner")


@actions.register("page")
class Page(Action):
    """Page on-call (the budget's owner unless ``to`` names someone); grants nothing.

    ```yaml
    then: {action: page, to: search-oncall}
    ```
    """

    schema = PageSpec

    def apply(self, ov: Overrun, ctx: DecisionContext, rule: str) -> Effect | str:
        return Effect("page", group=self.spec.to or ov.owner)

    def describe(self) -> str:
        return f"page: {self.spec.to or 'the budget owner'}"


class ThrottleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    factor: float = Field(0.5, gt=0, lt=1, description="fraction of traffic gateways still let through")
    expires: Duration | EndOfPeriod = Field("end_of_period", description="how long the throttle lasts")


@actions.register("throttle")
class Throttle(Action):
    """Signal gateways to slow spend on the budget's scope to ``factor`` of its traffic until ``expires``.

    ```yaml
    then: {action: throttle, factor: 0.25, expires: 2h}
    ```
    """

    schema = ThrottleSpec

    def apply(self, ov: Overrun, ctx: DecisionContext, rule: str) -> Effect | str:
        return Effect("throttle", throttle_factor=self.spec.factor,
                      expires_at=_expiry(self.spec.expires, ov, ctx.now, False))

    def describe(self) -> str:
        return f"throttle: to {self.spec.factor:g} of traffic, expires {_show_expires(self.spec.expires)}"


class DenySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str | None = Field(None, max_length=500, description="shown to whoever is blocked")
    expires: Duration | EndOfPeriod = Field("end_of_period", description="how long new spend stays blocked")


@actions.register("deny")
class Deny(Action):
    """Refuse: signal gateways to block new spend on the budget's scope until ``expires``.

    ```yaml
    then: {action: deny, reason: sandbox budgets do not overrun, expires: end_of_period}
    ```
    """

    schema = DenySpec

    def apply(self, ov: Overrun, ctx: DecisionContext, rule: str) -> Effect | str:
        return Effect("deny", reason=self.spec.reason, expires_at=_expiry(self.spec.expires, ov, ctx.now, False))

    def describe(self) -> str:
        return f"deny: expires {_show_expires(self.spec.expires)}"


class ExpandBudgetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cap_usd: float | None = Field(None, gt=0, description="the new cap")
    by_usd: float | None = Field(None, gt=0, description="raise the cap by this much")
    by_pct: float | None = Field(None, gt=0, description="raise the cap by this percentage")

    @model_validator(mode="after")
    def _one(self) -> "ExpandBudgetSpec":
        if sum(v is not None for v in (self.cap_usd, self.by_usd, self.by_pct)) != 1:
            raise ValueError("give exactly one of cap_usd, by_usd, by_pct")
        return self


@actions.register("expand_budget")
class ExpandBudget(Action):
    """Raise the cap for good (a pilot that met its goal): a grant with no expiry, to ``cap_usd``
    or by ``by_usd`` / ``by_pct``, once per budget and rule (expansions already granted count
    towards ``cap_usd``; ``by_*`` does not apply a second time).

    ```yaml
    then: {action: expand_budget, by_pct: 50}
    ```
    """

    schema = ExpandBudgetSpec

    def limit_usd(self, upper_bound: float | None) -> float | None:
        return None

    def apply(self, ov: Overrun, ctx: DecisionContext, rule: str) -> Effect | str:
        s = self.spec
        already = ctx.granted_by_rule.get(rule, 0.0)
        if s.cap_usd is None and already > 0:
            return f"already expanded by {already:g} USD by this rule"
        if s.cap_usd is not None:
            amount = s.cap_usd - ov.cap_usd - already
        elif s.by_usd is not None:
            amount = s.by_usd
        else:
            amount = ov.cap_usd * s.by_pct / 100.0
        if amount <= 0:
            return f"the cap already reaches {s.cap_usd:g} USD"
        return Effect("grant", amount_usd=round(amount, 2), expires_at=None, grant_kind="expand")

    def describe(self) -> str:
        s = self.spec
        how = (f"to {s.cap_usd:g} USD" if s.cap_usd is not None else
               f"by {s.by_usd:g} USD" if s.by_usd is not None else f"by {s.by_pct:g}%")
        return f"expand_budget: raise the cap {how}, no expiry"

"""Approval requests: ``pending -> approved | denied | expired | escalated`` (pure).

An escalating rule creates a pending request for an approver group with a deadline. A member
of that group may approve it up to their limit, or deny it with a reason
(:func:`approve`, :func:`deny`; :class:`Refused` says why not). When the deadline passes,
:func:`due` applies the rule's ``on_timeout``: ``expire``, ``approve``, ``deny``, or
``escalate`` (the request becomes ``escalated`` and a new pending request goes to the next
group, with a new deadline). Each change is a :class:`Transition`; only pending requests change.

>>> from datetime import datetime, timedelta, timezone
>>> from guardrails.approvers import Approvers
>>> ap = Approvers.from_yaml_text('''
... groups:
...   fin: {max_usd: 500, members: [ann], next: cfo}
...   cfo: {max_usd: unlimited, members: [cy]}
... ''')
>>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
>>> req = ApprovalRequest(approval_id=approval_id("ov1", 0), overrun_id="ov1", budget_id="b", rule="big",
...     group="fin", amount_usd=800.0, created_at=t, deadline=t + timedelta(hours=4), deadline_s=14400,
...     on_timeout="escalate", period_start=t, period_end=t + timedelta(days=30))
>>> try:
...     approve(req, "ann", ap, t)
... except Refused as err:
...     print(err)
ann may approve at most 500 USD in fin; this request is 800 USD
>>> due(req, t + timedelta(hours=3), ap) is None
True
>>> tr = due(req, t + timedelta(hours=4), ap)
>>> tr.after.state, tr.created.group, tr.created.deadline == t + timedelta(hours=8)
('escalated', 'cfo', True)
>>> done = approve(tr.created, "cy", ap, t + timedelta(hours=5), reason="launch week")
>>> done.event, done.after.state, done.grant_usd, done.after.decided_by
('approved', 'approved', 800.0, 'cy')
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from guardrails.approvers import Approvers
from guardrails.policy.actions import OnTimeout, OnTimeoutEscalate
from schemas.events import UtcDatetime

__all__ = ["ApprovalRequest", "ApprovalState", "Refused", "Transition", "approval_id", "approve", "deny", "due",
           "check_amount", "grant_expiry", "granted_usd", "parse_amount"]

ApprovalState = Literal["pending", "approved", "denied", "expired", "escalated"]
#: Actor recorded when a deadline, not a person, changed a request.
TIMEOUT_ACTOR = "deadline"


def approval_id(overrun_id: str, level: int) -> str:
    """Stable id of the request at escalation ``level`` (0: the first) for an overrun."""
    return "ap-" + hashlib.sha256(f"{overrun_id}\x1fapproval\x1f{level}".encode()).hexdigest()[:20]


class ApprovalRequest(BaseModel):
    """One request to one approver group."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approval_id: str
    overrun_id: str
    budget_id: str
    rule: str
    group: str
    amount_usd: float = Field(ge=0)
    state: ApprovalState = "pending"
    created_at: UtcDatetime
    deadline: UtcDatetime
    deadline_s: float = Field(gt=0, description="the deadline's duration (reused when escalating)")
    on_timeout: OnTimeout = "expire"
    grant_expires_s: float | None = Field(None, description="grant lifetime if approved; None: the period end")
    period_start: UtcDatetime
    period_end: UtcDatetime
    level: int = Field(0, ge=0)
    previous_id: str | None = None
    decided_at: UtcDatetime | None = None
    decided_by: str | None = None
    reason: str | None = None
    approved_usd: float | None = Field(None, ge=0, description="approved: the amount granted (<= amount_usd)")


class Refused(Exception):
    """A user's approve/deny that is not allowed; the message is the reason."""


@dataclass(frozen=True, slots=True)
class Transition:
    """``before`` -> ``after`` (same id); ``created``: the request an escalation opened."""

    event: Literal["approved", "denied", "expired", "escalated"]
    before: ApprovalRequest
    after: ApprovalRequest
    actor: str
    created: ApprovalRequest | None = None

    @property
    def grant_usd(self) -> float | None:
        return granted_usd(self.after) if self.event == "approved" else None


def granted_usd(req: ApprovalRequest) -> float:
    """What an approved request grants: the amount the approver chose, else the amount requested."""
    return req.approved_usd if req.approved_usd is not None else req.amount_usd


def grant_expiry(req: ApprovalRequest, now: datetime) -> datetime:
    """When the grant of an approved request expires: its lifetime from now, never past the period."""
    if req.grant_expires_s is None:
        return req.period_end
    return min(now + timedelta(seconds=req.grant_expires_s), req.period_end)


def parse_amount(text: str | None) -> float | None:
    """An amount typed by an approver (Slack's modal, ``burnguard approve --amount``): ``None`` when empty (the
    amount requested); ``ValueError`` (a message for the user) if it is not a finite number of USD.

    >>> parse_amount(None), parse_amount(" "), parse_amount("1,250.50"), parse_amount("$300")
    (None, None, 1250.5, 300.0)
    >>> parse_amount("lots")
    Traceback (most recent call last):
    ...
    ValueError: the amount must be a number of USD, not 'lots'
    """
    if text is None or not text.strip():
        return None
    cleaned = text.strip().replace(",", "").removeprefix("$").strip()
    try:
        x = float(cleaned)
    except ValueError:
        x = float("nan")
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"the amount must be a number of USD, not {text.strip()[:40]!r}")
    return x


def check_amount(req: ApprovalRequest, amount_usd: float) -> str | None:
    """Why ``amount_usd`` cannot be approved on ``req`` (``None``: it can): more than 0, at most the request.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
    >>> r = ApprovalRequest(approval_id="ap-1", overrun_id="o", budget_id="b", rule="r", group="g", amount_usd=800,
    ...                     created_at=t, deadline=t, deadline_s=1, period_start=t, period_end=t)
    >>> check_amount(r, 900), check_amount(r, 800) is None
    ('900 USD is more than the 800 USD requested: approve at most 800 USD', True)
    """
    if amount_usd > req.amount_usd:
        return (f"{amount_usd:g} USD is more than the {req.amount_usd:g} USD requested: approve at most "
                f"{req.amount_usd:g} USD")
    if amount_usd <= 0:
        return f"the amount approved must be more than 0 USD (at most the {req.amount_usd:g} USD requested)"
    return None


def _decide(req: ApprovalRequest, state: ApprovalState, actor: str, now: datetime, reason: str | None) -> ApprovalRequest:
    return req.model_copy(update={"state": state, "decided_at": now, "decided_by": actor, "reason": reason})


def _check(req: ApprovalRequest, user: str, approvers: Approvers, now: datetime, amount: float) -> None:
    if req.state != "pending":
        raise Refused(f"approval {req.approval_id} is {req.state}, not pending")
    if now >= req.deadline:
        raise Refused(f"approval {req.approval_id} passed its deadline {req.deadline:%Y-%m-%d %H:%M} UTC")
    why = approvers.authorise(user, req.group, amount)
    if why is not None:
        raise Refused(why)


def approve(req: ApprovalRequest, user: str, approvers: Approvers, now: datetime,
            reason: str | None = None, amount_usd: float | None = None) -> Transition:
    """``user`` approves the request (a member of its group, within their limit); raises :class:`Refused`.

    ``amount_usd``: approve less than requested (more than 0, at most the request); the limit
    applies to what is approved. ``None``: the amount requested."""
    amount = req.amount_usd if amount_usd is None else float(amount_usd)
    why = check_amount(req, amount) if amount_usd is not None else None
    if why is not None:
        raise Refused(why)
    _check(req, user, approvers, now, amount)
    after = _decide(req, "approved", user, now, reason).model_copy(update={"approved_usd": amount})
    return Transition("approved", req, after, user)


def deny(req: ApprovalRequest, user: str, approvers: Approvers, now: datetime, reason: str) -> Transition:
    """``user`` denies the request (any member of its group; a reason is required)."""
    if not reason or not reason.strip():
        raise Refused("a denial needs a reason")
    _check(req, user, approvers, now, 0.0)
    return Transition("denied", req, _decide(req, "denied", user, now, reason.strip()), user)


def due(req: ApprovalRequest, now: datetime, approvers: Approvers) -> Transition | None:
    """The transition a passed deadline causes at ``now`` (``None`` if none is due)."""
    if req.state != "pending" or now < req.deadline:
        return None
    t = req.on_timeout
    when = f"deadline {req.deadline:%Y-%m-%d %H:%M} UTC passed"
    if t == "approve":
        return Transition("approved", req, _decide(req, "approved", TIMEOUT_ACTOR, now, when), TIMEOUT_ACTOR)
    if t == "deny":
        return Transition("denied", req, _decide(req, "denied", TIMEOUT_ACTOR, now, when), TIMEOUT_ACTOR)
    if t == "escalate" or isinstance(t, OnTimeoutEscalate):
        spec = t if isinstance(t, OnTimeoutEscalate) else OnTimeoutEscalate(then="escalate")
        group = spec.escalate or approvers.next_group(req.group)
        if group is not None:
            secs = spec.deadline.total_seconds() if spec.deadline is not None else req.deadline_s
            new = req.model_copy(update={
                "approval_id": approval_id(req.overrun_id, req.level + 1), "group": group, "state": "pending",
                "created_at": now, "deadline": now + timedelta(seconds=secs), "deadline_s": secs,
                "on_timeout": spec.then, "level": req.level + 1, "previous_id": req.approval_id,
                "decided_at": None, "decided_by": None, "reason": None})
            after = _decide(req, "escalated", TIMEOUT_ACTOR, now, f"{when}; escalated to {group}")
            return Transition("escalated", req, after, TIMEOUT_ACTOR, new)
        when += f"; {req.group} has no next group"
    return Transition("expired", req, _decide(req, "expired", TIMEOUT_ACTOR, now, when), TIMEOUT_ACTOR)

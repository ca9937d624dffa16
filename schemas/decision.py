"""Decisions: the ``guardrail.decisions`` topic contract, keyed by budget id (what a gateway enforces).

One decision per overrun comes from the policy (``step`` 0); an escalated overrun gets one
more decision for each outcome of its approval request (``step`` 1, 2, ...: approved ->
``grant``, denied -> ``deny``, escalated again -> ``escalated``). ``decision_id`` is derived
from (overrun_id, step), so a redelivered overrun yields the same id and a consumer can
de-duplicate on it.

Actions, for a gateway:

- ``grant``: the budget's effective cap is raised by ``amount_usd`` until ``expires_at``
  (``None``: no expiry; a budget expansion);
- ``throttle``: slow spend down on the budget's scope (``throttle_factor`` = fraction of
  traffic still allowed) until ``expires_at``;
- ``deny``: block new spend on the scope until ``expires_at`` (``None``: end of the period);
- ``escalated``: a person decides (``approval_id``, ``group``, ``deadline``); nothing to enforce yet;
- ``page``: on-call was paged (``group``); nothing to enforce.

>>> from datetime import datetime, timezone
>>> d = Decision(decision_id=Decision.make_id("ov-1", 0), overrun_id="ov-1", budget_id="b",
...              scope={"team": ["a"]}, action="grant", amount_usd=25.0,
...              expires_at=datetime(2026, 11, 21, tzinfo=timezone.utc), policy_version="1", rule="small",
...              decided_at=datetime(2026, 11, 20, tzinfo=timezone.utc))
>>> d.decision_id == Decision.make_id("ov-1", 0) != Decision.make_id("ov-1", 1)
True
>>> Decision.model_validate_json(d.model_dump_json()) == d
True
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import UtcDatetime

DecisionAction = Literal["grant", "throttle", "deny", "escalated", "page"]


class Decision(BaseModel):
    """One guardrail decision on one overrun."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision_id: str = Field(min_length=1, max_length=64)
    overrun_id: str = Field(min_length=1, max_length=64)
    budget_id: str = Field(min_length=1, max_length=128)
    scope: dict[str, list[str]] = Field(default_factory=dict, description="the budget's scope (gateways enforce it)")
    action: DecisionAction
    amount_usd: float | None = Field(None, ge=0, description="grant: the cap increase")
    expires_at: UtcDatetime | None = None
    policy_version: str = Field(description="policy file version and content hash, e.g. '3@1a2b3c4d'")
    rule: str = Field(description="the policy rule that decided (or the rule whose approval decided)")
    step: int = Field(0, ge=0, description="0: the policy's decision; n: the n-th approval outcome")
    decided_at: UtcDatetime
    decided_by: str = Field("policy", description="'policy', or the approver (Slack id or name)")
    reason: str | None = None
    approval_id: str | None = None
    group: str | None = Field(None, description="escalated: the approver group; page: who was paged")
    deadline: UtcDatetime | None = None
    throttle_factor: float | None = Field(None, gt=0, le=1)

    @staticmethod
    def make_id(overrun_id: str, step: int) -> str:
        return hashlib.sha256(f"{overrun_id}\x1fdecision\x1f{step}".encode()).hexdigest()[:32]


def decision_json_schema() -> dict:
    """JSON Schema of a ``guardrail.decisions`` message (``burnguard schemas export``)."""
    return Decision.model_json_schema()

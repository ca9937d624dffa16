"""Approval requests to Slack through the outbox: the request and its chart, then its outcome, once each.

Outbox rows (thread key = the approval id, so updates and uploads wait for the request's message):

- ``{id}:post``: the request with Approve / Deny, in the approver group's channel
  (``slack_channel`` in the approvers file, else the default channel);
- ``{id}:upload:chart``: the budget chart (PNG) in the request's thread;
- ``{id}:update:{state}`` and ``{id}:reply:{state}``: when the request is decided (approved,
  denied, expired, escalated: by Slack, the CLI or the deadline), the message shows the outcome
  instead of the buttons and the thread says who, when and why; an escalated request's note names
  the channel of the new request, which is posted like any other (``{new id}:post``).

Keys make every row idempotent: a redelivered decision, a restarted worker or the periodic
:meth:`ApprovalNotifier.sync` adds nothing twice. Blocking (database): call from a thread.

>>> from datetime import datetime, timedelta, timezone
>>> from guardrails.approvers import Approvers
>>> from sinks.guardrail_store import GuardrailStore
>>> from sinks.migrations import upgrade
>>> from sinks.slack.outbox import SlackOutbox
>>> store = GuardrailStore("sqlite://"); _ = upgrade(store.engine)
>>> ap = Approvers.from_yaml_text("groups: {fin: {max_usd: 900, members: [U0ANN01], slack_channel: '#fin'}}")
>>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
>>> req = ApprovalRequest(approval_id="ap-1", overrun_id="ov-1", budget_id="b", rule="big", group="fin",
...     amount_usd=800.0, created_at=t, deadline=t + timedelta(hours=4), deadline_s=14400, period_start=t,
...     period_end=t + timedelta(days=1))
>>> box = SlackOutbox("sqlite://"); _ = upgrade(box.engine)
>>> n = ApprovalNotifier(box, store, ap)
>>> n.request(req, b"png"), n.request(req, b"png")
(['ap-1:post', 'ap-1:upload:chart'], [])
>>> [(i.kind, i.channel) for i in n.outbox.items("ap-1")]
[('post', '#fin'), ('upload', '#fin')]
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from guardrails.approvals import ApprovalRequest
from guardrails.approvers import Approvers
from schemas.overrun import Overrun
from sinks.guardrail_store import GuardrailStore
from sinks.guardrail_tables import ApprovalRow, DecisionRow
from sinks.slack.approval_blocks import chart_upload, outcome_message, outcome_reply, request_message
from sinks.slack.outbox import SlackOutbox

log = logging.getLogger("burnguard.slack")

__all__ = ["FINAL_STATES", "ApprovalNotifier"]

FINAL_STATES = ("approved", "denied", "expired", "escalated")


class ApprovalNotifier:
    """Enqueue an approval request's Slack calls (blocking: use a thread)."""

    def __init__(self, outbox: SlackOutbox, store: GuardrailStore, approvers: Approvers | Callable[[], Approvers],
                 default_channel: str | None = None) -> None:
        self.outbox, self.store, self.default_channel = outbox, store, default_channel
        self._approvers = approvers  # or a loader, called when needed (the worker checks the file at start)
        self._warned: set[str] = set()

    @property
    def approvers(self) -> Approvers:
        a = self._approvers
        return a if isinstance(a, Approvers) else a()

    def channel_for(self, group: str) -> str | None:
        """The group's ``slack_channel``, else the default channel (``None``: not posted, stored only)."""
        return self.approvers.slack_channel(group) or self.default_channel

    def _context(self, req: ApprovalRequest) -> tuple[Overrun | None, str | None]:
        """The overrun behind a request and the policy version that escalated it (both as stored)."""
        ov = self.store.overrun(req.overrun_id)
        with Session(self.store.engine) as s:
            version = s.scalar(select(DecisionRow.policy_version).where(DecisionRow.overrun_id == req.overrun_id,
                                                                        DecisionRow.step == 0))
        return ov, version

    def posted(self, approval_id: str) -> bool:
        """Whether the request has a post row (sent or waiting to be sent)."""
        return any(i.kind == "post" for i in self.outbox.items(approval_id))

    def request(self, req: ApprovalRequest, chart_png: bytes | None = None) -> list[str]:
        """Enqueue the request's message (and its chart); the keys added (empty: already there, or no channel)."""
        channel = self.channel_for(req.group)
        if channel is None:
            if req.group not in self._warned:
                log.warning("no Slack channel for approver group %s (set slack_channel in the approvers file or "
                            "BURNGUARD_SLACK_DEFAULT_CHANNEL): its requests are stored only", req.group)
                self._warned.add(req.group)
            return []
        ov, version = self._context(req)
        added = []
        if self.outbox.enqueue(f"{req.approval_id}:post", req.approval_id, "post", channel,
                               request_message(req, ov, version)):
            added.append(f"{req.approval_id}:post")
        if chart_png and self.outbox.enqueue(f"{req.approval_id}:upload:chart", req.approval_id, "upload", channel,
                                             chart_upload(req, base64.b64encode(chart_png).decode())):
            added.append(f"{req.approval_id}:upload:chart")
        return added

    def outcome(self, req: ApprovalRequest) -> list[str]:
        """Enqueue a decided request's update and thread note; the keys added (none for a request never posted)."""
        if req.state not in FINAL_STATES:
            return []
        items = self.outbox.items(req.approval_id)
        post = next((i for i in items if i.kind == "post"), None)
        keys = {f"{req.approval_id}:update:{req.state}", f"{req.approval_id}:reply:{req.state}"}
        if post is None or keys <= {i.key for i in items}:
            return []  # never posted (no channel, or no token then), or its outcome is queued already
        channel = post.channel
        escalated_to, new_channel = None, None
        if req.state == "escalated":
            new = self._escalated_to(req)
            if new is not None:
                escalated_to, new_channel = new.group, self.channel_for(new.group)
        ov, version = self._context(req)
        added = []
        for key, kind, payload in (
                (f"{req.approval_id}:update:{req.state}", "update", outcome_message(req, ov, version, escalated_to)),
                (f"{req.approval_id}:reply:{req.state}", "reply", outcome_reply(req, escalated_to, new_channel))):
            if self.outbox.enqueue(key, req.approval_id, kind, channel, payload):
                added.append(key)
        return added

    def _escalated_to(self, req: ApprovalRequest) -> ApprovalRequest | None:
        with Session(self.store.engine) as s:
            rows = s.scalars(select(ApprovalRow).where(ApprovalRow.overrun_id == req.overrun_id))
            for r in rows:
                new = ApprovalRequest.model_validate(r.payload)
                if new.previous_id == req.approval_id:
                    return new
        return None

    def sync(self, since: datetime) -> list[str]:
        """Outcomes of every request decided since ``since`` (any path: Slack, CLI, deadline) that are not in
        the outbox yet; the keys added. Bounded by ``since`` (the caller's look-back window)."""
        with Session(self.store.engine) as s:
            rows = list(s.scalars(select(ApprovalRow).where(ApprovalRow.state.in_(FINAL_STATES),
                                                            ApprovalRow.updated_at >= since)
                                  .order_by(ApprovalRow.updated_at)))
            reqs = [ApprovalRequest.model_validate(r.payload) for r in rows]
        added: list[str] = []
        for req in reqs:
            added += self.outcome(req)
        return added

"""Approve / Deny from Slack: the button opens a modal, its submission decides through the CLI's code path.

:class:`ApprovalInteractions` is a handler of :class:`sinks.slack.interactions.SlackInteractions`
(which verifies the signature, records the callback and drops a replayed one before calling it):

- ``block_actions`` with :data:`~sinks.slack.approval_blocks.APPROVE` / ``DENY``: a member of the
  request's approver group gets the modal (``views.open``: an optional amount, a reason, required
  to deny); anyone else, or a click on a request already decided or past its deadline, gets an
  ephemeral explanation (``chat.postEphemeral``) and nothing changes.
- ``view_submission`` of :data:`~sinks.slack.approval_blocks.MODAL_CALLBACK`: the decision is made by
  :meth:`~sinks.guardrail_store.GuardrailStore.approve` / ``deny``, the functions ``burnguard
  approve/deny`` call, with the Slack user id as the user: the same authorisation (the user in the
  group, within their limit for the amount approved), the same single transaction (two approvers
  at once, a double submission: the first wins, the second is told who decided), the same audit
  record. The outcome goes to the outbox (``chat.update`` of the request, a note in its thread).
  What cannot be decided as typed keeps the modal open with Slack's ``response_action: errors``
  under the field at fault, and nothing changes: an amount that is not a number or is more than
  requested, a Deny without a reason. (A correction submitted again is a new callback: its identity
  includes what was typed.)

The answer is immediate; ``views.open`` must happen within the 3 s a ``trigger_id`` lives, so the
client used here should have a short timeout (``make_client(..., timeout=2)``).

>>> import json
>>> from urllib.parse import urlencode
>>> body = urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U0ANN01"},
...     "trigger_id": "t1", "container": {"channel_id": "C0FIN", "message_ts": "1.1"},
...     "actions": [{"action_id": "approval_deny", "value": "ap-1", "action_ts": "3.3"}]})}).encode()
>>> cb = parse_callback(body)
>>> cb.kind, cb.verb, cb.approval_id, cb.user_id, cb.channel_id, cb.message_ts
('open', 'deny', 'ap-1', 'U0ANN01', 'C0FIN', '1.1')
>>> parse_callback(body.replace(b"approval_deny", b"incident_ack")) is None
True
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from pydantic import BaseModel, Field
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy.exc import SQLAlchemyError

from guardrails.approvals import ApprovalRequest, Refused, check_amount, parse_amount
from guardrails.approvers import Approvers
from schemas.text import plain_text, safe_mrkdwn
from sinks.guardrail_store import GuardrailStore, NotFound
from sinks.slack.approval_blocks import (AMOUNT_ACTION, AMOUNT_BLOCK, APPROVE, DENY, MODAL_CALLBACK, REASON_ACTION,
                                         REASON_BLOCK, decision_modal, slack_time)
from sinks.slack.approval_notify import ApprovalNotifier
from sinks.slack.blocks import money, user_ref
from sinks.slack.delivery import NETWORK_ERRORS

log = logging.getLogger("burnguard.slack")

__all__ = ["ApprovalCallback", "ApprovalInteractions", "already_decided", "parse_amount", "parse_callback"]

VERBS = {APPROVE: "approve", DENY: "deny"}
#: An inline modal error is short (Slack shows it under the field).
MAX_ERROR = 150


class ApprovalCallback(BaseModel):
    """One Approve / Deny click (``open``) or modal submission (``submit``)."""

    kind: Literal["open", "submit"]
    verb: Literal["approve", "deny"]
    approval_id: str = Field(min_length=1, max_length=64)
    user_id: str = Field(min_length=1, max_length=64)
    identity: str = Field(min_length=1, description="what makes this callback unique (action_ts, view id+hash)")
    trigger_id: str | None = None
    channel_id: str | None = None
    message_ts: str | None = None
    amount: str | None = Field(None, description="submit: the amount typed (empty: the amount requested)")
    reason: str | None = None

    @property
    def dedupe_key(self) -> str:
        raw = f"approval\x1f{self.kind}\x1f{self.verb}\x1f{self.approval_id}\x1f{self.user_id}\x1f{self.identity}"
        return hashlib.sha256(raw.encode()).hexdigest()

    @property
    def subject_id(self) -> str:
        return self.approval_id

    @property
    def action(self) -> str:
        return f"approval_{self.kind}_{self.verb}"


def _payload(body: bytes) -> dict[str, Any] | None:
    raw = (parse_qs(body.decode("utf-8", "replace")).get("payload") or [""])[0]
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _value(values: dict[str, Any], block: str, action: str) -> str | None:
    v = ((values.get(block) or {}).get(action) or {}).get("value")
    return str(v) if v is not None else None


def _submission_identity(view: dict[str, Any], values: dict[str, Any]) -> str:
    """A submission's identity: the view and what was typed. Slack keeps a view's id and hash when the user
    corrects an inline error and submits again: that is a new submission, a retried callback is not."""
    typed = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{view.get('id', '')}\x1f{view.get('hash', '')}\x1f{typed}"


def parse_callback(body: bytes) -> ApprovalCallback | None:
    """The approval click or submission in a callback body; ``None`` for any other callback."""
    doc = _payload(body)
    if doc is None:
        return None
    user = str((doc.get("user") or {}).get("id", ""))
    try:
        if doc.get("type") == "block_actions":
            for a in doc.get("actions") or []:
                if isinstance(a, dict) and a.get("action_id") in VERBS:
                    container = doc.get("container") or {}
                    return ApprovalCallback(
                        kind="open", verb=VERBS[a["action_id"]], approval_id=str(a.get("value", ""))[:64],
                        user_id=user, identity=str(a.get("action_ts", "")), trigger_id=doc.get("trigger_id"),
                        channel_id=container.get("channel_id") or (doc.get("channel") or {}).get("id"),
                        message_ts=container.get("message_ts"))
            return None
        view = doc.get("view") or {}
        if doc.get("type") != "view_submission" or view.get("callback_id") != MODAL_CALLBACK:
            return None
        meta = json.loads(view.get("private_metadata") or "{}")
        values = (view.get("state") or {}).get("values") or {}
        return ApprovalCallback(kind="submit", verb=meta.get("v"), approval_id=str(meta.get("a", ""))[:64],
                                user_id=user, identity=_submission_identity(view, values),
                                channel_id=meta.get("c"), message_ts=meta.get("t"),
                                amount=_value(values, AMOUNT_BLOCK, AMOUNT_ACTION),
                                reason=_value(values, REASON_BLOCK, REASON_ACTION))
    except (ValueError, TypeError, AttributeError):  # pydantic's ValidationError is a ValueError
        return None


def already_decided(req: ApprovalRequest) -> str:
    """What someone who clicks on a request that is no longer pending is told (mrkdwn).

    >>> from datetime import datetime, timedelta, timezone
    >>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
    >>> req = ApprovalRequest(approval_id="ap-1", overrun_id="o", budget_id="b", rule="r", group="fin",
    ...     amount_usd=80.0, created_at=t, deadline=t + timedelta(hours=4), deadline_s=14400, period_start=t,
    ...     period_end=t + timedelta(days=1), state="approved", decided_by="U0ANN01", decided_at=t)
    >>> already_decided(req).split(" at ")[0]
    'This request was already approved by <@U0ANN01>'
    """
    who = " when its deadline passed" if req.decided_by == "deadline" else f" by {user_ref(req.decided_by)}"
    text = f"This request was already {safe_mrkdwn(req.state)}{who}"
    if req.decided_at is not None:
        text += f" at {slack_time(req.decided_at)}"
    if req.reason:
        text += f": {safe_mrkdwn(plain_text(req.reason[:300], keep_newlines=False))}"
    return text + ". Nothing was changed."


class ApprovalInteractions:
    """Handles approval callbacks for :class:`~sinks.slack.interactions.SlackInteractions` (blocking: a thread)."""

    def __init__(self, store: GuardrailStore, approvers: Approvers | Callable[[], Approvers], client: WebClient,
                 notifier: ApprovalNotifier) -> None:
        self.store, self.client, self.notifier = store, client, notifier
        self._approvers = approvers

    @property
    def approvers(self) -> Approvers:
        a = self._approvers
        return a if isinstance(a, Approvers) else a()

    def parse(self, body: bytes) -> ApprovalCallback | None:
        return parse_callback(body)

    def apply(self, cb: ApprovalCallback, now: datetime) -> tuple[int, str]:
        """Act on a verified, first-seen callback; (HTTP status, body) for Slack: an empty 200 closes a modal,
        ``{"response_action": "errors", ...}`` keeps it open with a message under the fields at fault."""
        try:
            if cb.kind == "open":
                self._open(cb, now)
            else:
                errors = self._submit(cb, now)
                if errors:
                    return 200, json.dumps({"response_action": "errors", "errors": errors})
        except SQLAlchemyError as err:
            log.error("approval %s: the store is unavailable (%s); nothing was decided", cb.approval_id,
                      type(err).__name__)
            self._tell(cb, "burnguard could not record this (its database is unavailable). Nothing was changed; "
                           "please try again in a minute.")
        return 200, ""

    # -- clicks ----------------------------------------------------------------------------------
    def _open(self, cb: ApprovalCallback, now: datetime) -> None:
        req = self.store.approval(cb.approval_id)
        if req is None:
            self._tell(cb, f"There is no approval request `{safe_mrkdwn(cb.approval_id)}`.")
            return
        if req.state != "pending":
            self._tell(cb, already_decided(req))
            return
        if now >= req.deadline:
            self._tell(cb, f"This request passed its deadline {slack_time(req.deadline)}; it is being "
                           f"{'escalated' if req.on_timeout != 'expire' else 'closed'} as its rule says.")
            return
        approvers = self.approvers
        why = approvers.authorise(cb.user_id, req.group, 0.0)  # membership; the limit is checked on the amount
        if why is not None:
            self._refuse(cb, why)
            return
        view = decision_modal(req, cb.verb, self.store.overrun(req.overrun_id),
                              approvers.limit(cb.user_id, req.group), cb.channel_id, cb.message_ts)
        try:
            self.client.views_open(trigger_id=cb.trigger_id or "", view=view)
        except (SlackClientError, *NETWORK_ERRORS) as err:
            log.warning("approval %s: views.open failed (%s)", cb.approval_id, _slack_error(err))

    # -- submissions -----------------------------------------------------------------------------
    def _submit(self, cb: ApprovalCallback, now: datetime) -> dict[str, str] | None:
        """Decide; the modal's inline errors (block id -> message) when what was typed cannot be decided."""
        errors = self._invalid(cb)
        if errors:
            return errors
        approvers = self.approvers
        try:
            if cb.verb == "approve":
                applied = self.store.approve(cb.approval_id, cb.user_id, approvers, reason=_reason(cb.reason),
                                             now=now, amount_usd=parse_amount(cb.amount))
            else:
                applied = self.store.deny(cb.approval_id, cb.user_id, approvers, reason=_reason(cb.reason) or "",
                                          now=now)
        except Refused as err:
            req = self.store.approval(cb.approval_id)
            if req is not None and req.state != "pending":
                self._tell(cb, already_decided(req))
            else:
                self._refuse(cb, str(err))
            return None
        except (NotFound, ValueError) as err:
            self._tell(cb, f"Not recorded: {safe_mrkdwn(str(err))}. Nothing was changed.")
            return None
        req = applied.transition.after
        d = applied.decision
        log.warning("GUARDRAIL approval %s %s by %s in Slack%s", req.approval_id, req.state, cb.user_id,
                    f" ({money(d.amount_usd)})" if d is not None and d.amount_usd else "")
        self.notifier.outcome(req)
        return None

    def _invalid(self, cb: ApprovalCallback) -> dict[str, str]:
        """What the modal must show next to its fields (nothing is decided): a Deny without a reason, an
        amount that is not a number or is more than requested. Reads the request (its amount never changes)."""
        if cb.verb == "deny":
            return {} if _reason(cb.reason) else {REASON_BLOCK: "A reason is required to deny."}
        try:
            amount = parse_amount(cb.amount)
        except ValueError as err:
            return {AMOUNT_BLOCK: _sentence(str(err))}
        if amount is None:
            return {}
        req = self.store.approval(cb.approval_id)
        why = check_amount(req, amount) if req is not None else None
        return {AMOUNT_BLOCK: _sentence(why)} if why else {}

    # -- telling the user ------------------------------------------------------------------------
    def _refuse(self, cb: ApprovalCallback, why: str) -> None:
        text = f":no_entry_sign: You cannot {cb.verb} this request: {safe_mrkdwn(why)}. Nothing was changed."
        if "not a member" in why:
            text += (" (Approvers are matched by Slack user id: the approvers file needs "
                     f"`slack: {safe_mrkdwn(cb.user_id)}` on your entry, or your id in a user group of the "
                     "group's under `slack_usergroups`.)")
        self._tell(cb, text)

    def _tell(self, cb: ApprovalCallback, text: str) -> None:
        """An ephemeral message to the user in the request's channel (best effort: logged if Slack is down)."""
        if not cb.channel_id:
            log.warning("approval %s: cannot tell %s (no channel): %s", cb.approval_id, cb.user_id, text)
            return
        try:
            self.client.chat_postEphemeral(channel=cb.channel_id, user=cb.user_id, text=text)
        except (SlackClientError, *NETWORK_ERRORS) as err:
            log.warning("approval %s: chat.postEphemeral failed (%s)", cb.approval_id, _slack_error(err))


def _sentence(text: str, n: int = MAX_ERROR) -> str:
    """An inline error: capitalised, a full stop, at most ``n`` characters (plain text: Slack shows it as is)."""
    text = text[:1].upper() + text[1:] + "."
    return text if len(text) <= n else text[: n - 1] + "…"


def _reason(text: str | None) -> str | None:
    return plain_text(text.strip())[:500] if text and text.strip() else None


def _slack_error(err: Exception) -> str:
    if isinstance(err, SlackApiError):
        return str(err.response.get("error") or err.response.status_code)
    return type(err).__name__

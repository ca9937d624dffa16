"""Block Kit for finance approvals: the request (Approve / Deny), its outcome, thread notes and the modal.

The request says what is being approved: the budget and its scope, what triggered it and since
when, spend to date vs the cap, the forecast to the period's end and the time to exhaustion, the
amount requested, the policy rule, the top contributors by $ impact and the deadline. Its outcome
replaces the buttons by who decided, when and why. Every event-supplied string (budget ids and
names, scope values, contributor keys, rule and group names, reasons typed by people) passes
through :func:`schemas.text.safe_mrkdwn`; only burnguard's own pieces are mrkdwn (``<@U...>`` for
Slack user ids, ``<!date^...>`` for times, shown in each reader's time zone).

Action ids differ from the incident buttons' (``incident_*``): :data:`APPROVE`, :data:`DENY`; the
modal's ``callback_id`` is :data:`MODAL_CALLBACK`.

>>> from datetime import datetime, timedelta, timezone
>>> from guardrails.approvals import ApprovalRequest
>>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
>>> req = ApprovalRequest(approval_id="ap-1", overrun_id="ov-1", budget_id="<!channel>", rule="big", group="fin",
...     amount_usd=800.0, created_at=t, deadline=t + timedelta(hours=4), deadline_s=14400,
...     period_start=t, period_end=t + timedelta(days=1))
>>> msg = request_message(req, None)
>>> "<!channel>" in str(msg), "&lt;!channel&gt;" in msg["text"]
(False, True)
>>> [e["action_id"] for e in msg["blocks"][-1]["elements"]]
['approval_approve', 'approval_deny']
>>> done = outcome_message(req.model_copy(update={"state": "denied", "decided_by": "U0FIN1", "decided_at": t,
...                                               "reason": "<https://x|no>"}), None)
>>> any(b["type"] == "actions" for b in done["blocks"]), "<@U0FIN1>" in str(done), "<https://x" in str(done)
(False, True, False)
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Literal

from guardrails.approvals import ApprovalRequest, granted_usd
from schemas.overrun import Overrun
from schemas.text import plain_text, safe_mrkdwn
from sinks.slack.blocks import money, user_ref

__all__ = ["AMOUNT_ACTION", "AMOUNT_BLOCK", "APPROVE", "DENY", "MODAL_CALLBACK", "REASON_ACTION", "REASON_BLOCK",
           "Verb", "chart_upload", "decision_modal", "modal_metadata", "outcome_message", "outcome_reply",
           "request_message", "slack_time", "summary_line"]

APPROVE, DENY = "approval_approve", "approval_deny"
MODAL_CALLBACK = "approval_decide"
AMOUNT_BLOCK, AMOUNT_ACTION = "approval_amount", "amount"
REASON_BLOCK, REASON_ACTION = "approval_reason", "reason"
MAX_TEXT = 2900  # Slack's section text limit is 3000
MAX_REASON = 500
Verb = Literal["approve", "deny"]
OUTCOME = {"approved": ":white_check_mark: *Approved*", "denied": ":no_entry: *Denied*",
           "expired": ":hourglass: *Expired*", "escalated": ":arrow_double_up: *Escalated*",
           "pending": ":hourglass_flowing_sand: *Waiting for a decision*"}


def _cut(text: str, n: int = MAX_TEXT) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def slack_time(t: datetime) -> str:
    """A time Slack shows in the reader's time zone, with a UTC fallback.

    >>> from datetime import datetime, timezone
    >>> slack_time(datetime(2026, 11, 20, 13, tzinfo=timezone.utc))
    '<!date^1795179600^{date_short_pretty} {time}|2026-11-20 13:00 UTC>'
    """
    return f"<!date^{int(t.timestamp())}^{{date_short_pretty}} {{time}}|{t:%Y-%m-%d %H:%M} UTC>"


def duration(d: timedelta) -> str:
    """``5h 20m``, ``2d 3h``, ``45m``.

    >>> duration(timedelta(hours=5, minutes=20)), duration(timedelta(days=2, hours=3)), duration(timedelta(0))
    ('5h 20m', '2d 3h', '0m')
    """
    m = max(int(d.total_seconds() // 60), 0)
    days, hours, mins = m // 1440, m % 1440 // 60, m % 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


def _scope(ov: Overrun | None) -> str:
    if ov is None or not ov.scope:
        return "whole organisation"
    return ", ".join(f"{safe_mrkdwn(k)}=*{safe_mrkdwn('|'.join(v))}*" for k, v in sorted(ov.scope.items()))


def _trigger(ov: Overrun) -> str:
    if ov.trigger == "threshold":
        pct = f"{100 * ov.threshold:g} % of the cap" if ov.threshold is not None else "a threshold"
        return f"spend crossed {pct} (`{safe_mrkdwn(ov.rule)}`)"
    if ov.trigger == "burn_rate" and ov.burn_rate is not None:
        b = ov.burn_rate
        factor = f" ≥ {b.factor:g}x" if b.factor is not None else ""
        wins = ""
        if b.long_window_s and b.short_window_s:
            long, short = duration(timedelta(seconds=b.long_window_s)), duration(timedelta(seconds=b.short_window_s))
            wins = f" over {long} and {short}"
        return (f"burn rate `{safe_mrkdwn(ov.rule)}`{factor}{wins}: {b.long_rate:.1f}x long, "
                f"{b.short_rate:.1f}x short")
    score = f" score {ov.anomaly_score:.4f}" if ov.anomaly_score is not None else ""
    return f"anomaly `{safe_mrkdwn(ov.rule)}`{score}"


def _exhaustion(ov: Overrun) -> str:
    if ov.exhausted_at is None:
        return "not this period"
    if ov.exhausted_at <= ov.at or ov.spend_usd >= ov.cap_usd:
        return "already exhausted"
    return f"in {duration(ov.exhausted_at - ov.at)} ({slack_time(ov.exhausted_at)})"


def summary_line(req: ApprovalRequest, ov: Overrun | None) -> str:
    """One line: budget, amount, rule (the notification text and the modal's header)."""
    name = ov.budget_name if ov is not None and ov.budget_name else req.budget_id
    return (f"budget {safe_mrkdwn(plain_text(name, keep_newlines=False))} (`{safe_mrkdwn(req.budget_id)}`): "
            f"{money(req.amount_usd)} requested by rule `{safe_mrkdwn(req.rule)}`")


def _facts(req: ApprovalRequest, ov: Overrun | None, policy_version: str | None) -> list[dict[str, Any]]:
    fields = [f"*Budget*\n`{safe_mrkdwn(req.budget_id)}`", f"*Scope*\n{_scope(ov)}"]
    if ov is not None:
        pct = f" ({100 * ov.spend_usd / ov.cap_usd:.0f} %)" if ov.cap_usd else ""
        fields += [f"*Trigger*\n{_trigger(ov)}, since {slack_time(ov.started_at)}",
                   f"*Spend to date*\n{money(ov.spend_usd)} of {money(ov.cap_usd)}{pct} this "
                   f"{safe_mrkdwn(ov.period)}",
                   f"*Forecast, end of period*\n{money(ov.forecast_usd)} "
                   f"({safe_mrkdwn(ov.forecast_method.replace('_', ' '))})",
                   f"*Budget exhausted*\n{_exhaustion(ov)}"]
    rule = f"`{safe_mrkdwn(req.rule)}`" + (f" (policy {safe_mrkdwn(policy_version)})" if policy_version else "")
    fields += [f"*Amount requested*\n{money(req.amount_usd)}", f"*Policy rule*\n{rule}",
               f"*Approvers*\n{safe_mrkdwn(req.group)}" + (f" (escalation {req.level})" if req.level else ""),
               f"*Deadline*\n{slack_time(req.deadline)}"]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _cut(f, 1900)} for f in fields[:10]]}]
    if ov is not None and ov.contributors:
        lines = [f"• `{safe_mrkdwn(c.key)}` {money(c.impact_usd)} ({c.observed:.4g} vs {c.baseline:.4g})"
                 for c in ov.contributors[:5]]
        text = _cut("*Top contributors by $ impact*\n" + "\n".join(lines))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    return blocks


def _head(req: ApprovalRequest, ov: Overrun | None, title: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"{title}: {summary_line(req, ov)}")}}


def _context(req: ApprovalRequest) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(
        f"`{req.approval_id}` · chart in the thread · or `burnguard approve {req.approval_id} --as USER`")}]}


def request_message(req: ApprovalRequest, ov: Overrun | None, policy_version: str | None = None) -> dict[str, Any]:
    """``{"text", "blocks"}`` of a pending request, with Approve and Deny."""
    title = ":money_with_wings: *Approval needed*"
    blocks = [_head(req, ov, title), *_facts(req, ov, policy_version), _context(req),
              {"type": "actions", "block_id": f"approval:{req.approval_id}", "elements": [
                  {"type": "button", "action_id": APPROVE, "value": req.approval_id, "style": "primary",
                   "text": {"type": "plain_text", "text": "Approve"}},
                  {"type": "button", "action_id": DENY, "value": req.approval_id, "style": "danger",
                   "text": {"type": "plain_text", "text": "Deny"}}]}]
    return {"text": _cut(f"Approval needed: {summary_line(req, ov)}", 3000), "blocks": blocks}


def _outcome(req: ApprovalRequest, escalated_to: str | None = None) -> str:
    head = OUTCOME.get(req.state, safe_mrkdwn(req.state))
    if req.state == "approved":
        amount = granted_usd(req)
        head += f" {money(amount)}" + (f" of {money(req.amount_usd)} requested" if amount != req.amount_usd else "")
    if req.decided_by and req.decided_by != "deadline":
        head += f" by {user_ref(req.decided_by)}"
    elif req.decided_by == "deadline":
        head += " at the deadline"
    if req.decided_at is not None:
        head += f" · {slack_time(req.decided_at)}"
    if req.state == "escalated" and escalated_to:
        head += f" to *{safe_mrkdwn(escalated_to)}*"
    if req.reason:
        head += f"\n> {safe_mrkdwn(plain_text(req.reason[:MAX_REASON], keep_newlines=False))}"
    return head


def outcome_message(req: ApprovalRequest, ov: Overrun | None, policy_version: str | None = None,
                    escalated_to: str | None = None) -> dict[str, Any]:
    """The request as decided: the same facts, the buttons replaced by the outcome."""
    outcome = _outcome(req, escalated_to)
    blocks = [_head(req, ov, OUTCOME.get(req.state, "*Decided*")), *_facts(req, ov, policy_version), _context(req),
              {"type": "section", "block_id": f"approval-outcome:{req.approval_id}",
               "text": {"type": "mrkdwn", "text": _cut(outcome)}}]
    return {"text": _cut(f"{req.state}: {summary_line(req, ov)}", 3000), "blocks": blocks}


def outcome_reply(req: ApprovalRequest, escalated_to: str | None = None, channel: str | None = None) -> dict[str, Any]:
    """A note in the request's thread: the outcome (for an escalation, where the request went)."""
    text = _outcome(req, escalated_to)
    if req.state == "escalated" and channel:
        where = f"<#{channel}>" if channel[:1] in "CG" else safe_mrkdwn(channel)
        text += f"\nA new request was posted in {where}; this one can no longer be decided."
    text = _cut(text)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def modal_metadata(approval_id: str, verb: Verb, channel: str | None, message_ts: str | None) -> str:
    """The modal's ``private_metadata``: which request, which verb, where the message is (JSON)."""
    return json.dumps({"a": approval_id, "v": verb, "c": channel, "t": message_ts}, separators=(",", ":"))


def decision_modal(req: ApprovalRequest, verb: Verb, ov: Overrun | None, limit_usd: float | None,
                   channel: str | None, message_ts: str | None) -> dict[str, Any]:
    """The ``views.open`` view: an optional amount (approve, at most the request) and a reason (required to deny).

    >>> from datetime import datetime, timedelta, timezone
    >>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
    >>> req = ApprovalRequest(approval_id="ap-1", overrun_id="o", budget_id="b", rule="r", group="fin",
    ...     amount_usd=800.0, created_at=t, deadline=t + timedelta(hours=4), deadline_s=14400, period_start=t,
    ...     period_end=t + timedelta(days=1))
    >>> v = decision_modal(req, "approve", None, 500.0, "C1", "1.2")
    >>> [(b.get("block_id"), b.get("optional")) for b in v["blocks"] if b["type"] == "input"]
    [('approval_amount', True), ('approval_reason', True)]
    >>> [(b.get("block_id"), b.get("optional")) for b in decision_modal(req, "deny", None, 500.0, "C1", "1.2")["blocks"]
    ...  if b["type"] == "input"]
    [('approval_reason', False)]
    """
    approve = verb == "approve"
    info = f"*{'Approve' if approve else 'Deny'}* {summary_line(req, ov)}\nDeadline {slack_time(req.deadline)}."
    if approve and limit_usd is not None:
        info += (f"\nYou may approve up to {money(limit_usd)} in {safe_mrkdwn(req.group)}."
                 if limit_usd != float("inf") else "")
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": _cut(info)}}]
    if approve:
        hint = f"Leave empty to approve the {money(req.amount_usd)} requested; at most that."
        blocks.append({"type": "input", "block_id": AMOUNT_BLOCK, "optional": True,
                       "label": {"type": "plain_text", "text": "Amount (USD)"},
                       "hint": {"type": "plain_text", "text": hint},
                       "element": {"type": "number_input", "action_id": AMOUNT_ACTION, "is_decimal_allowed": True,
                                   "min_value": "0.01", "max_value": f"{req.amount_usd:.2f}"}})
    blocks.append({"type": "input", "block_id": REASON_BLOCK, "optional": approve,
                   "label": {"type": "plain_text", "text": "Reason" if not approve else "Reason (optional)"},
                   "element": {"type": "plain_text_input", "action_id": REASON_ACTION, "multiline": True,
                               "max_length": MAX_REASON}})
    return {"type": "modal", "callback_id": MODAL_CALLBACK,
            "private_metadata": modal_metadata(req.approval_id, verb, channel, message_ts),
            "title": {"type": "plain_text", "text": "Approve spend" if approve else "Deny spend"},
            "submit": {"type": "plain_text", "text": "Approve" if approve else "Deny"},
            "close": {"type": "plain_text", "text": "Cancel"}, "blocks": blocks}


def chart_upload(req: ApprovalRequest, png_b64: str) -> dict[str, Any]:
    """The outbox payload of the chart's upload into the request's thread (``files_upload_v2``)."""
    return {"filename": f"budget-{req.approval_id}.png", "png_b64": png_b64,
            "title": plain_text(f"{req.budget_id}: spend, cap and forecast", keep_newlines=False)[:200],
            "alt_txt": plain_text(f"Cumulative spend of budget {req.budget_id} against its cap, with the forecast "
                                  f"to the end of the period", keep_newlines=False)[:1000]}

"""A hand-worked escalation shared by the approvals-in-Slack tests, and signed Slack callbacks.

Budget ``search-prod`` (cap $4,000 a month) has spent $4,100 and is forecast at $4,800: the
policy escalates the $800 overrun to ``fin`` (deadline 4 h, then ``cfo``). In ``fin``, ann
(U0ANN0001) may approve up to $1,000, bob (U0BOB0001) up to $500; carl (U0CARL001) is in no group.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from guardrails.approvers import Approvers
from guardrails.policy import Policy
from schemas.alert import Contributor
from schemas.overrun import BurnRateInfo, Overrun

T = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
ANN, BOB, CARL, CY = "U0ANN0001", "U0BOB0001", "U0CARL001", "U0CY00001"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

APPROVERS = Approvers.from_yaml_text(f"""
groups:
  fin:
    max_usd: 1000
    members: [{{slack: {ANN}, name: ann}}, {{slack: {BOB}, name: bob, max_usd: 500}}]
    next: cfo
    slack_channel: "#fin-approvals"
  cfo:
    max_usd: unlimited
    members: [{{slack: {CY}, name: cy}}]
    slack_channel: "#cfo"
""")

POLICY = Policy.from_text("""
version: 7
rules:
  - name: finance-same-day
    default: true
    then: {action: escalate, to: fin, deadline: 4h, on_timeout: {escalate: cfo, deadline: 4h}}
""", groups=APPROVERS.names())


def overrun(budget_id: str = "search-prod", **changes: Any) -> Overrun:
    ov = Overrun(
        overrun_id=f"ov-{budget_id}"[:64], budget_id=budget_id, budget_name="Search <!channel> production",
        trigger="burn_rate", rule="slow", scope={"team": ["search"], "tier": ["production"]}, tier="production",
        period="month", period_start=datetime(2026, 11, 1, tzinfo=timezone.utc),
        period_end=datetime(2026, 12, 1, tzinfo=timezone.utc), at=T, started_at=T - timedelta(minutes=30),
        cap_usd=4000, spend_usd=4100, forecast_usd=4800, forecast_method="holt",
        exhausted_at=T - timedelta(hours=2), overrun_usd=800, overrun_pct=20, basis="forecast",
        burn_rate=BurnRateInfo(rule="slow", factor=6.0, long_window_s=21600, short_window_s=1800, long_rate=6.4,
                               short_rate=7.1),
        contributors=[Contributor(key="customer=<https://evil.example|acme>", impact_usd=512.5, observed=9.0,
                                  baseline=2.0)])
    return ov.model_copy(update=changes)


def signed(body: bytes, secret: str = SECRET, ts: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    return {"X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body),
            "Content-Type": "application/x-www-form-urlencoded"}


def form(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def click(approval_id: str, user: str, verb: str = "approve", channel: str = "C_FIN_APPROVALS",
          message_ts: str = "1.000001", action_ts: str = "1795179600.000100") -> bytes:
    """A ``block_actions`` callback: ``user`` presses Approve or Deny on the request's message."""
    return form({"type": "block_actions", "user": {"id": user, "username": user.lower()},
                 "trigger_id": f"trig-{user}-{action_ts}", "container": {"type": "message",
                                                                         "channel_id": channel,
                                                                         "message_ts": message_ts},
                 "channel": {"id": channel}, "response_url": "https://hooks.invalid/x",
                 "actions": [{"action_id": f"approval_{verb}", "block_id": f"approval:{approval_id}",
                              "value": approval_id, "type": "button", "action_ts": action_ts}]})


def submit(approval_id: str, user: str, verb: str = "approve", amount: str | None = None,
           reason: str | None = None, channel: str = "C_FIN_APPROVALS", message_ts: str = "1.000001",
           view_id: str = "V0000001", view_hash: str = "h1") -> bytes:
    """A ``view_submission`` of the decision modal, shaped as Slack sends it (state.values by block/action)."""
    values: dict[str, Any] = {"approval_reason": {"reason": {"type": "plain_text_input", "value": reason}}}
    if verb == "approve":
        values["approval_amount"] = {"amount": {"type": "number_input", "value": amount}}
    meta = json.dumps({"a": approval_id, "v": verb, "c": channel, "t": message_ts})
    return form({"type": "view_submission", "user": {"id": user}, "trigger_id": "t",
                 "view": {"id": view_id, "hash": view_hash, "type": "modal", "callback_id": "approval_decide",
                          "private_metadata": meta, "state": {"values": values}}})

"""Block Kit messages for incidents; every event-supplied string is escaped for mrkdwn.

Team, feature, customer and model names, series keys and summaries come from producers, so
they pass through :func:`schemas.text.safe_mrkdwn` (``&``, ``<``, ``>``): ``<!channel>``, links
and mentions in a tag value show as text. Only burnguard's own pieces are mrkdwn: the runbook
link (from config, http(s) only) and Slack user ids that look like ids (``<@U123>``).

>>> from datetime import datetime, timezone
>>> from schemas.incident import IncidentRecord
>>> t = datetime(2026, 11, 20, 14, tzinfo=timezone.utc)
>>> rec = IncidentRecord(id="inc-1", status="firing", title="spend 5.0x normal on <!channel>",
...     subject_key="team=<!channel>|feature=f|customer=c|model=m|environment=production", metric="spend",
...     score=0.99999, observed=5.0, baseline=1.0, expected_low=0.8, expected_high=1.2, started_at=t, updated_at=t)
>>> msg = incident_message(rec, runbook_url="https://runbooks.example/spend")
>>> "<!channel>" in str(msg), "&lt;!channel&gt;" in msg["text"]
(False, True)
>>> [e["action_id"] for e in msg["blocks"][-1]["elements"]]
['incident_ack', 'incident_snooze_1h', 'incident_snooze_24h', 'incident_resolve']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from schemas.incident import EvidenceAlert, IncidentRecord
from schemas.text import plain_text, safe_mrkdwn

ACK, SNOOZE_1H, SNOOZE_24H, RESOLVE = "incident_ack", "incident_snooze_1h", "incident_snooze_24h", "incident_resolve"
#: action_id -> snooze seconds (None: not a snooze)
ACTIONS: dict[str, int | None] = {ACK: None, SNOOZE_1H: 3600, SNOOZE_24H: 86400, RESOLVE: None}
EMOJI = {"pending": ":hourglass:", "firing": ":rotating_light:", "resolved": ":white_check_mark:"}
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_URL = re.compile(r"^https?://[^\s<>|]+$")
MAX_TEXT = 2900  # Slack's section text limit is 3000


def user_ref(user: str | None) -> str:
    """A Slack user id as a mention (``<@U123>``); anything else (a CLI ``--as`` name) as escaped text.

    >>> user_ref("U024BE7LH"), user_ref("<!here>")
    ('<@U024BE7LH>', '&lt;!here&gt;')
    """
    if not user:
        return "someone"
    return f"<@{user}>" if _USER_ID.match(user) else safe_mrkdwn(user)


def safe_url(url: str | None) -> str | None:
    """``url`` if it is a plain http(s) URL that cannot break out of ``<url|label>``; else None.

    >>> safe_url("https://x.example/a?b=1"), safe_url("javascript:alert(1)"), safe_url("https://x|<!channel>")
    ('https://x.example/a?b=1', None, None)
    """
    return url if url and _URL.match(url) else None


def money(x: float | None) -> str:
    return "n/a" if x is None else f"${x:,.2f}"


def _cut(text: str, n: int = MAX_TEXT) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _where(rec: IncidentRecord) -> str:
    w = rec.where
    if "key" in w:
        return f"`{safe_mrkdwn(w['key'])}`"
    parts = [f"{f} *{safe_mrkdwn(w[f])}*" for f in ("team", "feature", "customer", "model", "environment")
             if w.get(f) not in (None, "*")]
    return ", ".join(parts) or "all teams"


def _status_line(rec: IncidentRecord) -> str:
    bits = [f"{EMOJI.get(rec.status, '')} *{rec.status}*"]
    if rec.acked_by:
        bits.append(f"acknowledged by {user_ref(rec.acked_by)}")
    if rec.snoozed_until and rec.status != "resolved":
        bits.append(f"snoozed until {rec.snoozed_until:%Y-%m-%d %H:%M} UTC by {user_ref(rec.snoozed_by)}")
    if rec.resolved_by:
        bits.append(f"resolved by {user_ref(rec.resolved_by)}")
    elif rec.resolved_at:
        bits.append(f"resolved at {rec.resolved_at:%H:%M} UTC")
    if rec.reopened:
        bits.append(f"re-opened {rec.reopened}x")
    return " · ".join(bits)


def incident_message(rec: IncidentRecord, runbook_url: str | None = None) -> dict[str, Any]:
    """``{"text", "blocks"}`` for ``chat.postMessage`` / ``chat.update``."""
    title = safe_mrkdwn(plain_text(rec.title, keep_newlines=False))
    what = (f"*What*: {safe_mrkdwn(rec.metric.replace('_', ' '))} {rec.observed:.4g} vs expected "
            f"{rec.expected_low:.4g}–{rec.expected_high:.4g} (baseline {rec.baseline:.4g}), score {rec.score:.6f}, "
            f"{safe_mrkdwn(rec.severity)}")
    if rec.summary:
        what += f"\n{safe_mrkdwn(rec.summary)}"
    fields = [f"*Where*\n{_where(rec)}", f"*Since*\n{rec.started_at:%Y-%m-%d %H:%M} UTC",
              f"*Excess now*\n{money(rec.excess_usd_per_hour)}/h", f"*Excess so far*\n≈{money(rec.excess_usd_total)}"]
    if rec.spend_usd_per_hour is not None:
        fields.append(f"*Spend now*\n{money(rec.spend_usd_per_hour)}/h")
    fields.append(f"*Evidence*\n{rec.alert_count} alert(s), in the thread")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"{EMOJI.get(rec.status, '')} *{title}*")}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(what)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _cut(f, 1900)} for f in fields[:10]]},
    ]
    if rec.contributors:
        lines = [f"• `{safe_mrkdwn(c.key)}` +{money(c.excess_usd_per_hour)}/h" for c in rec.contributors[:5]]
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": _cut("*Top contributors*\n" + "\n".join(lines))}})
    if rec.budget is not None:
        b = rec.budget
        line = (f"*Budget* `{safe_mrkdwn(b.budget_id)}`: {money(b.spent_usd)} of {money(b.cap_usd)} "
                f"({100 * b.fraction:.0f}%)")
        if b.projected_usd is not None:
            line += f", projected {money(b.projected_usd)}"
        if b.exhausted_at is not None:
            line += f", exhausted {b.exhausted_at:%Y-%m-%d %H:%M} UTC"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(line)}})
    context = [_status_line(rec), f"`{rec.id}`"]
    link = safe_url(runbook_url or rec.runbook_url)
    if link:
        context.append(f"<{link}|Runbook>")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(" · ".join(context))}]})
    if rec.status != "resolved":
        blocks.append({"type": "actions", "block_id": f"incident:{rec.id}", "elements": _buttons(rec)})
    return {"text": _cut(f"{EMOJI.get(rec.status, '')} {title} ({rec.status})", 3000), "blocks": blocks}


def _buttons(rec: IncidentRecord) -> list[dict[str, Any]]:
    def button(action_id: str, label: str, style: str | None = None) -> dict[str, Any]:
        b: dict[str, Any] = {"type": "button", "action_id": action_id, "value": rec.id,
                             "text": {"type": "plain_text", "text": label}}
        if style:
            b["style"] = style
        return b

    resolve = button(RESOLVE, "Resolve", "danger")
    resolve["confirm"] = {"title": {"type": "plain_text", "text": "Resolve this incident?"},
                          "text": {"type": "mrkdwn", "text": "Alerts still firing will not re-open it until "
                                                             "a new alert comes."},
                          "confirm": {"type": "plain_text", "text": "Resolve"},
                          "deny": {"type": "plain_text", "text": "Cancel"}}
    return [button(ACK, "Acknowledge", "primary"), button(SNOOZE_1H, "Snooze 1h"), button(SNOOZE_24H, "Snooze 24h"),
            resolve]


def evidence_line(a: EvidenceAlert) -> str:
    ratio = f"{a.observed / a.baseline:.1f}x" if a.baseline else "new"
    line = (f"• {safe_mrkdwn(a.status)} `{safe_mrkdwn(a.series_key)}` {safe_mrkdwn(a.metric)} {a.observed:.4g} vs "
            f"{a.baseline:.4g} ({ratio}) from {a.started_at:%H:%M} UTC")
    return line + (f" — {safe_mrkdwn(a.summary)}" if a.summary else "")


REPLY_HEAD = {"open": "Evidence", "update": "New evidence", "resolve": ":white_check_mark: Resolved",
              "reopen": ":rotating_light: Re-opened", "repeat": ":repeat: Still firing",
              "ack": "Acknowledged", "snooze": "Snoozed"}


def thread_reply(kind: str, rec: IncidentRecord, new: Sequence[EvidenceAlert] = ()) -> dict[str, Any]:
    """A reply in the incident's thread: its evidence, or what just happened to it."""
    head = REPLY_HEAD.get(kind, safe_mrkdwn(kind))
    if kind == "ack":
        head += f" by {user_ref(rec.acked_by)}"
    elif kind == "snooze" and rec.snoozed_until:
        head += f" until {rec.snoozed_until:%Y-%m-%d %H:%M} UTC by {user_ref(rec.snoozed_by)}"
    elif kind == "resolve":
        head += f" by {user_ref(rec.resolved_by)}" if rec.resolved_by else " (every alert resolved)"
        if rec.excess_usd_total is not None:
            head += f"; excess ≈{money(rec.excess_usd_total)} in total"
    elif kind == "repeat":
        head += f" since {rec.started_at:%Y-%m-%d %H:%M} UTC, {money(rec.excess_usd_per_hour)}/h over normal"
    lines = [evidence_line(a) for a in new[:30]]
    if len(new) > 30:
        lines.append(f"… and {len(new) - 30} more")
    text = _cut("\n".join([f"*{head}*", *lines]))
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}

"""Incident messages: event text cannot inject mentions, links or formatting; the facts are all there."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from schemas.incident import BudgetState, ContributorRow, EvidenceAlert, IncidentRecord
from sinks.slack.blocks import incident_message, thread_reply

T = datetime(2026, 11, 20, 14, 3, tzinfo=timezone.utc)
EVIL = "<!channel> <@U0BOSS> <https://evil.example|click> &amp; *x*"


def record(**kw) -> IncidentRecord:
    base = dict(id="inc-abc", status="firing", title=f"spend 5.0x normal on {EVIL}",
                subject_key=f"team={EVIL}|feature=f|customer=<!here>|model=m>|environment=production",
                metric="spend", severity="critical", score=0.99999, observed=5.0, baseline=1.0, expected_low=0.8,
                expected_high=1.2, started_at=T, updated_at=T, summary=EVIL, excess_usd_per_hour=240.0,
                spend_usd_per_hour=300.0, excess_usd_total=80.0, alert_count=9,
                contributors=[ContributorRow(key=f"customer={EVIL}", excess_usd_per_hour=200.0)],
                budget=BudgetState(budget_id=f"team-{EVIL}", spent_usd=800.0, cap_usd=1000.0, projected_usd=1400.0))
    base.update(kw)
    return IncidentRecord(**base)


def all_text(msg: dict) -> str:
    return json.dumps(msg, ensure_ascii=False)


def test_event_text_is_escaped_everywhere() -> None:
    msg = incident_message(record(), runbook_url="https://runbooks.example/spend")
    text = all_text(msg)
    for raw in ("<!channel>", "<@U0BOSS>", "<https://evil.example", "<!here>", "m>|"):
        assert raw not in text, raw
    assert "&lt;!channel&gt;" in text and "&amp;amp;" in text
    # the only link is the runbook from config
    assert text.count("<https://") == 1 and "<https://runbooks.example/spend|Runbook>" in text


def test_message_carries_what_where_money_since_contributors_budget_and_buttons() -> None:
    msg = incident_message(record())
    text = all_text(msg)
    for expected in ("$240.00/h", "$300.00/h", "≈$80.00", "2026-11-20 14:03 UTC", "9 alert(s)",
                     "+$200.00/h", "$800.00 of $1,000.00 (80%)", "projected $1,400.00", "`inc-abc`"):
        assert expected in text, expected
    actions = msg["blocks"][-1]
    assert actions["type"] == "actions"
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
        ("incident_ack", "inc-abc"), ("incident_snooze_1h", "inc-abc"), ("incident_snooze_24h", "inc-abc"),
        ("incident_resolve", "inc-abc")]


def test_resolved_message_has_no_buttons_and_says_who() -> None:
    msg = incident_message(record(status="resolved", resolved_by="U024BE7LH", resolved_at=T))
    assert msg["blocks"][-1]["type"] == "context"
    assert "resolved by <@U024BE7LH>" in all_text(msg)


def test_unsafe_runbook_url_and_cli_user_names_are_not_markup() -> None:
    msg = incident_message(record(acked_by="<!everyone>"), runbook_url="https://x.example|<!channel>")
    text = all_text(msg)
    assert "Runbook" not in text and "<!everyone>" not in text and "&lt;!everyone&gt;" in text


def test_thread_reply_escapes_evidence() -> None:
    ev = EvidenceAlert(fingerprint="f", series_key=f"team={EVIL}", metric="spend", status="firing", score=1.0,
                       observed=5.0, baseline=1.0, started_at=T, at=T, summary=EVIL)
    reply = thread_reply("open", record(), [ev])
    assert "<!channel>" not in all_text(reply) and "5.0x" in reply["text"]

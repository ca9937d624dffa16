"""Slack callback verification: forged, stale and replayed callbacks change nothing; good ones queue commands."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from detectors.incidents.silence import Acknowledge, Resolve, Snooze
from sinks.migrations import upgrade
from sinks.slack.interactions import SlackInteractions

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_800_000_000.0


def press(action_id: str, incident: str = "inc-1", user: str = "U1", action_ts: str = "1800000000.1") -> bytes:
    payload = {"type": "block_actions", "user": {"id": user, "username": "ann"},
               "container": {"type": "message", "channel_id": "C1", "message_ts": "1.1"},
               "response_url": "https://hooks.slack.invalid/actions/1",
               "actions": [{"action_id": action_id, "block_id": f"incident:{incident}", "value": incident,
                            "type": "button", "action_ts": action_ts}]}
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(body: bytes, at: float = NOW, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(at))
    return {"X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)}


@pytest.fixture
def inbox(tmp_path) -> SlackInteractions:
    url = f"sqlite:///{tmp_path / 's.db'}"
    upgrade(url)
    box = SlackInteractions(SECRET, url, clock=lambda: NOW)
    yield box
    box.close()


def test_valid_presses_become_commands(inbox: SlackInteractions) -> None:
    for action, ts in (("incident_ack", "1.1"), ("incident_snooze_1h", "1.2"), ("incident_snooze_24h", "1.3"),
                       ("incident_resolve", "1.4")):
        body = press(action, action_ts=ts)
        assert inbox.handle(body, signed(body)) == (200, "")
    at = datetime.fromtimestamp(NOW, tz=timezone.utc)
    cmds = [c for _, c in inbox.incidents.pending_commands()]
    assert cmds == [Acknowledge("inc-1", by="U1", at=at), Snooze("inc-1", until=at + timedelta(hours=1), by="U1", at=at),
                    Snooze("inc-1", until=at + timedelta(hours=24), by="U1", at=at), Resolve("inc-1", by="U1", at=at)]


@pytest.mark.parametrize("headers_of, reason", [
    (lambda body: {}, "missing signature"),
    (lambda body: {"X-Slack-Request-Timestamp": str(int(NOW))}, "missing signature"),
    (lambda body: signed(body, secret="not-the-secret"), "bad signature"),
    (lambda body: signed(body + b"&x=1"), "bad signature"),  # signed a different body
    (lambda body: signed(body, at=NOW - 301), "stale timestamp"),
    (lambda body: signed(body, at=NOW + 301), "stale timestamp"),
    (lambda body: {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"}, "malformed timestamp"),
])
def test_forged_or_stale_callbacks_get_401_are_recorded_and_change_nothing(inbox, headers_of, reason) -> None:
    body = press("incident_ack")
    assert inbox.handle(body, headers_of(body)) == (401, "invalid request signature")
    assert inbox.incidents.pending_commands() == []
    assert inbox.callbacks() == [("rejected", reason)]


def test_a_signature_four_minutes_old_is_still_accepted(inbox: SlackInteractions) -> None:
    body = press("incident_ack")
    assert inbox.handle(body, signed(body, at=NOW - 240))[0] == 200


def test_replayed_callback_changes_nothing(inbox: SlackInteractions) -> None:
    body = press("incident_ack")
    assert inbox.handle(body, signed(body))[0] == 200
    assert inbox.handle(body, signed(body))[0] == 200  # Slack retried, or someone replayed it
    assert len(inbox.incidents.pending_commands()) == 1
    assert [s for s, _ in inbox.callbacks()] == ["accepted", "duplicate"]


def test_other_payloads_are_acknowledged_and_ignored(inbox: SlackInteractions) -> None:
    body = urlencode({"payload": json.dumps({"type": "view_submission", "user": {"id": "U1"}})}).encode()
    assert inbox.handle(body, signed(body)) == (200, "")
    bad = b"payload=%7Bnot json"
    assert inbox.handle(bad, signed(bad))[0] == 400
    assert inbox.incidents.pending_commands() == []

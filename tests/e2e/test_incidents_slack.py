"""End to end: usage events -> embedded broker -> worker -> one incident -> the Slack emulator (real slack-sdk),
with the emulator down at first and then rate-limiting; a signed Acknowledge on the worker's web server is
stored and shown; forged, stale and replayed callbacks change nothing; the resolution updates the message."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import date, timedelta
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from sinks.incident_store import IncidentStore
from sinks.kafka_producer import UsageProducer
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.synthetic import Spike, SyntheticDay
from streams.harness.worker_process import WorkerProcess
from streams.settings import ALL_TOPICS
from tests.support.slack_emulator import SlackEmulator
from tests.support.waits import until

pytestmark = pytest.mark.e2e
SECRET = "e2e-signing-secret"


def post(port: str, body: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/slack/interactions", data=body, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def signed(body: bytes, at: float | None = None) -> dict[str, str]:
    ts = str(int(at if at is not None else time.time()))
    return {"X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)}


def test_one_incident_one_message_through_outage_ack_and_resolve(tmp_path) -> None:
    day = SyntheticDay(date.today() - timedelta(days=2), minutes=420, spikes=(Spike("ads/copygen/gpt-4o", 330, 10, 8.0),))
    database_url = f"sqlite:///{tmp_path / 'e2e.db'}"
    with EmbeddedBroker() as broker, SlackEmulator() as slack:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        slack.fail_for(20, from_call="chat.postMessage")  # Slack is down for 20 s from the incident's first post ...
        slack.ratelimit(3, retry_after=2)  # ... then rate-limits
        with WorkerProcess(broker.url, database_url, tmp_path / "worker.log", slack_token="xoxb-e2e",
                           slack_signing_secret=SECRET, slack_api_url=slack.base_url,
                           slack_default_channel="#oncall", incident_group_wait_seconds="60",
                           runbook_url="https://runbooks.example/spend") as worker:
            with UsageProducer(broker.bootstrap, batch_size=400, stream_key="e2e") as producer:
                for e in day.events():
                    producer.send("llm", e)
                producer.flush()

            def top() -> list[dict]:
                return [m for m in slack.messages("#oncall") if "thread_ts" not in m]

            until("the incident message", lambda: len(top()) >= 1, 180, worker.check_alive)
            store = IncidentStore(database_url)
            [rec] = store.incidents(state="all")
            assert "ads / copygen" in top()[0]["text"]
            # a forged, a stale and a good callback on the worker's web server, then the good one replayed
            body = urlencode({"payload": json.dumps({
                "type": "block_actions", "user": {"id": "U0ONCALL"},
                "actions": [{"action_id": "incident_ack", "value": rec.id, "action_ts": "7.0"}]})}).encode()
            port = worker.env["BURNGUARD_WEB_PORT"]
            assert post(port, body, {**signed(body), "X-Slack-Signature": "v0=" + "0" * 64}) == 401
            assert post(port, body, signed(body, at=time.time() - 600)) == 401
            assert post(port, body, {}) == 401
            assert post(port, body, signed(body)) == 200
            assert post(port, body, signed(body)) == 200
            until("the acknowledgement",
                  lambda: (store.get(rec.id) or rec).acked_by == "U0ONCALL",
                  60, worker.check_alive)
            until("the message to show it",
                  lambda: "acknowledged by <@U0ONCALL>" in json.dumps(top()[0]["blocks"]),
                  60, worker.check_alive)
            until("the resolution", lambda: (store.get(rec.id) or rec).status == "resolved", 180, worker.check_alive)
            until("the message resolved in place", lambda: "(resolved)" in top()[0]["text"], 60, worker.check_alive)

            def replies() -> list[str]:
                return [m["text"] for m in slack.messages("#oncall") if m.get("thread_ts") == top()[0]["ts"]]

            until("the ack in the thread",
                  lambda: any("Acknowledged by <@U0ONCALL>" in r for r in replies()),
                  60, worker.check_alive)
            store.close()
    assert len(top()) == 1  # exactly one message for the one injected cause
    keys = [((m.get("metadata") or {}).get("event_payload") or {}).get("outbox_key") for m in slack.messages()]
    assert len(keys) == len(set(keys))  # nothing posted twice through the outage and the rate limit
    statuses = {c.status for c in slack.calls}
    assert 503 in statuses and 429 in statuses
    assert replies()[0].startswith("*Evidence*") and sum("Acknowledged by" in r for r in replies()) == 1

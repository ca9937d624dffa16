"""The incidents agent's handler, the real stores, the outbox and the real slack-sdk client against the emulator:
the demo's 9 alerts -> one Slack message with its evidence in the thread, an Acknowledge press -> stored and
shown, the resolution -> the message updated in place. (No broker here: the handler is driven directly.)"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from sinks.incident_store import IncidentStore
from sinks.migrations import upgrade
from sinks.slack.delivery import SlackDelivery, make_client
from sinks.slack.interactions import SlackInteractions
from sinks.slack.notify import IncidentSink
from sinks.slack.outbox import SlackOutbox
from sinks.slack.routing import load_routing_text
from streams.agents.incidents import Incidents, IncidentsState, grouping_config
from streams.settings import Settings
from streams.state.tables import TypedTable
from tests.support.slack_emulator import SlackEmulator
from tests.unit.test_incidents_grouping import KEY, T0, demo_alerts

SECRET = "test-signing-secret"


def test_demo_spike_is_one_message_acknowledged_and_resolved_in_place(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    upgrade(url)
    store, outbox = IncidentStore(url), SlackOutbox(url)
    routing = load_routing_text('default_channel: "#burnguard"\nroutes:\n  - {team: ads, channel: "#ads-oncall"}\n')
    sink = IncidentSink(store, outbox, routing, runbook_url="https://runbooks.example/ai-spend")
    table = TypedTable({}, "incident_state", IncidentsState)
    handler = Incidents(table, sink, store, grouping_config(Settings(_env_file=None)))
    inbox = SlackInteractions(SECRET, url)

    async def feed() -> None:
        for a in sorted(demo_alerts(), key=lambda a: a.window_end):
            await handler.handle(b"incidents", a.model_dump_json().encode())
            await handler.handle(b"incidents", a.model_dump_json().encode())  # redelivered: changes nothing
        await handler.tick(time.time() + 180)  # no more alerts: 3 min of wall time move event time on

    asyncio.run(feed())
    [rec] = store.incidents(state="open")
    assert rec.subject_key == KEY and rec.alert_count == 9

    with SlackEmulator() as slack:
        delivery = SlackDelivery(outbox, make_client("xoxb-test", slack.base_url), min_interval=0.05)
        assert delivery.drain(timeout=20)
        [parent] = [m for m in slack.messages("#ads-oncall") if "thread_ts" not in m]
        replies = [m for m in slack.messages("#ads-oncall") if m.get("thread_ts") == parent["ts"]]
        assert "tokens per request 8.0x normal on ads / copygen / gpt-4o" in parent["text"]
        assert [e["action_id"] for e in parent["blocks"][-1]["elements"]][0] == "incident_ack"
        assert "<https://runbooks.example/ai-spend|Runbook>" in json.dumps(parent["blocks"])
        assert len(replies) == 1 and replies[0]["text"].count("• firing") == 9  # the evidence, in the thread

        # an on-call engineer presses Acknowledge
        body = urlencode({"payload": json.dumps({
            "type": "block_actions", "user": {"id": "U0ALICE"},
            "actions": [{"action_id": "incident_ack", "value": rec.id, "action_ts": "1.0"}]})}).encode()
        ts = str(int(time.time()))
        headers = {"X-Slack-Request-Timestamp": ts,
                   "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)}
        assert inbox.handle(body, headers)[0] == 200
        assert inbox.handle(body, headers)[0] == 200  # replayed: nothing more
        assert inbox.handle(body, {**headers, "X-Slack-Signature": "v0=forged"})[0] == 401

        async def later() -> None:
            await handler.tick(time.time() + 200)  # the stream applies the command
            for a in demo_alerts():
                resolved = a.model_copy(update={"status": "resolved", "window_end": T0 + timedelta(minutes=25)})
                await handler.handle(b"incidents", resolved.model_dump_json().encode())

        asyncio.run(later())
        assert store.get(rec.id).acked_by == "U0ALICE" and store.get(rec.id).status == "resolved"
        assert delivery.drain(timeout=20)
        [parent] = [m for m in slack.messages("#ads-oncall") if "thread_ts" not in m]  # still one message
        text = json.dumps(parent["blocks"])
        assert "resolved" in parent["text"] and "acknowledged by <@U0ALICE>" in text
        assert not any(b["type"] == "actions" for b in parent["blocks"])  # no buttons once resolved
        replies = [m["text"] for m in slack.messages("#ads-oncall") if m.get("thread_ts") == parent["ts"]]
        assert len(replies) == 3 and replies[1] == "*Acknowledged by <@U0ALICE>*" and "Resolved" in replies[2]
        assert len(slack.calls_of("chat.postMessage")) == 4  # the message, the evidence, the ack and resolve replies

"""Finance approvals in Slack end to end: usage through the real broker and a worker (``burnguard worker``)
whose Slack client talks to the emulator, and signed callbacks to the worker's own ``/slack/interactions``.

A $234 burst on team shop crosses its $100 daily cap; the test's policy escalates the overrun to
shop-leads, whose channel is #shop-approvals. Expected: one request message there, with Approve / Deny
and the budget chart (a PNG, 800 x 450) in its thread; a forged callback -> 401; kim (limit $1) submits
an approval -> an ephemeral refusal, nothing changes; lee presses Approve -> the modal opens; lee submits
-> approved once (the grant on ``guardrail.decisions``, decided by lee's Slack id; an audit record), and
the message is updated with the outcome; the same submission again changes nothing. A typo in the amount
is an inline error in the modal (response_action: errors). The grant reaches ``guardrail.decisions``
within 3 s of the click (the publisher's 1 s tick), and each decision is on the topic once.
"""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from schemas.decision import Decision
from sinks.charts.budget_chart import png_dimensions
from sinks.guardrail_store import GuardrailStore
from sinks.kafka_producer import UsageProducer
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.topic_reader import TopicReader
from streams.harness.worker_process import WorkerProcess
from streams.settings import ALL_TOPICS, DECISIONS_TOPIC
from tests.support.approval_cases import signed, submit, click
from tests.support.slack_emulator import SlackEmulator
from tests.support.waits import room_in_the_day, until

pytestmark = pytest.mark.e2e
SECRET = "e2e-signing-secret"
LEE, KIM = "U0LEE00001", "U0KIM00001"
CHANNEL = "C_SHOP_APPROVALS"  # the emulator's id of #shop-approvals
CAP = 100.0

BUDGETS = f"""version: 1
budgets:
  - {{id: shop-production, tier: production, scope: {{team: shop}}, period: day, cap_usd: {CAP}, rules: [],
     thresholds: [1.0]}}
"""
POLICY = """version: 3
rules:
  - name: production-leads
    match: {tier: production}
    then: {action: escalate, to: shop-leads, deadline: 1h, on_timeout: {escalate: finance}}
  - {name: default, default: true, then: {action: deny}}
"""
APPROVERS = f"""version: 1
groups:
  shop-leads:
    max_usd: unlimited
    members: [{{slack: {LEE}, name: lee}}, {{slack: {KIM}, name: kim, max_usd: 1}}]
    next: finance
    slack_channel: "#shop-approvals"
  finance:
    max_usd: unlimited
    members: [{{slack: U0FIN00001, name: sam}}]
    slack_channel: "#finance-approvals"
"""


def post(port: int, body: bytes, headers: dict[str, str]) -> int:
    return answer(port, body, headers)[0]


def answer(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/slack/interactions", data=body, headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read()
            if text.startswith(b"{"):  # Slack reads a modal's response_action only from a JSON answer
                assert resp.headers.get_content_type() == "application/json", resp.headers["Content-Type"]
            return resp.status, text
    except urllib.error.HTTPError as err:
        return err.code, b""


def burst(n: int, usd: float, minute: datetime) -> list[dict[str, Any]]:
    return [{"timestamp": (minute + timedelta(milliseconds=100 * i)).isoformat(), "model": "gpt-4o",
             "provider": "openai", "input_tokens": 1000, "output_tokens": 100, "cost_usd": usd,
             "request_id": f"shop-{i}", "tags": {"team": "shop", "feature": "burst", "customer": "internal",
                                                 "environment": "production"}} for i in range(n)]


def test_escalation_to_slack_and_an_authorised_click_grants_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    for name, text in (("budgets.yaml", BUDGETS), ("policy.yaml", POLICY), ("approvers.yaml", APPROVERS)):
        (tmp_path / name).write_text(text)
    events = burst(10, 23.4, room_in_the_day())  # $234 against a $100 cap
    with SlackEmulator() as slack, EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        settings = {"budgets": str(tmp_path / "budgets.yaml"), "policy": str(tmp_path / "policy.yaml"),
                    "approvers": str(tmp_path / "approvers.yaml"), "app_id": "bg-approvals-slack",
                    "slack_token": "xoxb-e2e", "slack_signing_secret": SECRET, "slack_api_url": slack.base_url}
        with WorkerProcess(broker.url, url, tmp_path / "worker.log", **settings) as worker:
            port = int(worker.env["BURNGUARD_WEB_PORT"])
            decisions = TopicReader(broker.bootstrap, DECISIONS_TOPIC)
            seen: list[Decision] = []
            try:
                with UsageProducer(broker.bootstrap, batch_size=len(events), max_linger_s=60,
                                   stream_key="gateway") as producer:
                    for e in events:
                        producer.send("llm", e)

                def request() -> dict | None:
                    top = [m for m in slack.messages(CHANNEL) if "thread_ts" not in m]
                    return top[0] if top else None

                msg = until("the request message in #shop-approvals", request, 120, worker.check_alive)
                assert [e["action_id"] for e in msg["blocks"][-1]["elements"]] == ["approval_approve",
                                                                                   "approval_deny"]
                approval_id = msg["blocks"][-1]["elements"][0]["value"]
                share = until("the chart in the request's thread", lambda: [
                    m for m in slack.messages(CHANNEL) if m.get("thread_ts") == msg["ts"] and m.get("files")], 30,
                    worker.check_alive)
                [up] = [u for u in slack.uploads.values() if u["channel"] == CHANNEL]
                assert share[0]["files"][0]["name"] == up["filename"] == f"budget-{approval_id}.png"
                assert png_dimensions(up["data"]) == (800, 450) and len(up["data"]) > 10_000
                assert Image.open(io.BytesIO(up["data"])).size == (800, 450)
                store = GuardrailStore(url)
                req = store.approval(approval_id)
                assert (req.state, req.group, req.budget_id) == ("pending", "shop-leads", "shop-production")
                assert f"${req.amount_usd:,.2f} requested" in msg["text"]
                audit0 = len(store.audit())

                # a forged callback, and kim over her $1 limit: nothing changes
                body = submit(approval_id, LEE, reason="forged", channel=CHANNEL, message_ts=msg["ts"])
                assert post(port, body, signed(body, secret="not-the-secret")) == 401
                kim = submit(approval_id, KIM, reason="why not", channel=CHANNEL, message_ts=msg["ts"],
                             view_id="VKIM")
                assert post(port, kim, signed(kim, secret=SECRET)) == 200
                [eph] = [c for c in slack.calls_of("chat.postEphemeral") if c.params.get("user") == KIM]
                assert f"{KIM} may approve at most 1 USD in shop-leads" in eph.params["text"]
                assert store.approval(approval_id).state == "pending" and len(store.audit()) == audit0

                # lee: Approve opens the modal; the submission approves once
                press = click(approval_id, LEE, channel=CHANNEL, message_ts=msg["ts"])
                assert post(port, press, signed(press, secret=SECRET)) == 200
                [opened] = slack.calls_of("views.open")
                assert opened.params["view"]["callback_id"] == "approval_decide"
                # a typo in the amount: the modal says so under the field, nothing changes
                typo = submit(approval_id, LEE, amount="2O0", reason="launch week", channel=CHANNEL,
                              message_ts=msg["ts"], view_id="VLEE")
                status, text = answer(port, typo, signed(typo, secret=SECRET))
                assert (status, json.loads(text)) == (200, {"response_action": "errors", "errors": {
                    "approval_amount": "The amount must be a number of USD, not '2O0'."}})
                assert store.approval(approval_id).state == "pending" and len(store.audit()) == audit0
                ok = submit(approval_id, LEE, reason="launch week", channel=CHANNEL, message_ts=msg["ts"],
                            view_id="VLEE")
                decided = time.monotonic()
                assert post(port, ok, signed(ok, secret=SECRET)) == 200
                assert post(port, ok, signed(ok, secret=SECRET)) == 200  # the same callback again
                done = store.approval(approval_id)
                assert (done.state, done.decided_by, done.reason) == ("approved", LEE, "launch week")

                def grant() -> Decision | None:
                    seen.extend(Decision.model_validate_json(v) for v in decisions.poll(timeout_ms=200))
                    hits = [d for d in seen if d.approval_id == approval_id and d.action == "grant"]
                    return hits[0] if hits else None

                g = until("the grant on guardrail.decisions", grant, 40, worker.check_alive)
                latency = time.monotonic() - decided
                assert latency < 3.0, f"the grant took {latency:.1f} s to reach guardrail.decisions"
                assert (g.amount_usd, g.decided_by, g.step, g.budget_id) == (req.amount_usd, LEE, 1,
                                                                             "shop-production")
                events_after = [(r.event, r.actor) for r in store.audit()[audit0:]]
                assert events_after == [("approval.approved", LEE)]
                assert store.verify_audit() == []

                def updated() -> bool:
                    m = request()
                    return bool(m) and not any(b["type"] == "actions" for b in m["blocks"])

                until("the request updated with its outcome", updated, 30, worker.check_alive)
                outcome = request()["blocks"][-1]["text"]["text"]
                assert outcome.startswith(f":white_check_mark: *Approved* ${req.amount_usd:,.2f} by <@{LEE}>")
                assert len([c for c in slack.calls_of("chat.update") if c.status == 200]) == 1
                seen.extend(Decision.model_validate_json(v) for v in decisions.poll(timeout_ms=500))
                ours = [d for d in seen if d.overrun_id == req.overrun_id]
                assert sorted(d.action for d in ours) == ["escalated", "grant"]  # each once on the topic
                store.close()
            finally:
                decisions.close()

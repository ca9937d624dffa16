"""Finance approvals in Slack with the real parts: the stores (SQLite and PostgreSQL), the outbox, the
real slack-sdk WebClient against the emulator, signed callbacks through SlackInteractions. The stream's
handler is driven directly with the decision the store published (no broker here).

The case (tests/support/approval_cases.py): an $800 overrun on search-prod escalated to fin (ann may
approve $1,000, bob $500), deadline 4 h, then cfo.
"""

from __future__ import annotations

import asyncio
import io
import threading
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image

from guardrails.budget_book import BudgetSpec
from guardrails.burn_rate import DEFAULT_RULES
from guardrails.burn_tracker import BurnTracker
from sinks.charts.budget_chart import png_dimensions
from sinks.guardrail_store import GuardrailStore
from sinks.migrations import upgrade
from sinks.slack.approval_interactions import ApprovalInteractions
from sinks.slack.approval_notify import ApprovalNotifier
from sinks.slack.delivery import SlackDelivery, make_client
from sinks.slack.interactions import SlackInteractions
from sinks.slack.outbox import SlackOutbox
from streams.agents.approvals_slack import ApprovalRequests
from streams.state.tables import TypedTable
from streams.state.values import BudgetState
from tests.support.approval_cases import (ANN, APPROVERS, BOB, CARL, CY, POLICY, SECRET, T, click, overrun, signed,
                                          submit)
from tests.support.slack_emulator import SlackEmulator

NOW = T + timedelta(minutes=10)  # when the approvers act (the deadline is T + 4 h)
FIN, CFO = "C_FIN_APPROVALS", "C_CFO"


class World:
    """The store with one escalated overrun per budget, the outbox, the stream's handler, the endpoint."""

    def __init__(self, url: str, slack: SlackEmulator, clock_at: datetime = NOW) -> None:
        upgrade(url)
        self.slack, self.now = slack, clock_at
        self.store, self.box = GuardrailStore(url), SlackOutbox(url)
        self.notifier = ApprovalNotifier(self.box, self.store, APPROVERS)
        self.trackers = TypedTable({}, "burn_trackers", BudgetState)
        self.handler = ApprovalRequests(self.store, self.notifier, self.trackers)
        client = make_client("xoxb-test", slack.base_url, timeout=2)
        self.inbox = SlackInteractions(SECRET, url, clock=lambda: self.now.timestamp(),
                                       handlers=[ApprovalInteractions(self.store, APPROVERS, client, self.notifier)])
        self.inbox.callbacks()  # creates its table now: SlackInteractions' lazy create races with itself on SQLite
        self.delivery = SlackDelivery(self.box, make_client("xoxb-test", slack.base_url), min_interval=0.05,
                                      backoff_base=0.1, backoff_cap=0.4)

    def escalate(self, budget_id: str = "search-prod") -> str:
        """Decide the budget's overrun (escalated to fin), give the stream its tracker, hand it the decision."""
        ov = overrun(budget_id)
        res = self.store.decide(ov, POLICY, now=T)
        assert res.decision.action == "escalated" and res.approval is not None
        tr = BurnTracker.from_spec(BudgetSpec(budget_id, 4000.0, "month", DEFAULT_RULES, (0.8, 1.0), ()))
        for m in range(600):  # the last 10 hours before T: 4,100 USD this month at T
            tr.observe(T - timedelta(minutes=600 - m), 4100.0 / 600)
        self.trackers.put(budget_id, BudgetState(0, tr))
        self.publish(ov.overrun_id)
        return res.approval.approval_id

    def publish(self, overrun_id: str) -> list[str]:
        """What guardrail.decisions carries for the overrun, to the stream's handler (each message once)."""
        added: list[str] = []
        for d in self.store.decisions(overrun_id=overrun_id):
            added += asyncio.run(self.handler.handle(d.model_dump_json().encode()))
        return added

    def call(self, body: bytes, **kw: object) -> tuple[int, str]:
        return self.inbox.handle(body, signed(body, ts=int(self.now.timestamp()), **kw))  # type: ignore[arg-type]

    def drain(self) -> None:
        assert self.delivery.drain(timeout=30), self.box.counts()

    def top(self, channel: str) -> list[dict]:
        return [m for m in self.slack.messages(channel) if "thread_ts" not in m]

    def thread(self, channel: str, ts: str) -> list[dict]:
        return [m for m in self.slack.messages(channel) if m.get("thread_ts") == ts]

    def ephemerals(self, user: str) -> list[str]:
        return [c.params["text"] for c in self.slack.calls_of("chat.postEphemeral") if c.params.get("user") == user]


@pytest.fixture
def slack() -> SlackEmulator:
    with SlackEmulator() as emu:
        yield emu


def test_request_posted_once_with_chart_then_approved_once(database_url: str, slack: SlackEmulator) -> None:
    w = World(database_url, slack)
    aid = w.escalate()
    assert w.publish(overrun().overrun_id) == []  # the decision redelivered: nothing new
    w.drain()
    [msg] = w.top(FIN)
    assert msg["text"].startswith("Approval needed: budget Search &lt;!channel&gt; production (`search-prod`): "
                                  "$800.00 requested by rule `finance-same-day`")
    assert [e["action_id"] for e in msg["blocks"][-1]["elements"]] == ["approval_approve", "approval_deny"]
    [share] = w.thread(FIN, msg["ts"])
    [(file_id, up)] = slack.uploads.items()
    assert share["files"][0]["id"] == file_id and up["filename"] == f"budget-{aid}.png"
    assert (up["channel"], up["thread_ts"]) == (FIN, msg["ts"])
    png = up["data"]
    assert png_dimensions(png) == (800, 450) and 10_000 < len(png) < 400_000
    assert Image.open(io.BytesIO(png)).format == "PNG"

    # ann presses Approve: the modal opens
    assert w.call(click(aid, ANN, message_ts=msg["ts"])) == (200, "")
    [opened] = slack.calls_of("views.open")
    assert opened.params["view"]["callback_id"] == "approval_decide"
    audit_before = len(w.store.audit())
    # ann submits it: approved through the CLI's path, audited, the message updated
    body = submit(aid, ANN, reason="Q4 launch", message_ts=msg["ts"])
    assert w.call(body) == (200, "")
    req = w.store.approval(aid)
    assert (req.state, req.decided_by, req.approved_usd, req.reason) == ("approved", ANN, 800.0, "Q4 launch")
    grant = [d for d in w.store.decisions(overrun_id=req.overrun_id) if d.action == "grant"]
    assert [(d.amount_usd, d.decided_by, d.step) for d in grant] == [(800.0, ANN, 1)]
    assert grant[0].decision_id in {d.decision_id for d in w.store.decisions(unpublished=True)}  # for the topic
    rec = w.store.audit()[-1]
    assert (len(w.store.audit()), rec.event, rec.actor, rec.amount_usd) == (audit_before + 1, "approval.approved",
                                                                            ANN, 800.0)
    assert w.store.verify_audit() == []
    w.drain()
    [update] = slack.calls_of("chat.update")
    assert update.params["ts"] == msg["ts"]
    [msg] = w.top(FIN)
    assert not [b for b in msg["blocks"] if b["type"] == "actions"]
    assert msg["blocks"][-1]["text"]["text"].startswith(f":white_check_mark: *Approved* $800.00 by <@{ANN}> · ")
    assert any("Q4 launch" in m["text"] for m in w.thread(FIN, msg["ts"]))

    # the same callback again: recorded as a duplicate, nothing else
    calls = len(slack.calls)
    assert w.call(body) == (200, "")
    w.drain()
    assert len(slack.calls) == calls and len(w.store.audit()) == audit_before + 1
    assert w.inbox.callbacks()[-1] == ("duplicate", "replayed callback")
    # the outcome sync finds it queued already
    assert w.notifier.sync(T) == []
    # bob clicks afterwards: told who decided
    w.call(click(aid, BOB, action_ts="1795179700.000200"))
    [told] = w.ephemerals(BOB)
    assert told.startswith(f"This request was already approved by <@{ANN}> at <!date^")
    assert len(slack.calls_of("views.open")) == 1


def test_over_the_limit_or_outside_the_group_is_refused_and_nothing_changes(database_url: str,
                                                                            slack: SlackEmulator) -> None:
    w = World(database_url, slack)
    aid = w.escalate()
    w.drain()
    audit, calls = len(w.store.audit()), len(slack.calls)
    assert w.call(submit(aid, BOB, reason="fine by me")) == (200, "")  # all $800; bob's limit is $500
    assert w.call(click(aid, CARL)) == (200, "")
    [bob] = w.ephemerals(BOB)
    assert f"{BOB} may approve at most 500 USD in fin; this request is 800 USD" in bob
    [carl] = w.ephemerals(CARL)
    assert f"{CARL} is not a member of approver group fin" in carl
    w.drain()
    assert w.store.approval(aid).state == "pending"
    assert (len(w.store.audit()), w.store.grants()) == (audit, [])
    assert [c.method for c in slack.calls[calls:]] == ["chat.postEphemeral", "chat.postEphemeral"]


def test_forged_stale_or_unsigned_callbacks_get_401_and_change_nothing(database_url: str,
                                                                      slack: SlackEmulator) -> None:
    w = World(database_url, slack)
    aid = w.escalate()
    body = submit(aid, ANN, reason="ok")
    assert w.inbox.handle(body, signed(body, secret="not-the-secret", ts=int(NOW.timestamp())))[0] == 401
    assert w.inbox.handle(body, signed(body, ts=int((NOW - timedelta(minutes=6)).timestamp())))[0] == 401
    assert w.inbox.handle(body, {})[0] == 401
    assert w.store.approval(aid).state == "pending" and w.store.grants() == []
    assert w.inbox.callbacks() == [("rejected", "bad signature"), ("rejected", "stale timestamp"),
                                   ("rejected", "missing signature")]


def test_slack_down_while_deciding_delivers_the_update_once_when_it_returns(database_url: str,
                                                                           slack: SlackEmulator) -> None:
    w = World(database_url, slack)
    aid = w.escalate()
    w.drain()
    [msg] = w.top(FIN)
    slack.fail_for(1.5)
    assert w.call(submit(aid, ANN, verb="deny", reason="not this quarter", message_ts=msg["ts"])) == (200, "")
    assert w.store.approval(aid).state == "denied"  # decided without Slack
    w.drain()
    updates = slack.calls_of("chat.update")
    assert [c.status for c in updates if c.status == 200] == [200] and any(c.status == 503 for c in updates)
    [msg] = w.top(FIN)
    assert msg["blocks"][-1]["text"]["text"].startswith(f":no_entry: *Denied* by <@{ANN}>")
    assert [d.action for d in w.store.decisions(overrun_id=overrun().overrun_id)] == ["escalated", "deny"]


def test_two_approvers_at_once_make_one_decision(database_url: str, slack: SlackEmulator) -> None:
    w = World(database_url, slack)
    budgets = [f"search-prod-{i}" for i in range(3)]
    aids = [w.escalate(b) for b in budgets]
    for n, aid in enumerate(aids):
        barrier = threading.Barrier(2)
        out: dict[str, tuple[int, str]] = {}

        def press(user: str, amount: str) -> None:
            body = submit(aid, user, amount=amount, reason=f"{user} says yes", view_id=f"V{user}{n}")
            barrier.wait()
            out[user] = w.call(body)

        threads = [threading.Thread(target=press, args=(ANN, "400")), threading.Thread(target=press, args=(BOB, "300"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert out == {ANN: (200, ""), BOB: (200, "")}
        req = w.store.approval(aid)
        winner, loser = (ANN, BOB) if req.decided_by == ANN else (BOB, ANN)
        assert req.state == "approved" and req.approved_usd == (400.0 if winner == ANN else 300.0)
        assert [g.decided_by for g in w.store.grants(budgets[n])] == [winner]
        assert [d.action for d in w.store.decisions(overrun_id=req.overrun_id)] == ["escalated", "grant"]
        assert [a.event for a in w.store.audit(budgets[n])] == ["decision", "approval.approved"]
        assert w.ephemerals(loser)[-1].startswith(f"This request was already approved by <@{winner}>")
    assert w.store.verify_audit() == []


def test_deadline_escalation_posts_in_the_next_groups_channel_and_notes_the_old_thread(
        database_url: str, slack: SlackEmulator) -> None:
    w = World(database_url, slack)
    aid = w.escalate()
    w.drain()
    [old] = w.top(FIN)
    [tr] = [a.transition for a in w.store.apply_due(APPROVERS, now=T + timedelta(hours=4, minutes=1))]
    assert (tr.event, tr.created.group) == ("escalated", "cfo")
    added = w.publish(overrun().overrun_id)  # the stream sees step 1: escalated to cfo
    new_id = tr.created.approval_id
    assert added == [f"{new_id}:post", f"{new_id}:upload:chart", f"{aid}:update:escalated", f"{aid}:reply:escalated"]
    w.drain()
    [new] = w.top(CFO)
    assert "Approval needed" in new["text"] and "escalation 1" in str(new["blocks"])
    assert [e["action_id"] for e in new["blocks"][-1]["elements"]] == ["approval_approve", "approval_deny"]
    assert any(m.get("files") for m in w.thread(CFO, new["ts"]))  # its chart
    [old] = w.top(FIN)
    assert not [b for b in old["blocks"] if b["type"] == "actions"]
    assert "*Escalated* at the deadline" in old["blocks"][-1]["text"]["text"]
    [note] = [m for m in w.thread(FIN, old["ts"]) if not m.get("files")]
    assert "A new request was posted in #cfo" in note["text"] and "to *cfo*" in note["text"]
    assert w.notifier.sync(T) == []  # already queued: nothing twice
    # the cfo approves the new request in Slack; a fin member can no longer decide the old one
    w.now = T + timedelta(hours=5)
    w.call(submit(new_id, CY, reason="approved by the CFO", channel=CFO, message_ts=new["ts"]))
    assert w.store.approval(new_id).state == "approved"
    w.call(click(aid, ANN))
    assert w.ephemerals(ANN)[-1].startswith("This request was already escalated when its deadline passed")


def test_a_cli_decision_shows_in_slack_through_the_outcome_sync(database_url: str, slack: SlackEmulator) -> None:
    w = World(database_url, slack)
    aid = w.escalate()
    w.drain()
    assert w.notifier.sync(T) == []  # pending: nothing to show yet
    w.store.approve(aid, "ann", APPROVERS, reason="from the terminal", now=NOW)  # burnguard approve ID --as ann
    assert w.notifier.sync(T) == [f"{aid}:update:approved", f"{aid}:reply:approved"]
    assert w.notifier.sync(T) == []
    w.drain()
    [msg] = w.top(FIN)
    assert msg["blocks"][-1]["text"]["text"].startswith(":white_check_mark: *Approved* $800.00 by ann · ")
    assert any("from the terminal" in m["text"] for m in w.thread(FIN, msg["ts"]))

"""Approvals in Slack, without Slack: the blocks (content and escaping), the modal's parsing, and the
authorisation refusals (a recording fake stands in for the Slack client: the unit's boundary)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from guardrails.approvals import ApprovalRequest
from guardrails.approvers import Approvers
from sinks.guardrail_store import GuardrailStore
from sinks.migrations import upgrade
from sinks.slack.approval_blocks import (APPROVE, DENY, decision_modal, outcome_message, outcome_reply,
                                         request_message)
from sinks.slack.approval_interactions import ApprovalInteractions, parse_amount, parse_callback
from sinks.slack.approval_notify import ApprovalNotifier
from sinks.slack.blocks import ACTIONS as INCIDENT_ACTIONS
from sinks.slack.interactions import SlackInteractions
from sinks.slack.outbox import SlackOutbox
from tests.support.approval_cases import (ANN, APPROVERS, BOB, CARL, POLICY, SECRET, T, click, overrun, signed,
                                          submit)

#: The only '<' sequences burnguard itself writes: mentions of Slack user ids, channels, dates.
OWN_MARKUP = re.compile(r"<(@U[A-Z0-9]+|#C[A-Z0-9_]+|!date\^\d+\^[^|>]*\|[^>]*)>")


def texts(obj: Any) -> list[str]:
    """Every string under a "text" key, recursively (what Slack renders)."""
    out: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += [v] if k == "text" and isinstance(v, str) else texts(v)
    elif isinstance(obj, list):
        for v in obj:
            out += texts(v)
    return out


def assert_no_injected_markup(msg: Any) -> None:
    for t in texts(msg):
        stripped = re.sub(r"(^|\n)> ", r"\1", OWN_MARKUP.sub("", t))  # "> ": our own block quote of a reason
        assert "<" not in stripped and ">" not in stripped, t


def pending(amount: float = 800.0) -> ApprovalRequest:
    return ApprovalRequest(approval_id="ap-1", overrun_id="ov-search-prod", budget_id="search-prod",
                           rule="finance-same-day", group="fin", amount_usd=amount, created_at=T,
                           deadline=T + timedelta(hours=4), deadline_s=14400, on_timeout="escalate",
                           period_start=overrun().period_start, period_end=overrun().period_end)


# ---------------------------------------------------------------------------------------------- blocks

def test_request_message_says_what_is_approved_and_escapes_event_text() -> None:
    msg = request_message(pending(), overrun(), policy_version="7@abcd1234")
    body = "\n".join(texts(msg))
    for expected in ("Search &lt;!channel&gt; production", "`search-prod`", "team=*search*", "tier=*production*",
                     "burn rate `slow` ≥ 6x over 6h 0m and 30m: 6.4x long, 7.1x short",
                     "$4,100.00 of $4,000.00 (102 %) this month", "$4,800.00 (holt)", "already exhausted",
                     "*Amount requested*\n$800.00", "`finance-same-day` (policy 7@abcd1234)", "*Approvers*\nfin",
                     "customer=&lt;https://evil.example|acme&gt;` $512.50"):
        assert expected in body, expected
    assert "<!date^1795163400^" in body  # since 08:30 UTC (the incident start), shown in the reader's zone
    assert "<!date^1795179600^" in body  # the deadline, 13:00 UTC
    assert_no_injected_markup(msg)
    [actions] = [b for b in msg["blocks"] if b["type"] == "actions"]
    assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [(APPROVE, "ap-1"), (DENY, "ap-1")]
    assert not {APPROVE, DENY} & set(INCIDENT_ACTIONS)  # distinct from the incident buttons


def test_exhaustion_in_the_future_is_a_duration() -> None:
    ov = overrun(spend_usd=3000.0, exhausted_at=T + timedelta(hours=5, minutes=20))
    assert "in 5h 20m" in "\n".join(texts(request_message(pending(), ov)))


def test_outcome_replaces_the_buttons_by_who_when_and_why() -> None:
    req = pending().model_copy(update={"state": "approved", "decided_by": BOB, "decided_at": T + timedelta(hours=1),
                                       "approved_usd": 500.0, "reason": "launch <!here> week *bold*"})
    msg = outcome_message(req, overrun())
    assert not [b for b in msg["blocks"] if b["type"] == "actions"]
    outcome = msg["blocks"][-1]["text"]["text"]
    assert outcome.startswith(f":white_check_mark: *Approved* $500.00 of $800.00 requested by <@{BOB}> · "
                              "<!date^1795168800^")
    assert "launch &lt;!here&gt; week *bold*" in outcome
    assert_no_injected_markup(msg)
    esc = pending().model_copy(update={"state": "escalated", "decided_by": "deadline", "decided_at": T})
    note = outcome_reply(esc, escalated_to="cfo", channel="C0CFO0001")["text"]
    assert "*Escalated* at the deadline" in note and "to *cfo*" in note and "<#C0CFO0001>" in note


def test_modal_has_an_optional_amount_up_to_the_request_and_deny_requires_a_reason() -> None:
    view = decision_modal(pending(), "approve", overrun(), 500.0, "C_FIN", "1.2")
    amount = next(b for b in view["blocks"] if b.get("block_id") == "approval_amount")
    assert (amount["optional"], amount["element"]["type"], amount["element"]["max_value"]) == \
        (True, "number_input", "800.00")
    assert "You may approve up to $500.00 in fin." in view["blocks"][0]["text"]["text"]
    deny = decision_modal(pending(), "deny", overrun(), 500.0, "C_FIN", "1.2")
    assert [(b["block_id"], b["optional"]) for b in deny["blocks"] if b["type"] == "input"] == \
        [("approval_reason", False)]
    assert_no_injected_markup(view)


# ---------------------------------------------------------------------------------------------- parsing

def test_parse_a_submission_as_slack_sends_it() -> None:
    cb = parse_callback(submit("ap-1", BOB, amount="450.5", reason="ok for the launch"))
    assert cb is not None
    assert (cb.kind, cb.verb, cb.approval_id, cb.user_id, cb.amount, cb.reason, cb.channel_id) == \
        ("submit", "approve", "ap-1", BOB, "450.5", "ok for the launch", "C_FIN_APPROVALS")
    deny = parse_callback(submit("ap-1", ANN, verb="deny", reason="no"))
    assert deny is not None and (deny.verb, deny.amount, deny.reason) == ("deny", None, "no")
    # identity: the same view submitted again is the same callback; another view is not
    again = parse_callback(submit("ap-1", BOB, amount="450.5", reason="ok for the launch"))
    other = parse_callback(submit("ap-1", BOB, amount="450.5", reason="ok", view_id="V0000002"))
    assert again is not None and other is not None
    assert again.dedupe_key == cb.dedupe_key != other.dedupe_key


@pytest.mark.parametrize("body", [
    b"payload=not-json",
    submit("ap-1", BOB).replace(b"approval_decide", b"something_else"),
    submit("ap-1", BOB, verb="steal"),  # an unknown verb in the modal's metadata
    click("ap-1", BOB).replace(b"approval_approve", b"incident_ack"),
])
def test_other_or_malformed_callbacks_are_not_claimed(body: bytes) -> None:
    assert parse_callback(body) is None


def test_parse_amount() -> None:
    assert (parse_amount(""), parse_amount("500"), parse_amount("$1,200.25")) == (None, 500.0, 1200.25)
    for bad in ("nan", "inf", "five hundred"):
        with pytest.raises(ValueError):
            parse_amount(bad)


# ---------------------------------------------------------------------------------------------- refusals

class RecordingClient:
    """Stands in for slack_sdk.WebClient: records the calls made."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def views_open(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("views.open", kw))
        return {"ok": True}

    def chat_postEphemeral(self, **kw: Any) -> dict[str, Any]:  # noqa: N802 - slack-sdk's name
        self.calls.append(("chat.postEphemeral", kw))
        return {"ok": True}


@pytest.fixture
def world() -> tuple[GuardrailStore, ApprovalInteractions, RecordingClient, SlackOutbox, str]:
    store = GuardrailStore("sqlite://")
    upgrade(store.engine)
    approval = store.decide(overrun(), POLICY, now=T).approval
    assert approval is not None
    box = SlackOutbox("sqlite://")
    upgrade(box.engine)
    notifier = ApprovalNotifier(box, store, APPROVERS)
    assert notifier.request(approval, b"\x89PNG") == [f"{approval.approval_id}:post",
                                                      f"{approval.approval_id}:upload:chart"]
    client = RecordingClient()
    inter = ApprovalInteractions(store, APPROVERS, client, notifier)  # type: ignore[arg-type]
    return store, inter, client, box, approval.approval_id


def test_a_user_outside_the_group_is_told_why_and_gets_no_modal(world) -> None:  # noqa: ANN001
    store, inter, client, _, aid = world
    cb = parse_callback(click(aid, CARL))
    assert inter.apply(cb, T + timedelta(minutes=5)) == (200, "")
    [(method, kw)] = client.calls
    assert method == "chat.postEphemeral" and kw["user"] == CARL and kw["channel"] == "C_FIN_APPROVALS"
    assert f"{CARL} is not a member of approver group fin" in kw["text"]
    assert store.approval(aid).state == "pending"


def test_a_member_gets_the_modal_with_their_limit(world) -> None:  # noqa: ANN001
    _, inter, client, _, aid = world
    inter.apply(parse_callback(click(aid, BOB)), T + timedelta(minutes=5))
    [(method, kw)] = client.calls
    assert method == "views.open" and kw["trigger_id"].startswith(f"trig-{BOB}")
    assert "You may approve up to $500.00 in fin." in kw["view"]["blocks"][0]["text"]["text"]
    assert kw["view"]["private_metadata"] == f'{{"a":"{aid}","v":"approve","c":"C_FIN_APPROVALS","t":"1.000001"}}'


def test_over_the_limit_is_refused_and_nothing_changes(world) -> None:  # noqa: ANN001
    store, inter, client, box, aid = world
    audit_before, rows_before = len(store.audit()), len(box.items())
    inter.apply(parse_callback(submit(aid, BOB, reason="sure")), T + timedelta(minutes=6))  # empty amount: all $800
    [(method, kw)] = client.calls
    assert method == "chat.postEphemeral" and kw["user"] == BOB
    assert f"{BOB} may approve at most 500 USD in fin; this request is 800 USD" in kw["text"]
    assert store.approval(aid).state == "pending"
    assert (len(store.audit()), len(store.grants()), len(box.items())) == (audit_before, 0, rows_before)


def test_within_the_limit_bob_approves_less_and_the_outcome_is_queued(world) -> None:  # noqa: ANN001
    store, inter, client, box, aid = world
    inter.apply(parse_callback(submit(aid, BOB, amount="450", reason="half now")), T + timedelta(minutes=7))
    assert client.calls == []
    req = store.approval(aid)
    assert (req.state, req.decided_by, req.approved_usd, req.amount_usd, req.reason) == \
        ("approved", BOB, 450.0, 800.0, "half now")
    [grant] = store.grants("search-prod")
    assert (grant.amount_usd, grant.decided_by) == (450.0, BOB)
    assert store.audit()[-1].event == "approval.approved" and store.audit()[-1].amount_usd == 450.0
    assert [i.key for i in box.items(aid)][-2:] == [f"{aid}:update:approved", f"{aid}:reply:approved"]
    # the second approver is told who decided; nothing changes
    inter.apply(parse_callback(submit(aid, ANN, amount="800", view_id="V0000009")), T + timedelta(minutes=8))
    [(method, kw)] = client.calls
    assert method == "chat.postEphemeral" and kw["user"] == ANN
    assert kw["text"].startswith(f"This request was already approved by <@{BOB}> at <!date^")
    assert len(store.grants()) == 1


def errors_of(answer: tuple[int, str]) -> dict[str, str]:
    status, body = answer
    assert status == 200 and body, answer
    doc = json.loads(body)
    assert doc["response_action"] == "errors", doc
    return doc["errors"]


@pytest.mark.parametrize("verb, amount, reason, block, message", [
    ("deny", None, "  ", "approval_reason", "A reason is required to deny."),
    ("deny", None, None, "approval_reason", "A reason is required to deny."),
    ("approve", "900", "ok", "approval_amount",
     "900 USD is more than the 800 USD requested: approve at most 800 USD."),
    ("approve", "lots", "ok", "approval_amount", "The amount must be a number of USD, not 'lots'."),
    ("approve", "-5", None, "approval_amount",
     "The amount approved must be more than 0 USD (at most the 800 USD requested)."),
])
def test_what_cannot_be_decided_as_typed_is_an_inline_modal_error(world, verb: str, amount: str | None,  # noqa: ANN001
                                                                   reason: str | None, block: str,
                                                                   message: str) -> None:
    store, inter, client, box, aid = world
    audit_before, rows_before = len(store.audit()), len(box.items())
    answer = inter.apply(parse_callback(submit(aid, ANN, verb=verb, amount=amount, reason=reason)),
                         T + timedelta(minutes=5))
    assert errors_of(answer) == {block: message}
    assert len(message) <= 150  # Slack shows a short line under the field
    assert client.calls == []  # no ephemeral: the modal says it
    assert store.approval(aid).state == "pending"
    assert (len(store.audit()), len(store.grants()), len(box.items())) == (audit_before, 0, rows_before)


def test_a_corrected_submission_of_the_same_view_is_decided(tmp_path) -> None:  # noqa: ANN001
    """Slack keeps the view's id and hash when the user fixes an inline error: the second submission is new."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = GuardrailStore(url)
    upgrade(store.engine)
    aid = store.decide(overrun(), POLICY, now=T).approval.approval_id
    client = RecordingClient()
    notifier = ApprovalNotifier(SlackOutbox(url), store, APPROVERS)
    inbox = SlackInteractions(SECRET, url, clock=lambda: (T + timedelta(minutes=5)).timestamp(),
                              handlers=[ApprovalInteractions(store, APPROVERS, client, notifier)])  # type: ignore[arg-type]
    ts = int((T + timedelta(minutes=5)).timestamp())
    wrong = submit(aid, ANN, amount="900", reason="launch", view_id="V1", view_hash="h1")
    assert errors_of(inbox.handle(wrong, signed(wrong, ts=ts))) == {
        "approval_amount": "900 USD is more than the 800 USD requested: approve at most 800 USD."}
    fixed = submit(aid, ANN, amount="700", reason="launch", view_id="V1", view_hash="h1")
    assert inbox.handle(fixed, signed(fixed, ts=ts)) == (200, "")
    req = store.approval(aid)
    assert (req.state, req.approved_usd, req.decided_by) == ("approved", 700.0, ANN)
    assert inbox.handle(fixed, signed(fixed, ts=ts)) == (200, "")  # the same callback again: a replay
    assert [s for s, _ in inbox.callbacks()] == ["accepted", "accepted", "duplicate"]
    assert len(store.grants()) == 1


def test_a_member_of_a_slack_user_group_decides_within_its_limit(tmp_path) -> None:  # noqa: ANN001
    """fin lists the user group S0FINTEAM (dee, eve: up to $900) in the approvers file; no Slack call needed."""
    dee, eve = "U0DEE0001", "U0EVE0001"
    approvers = Approvers.from_yaml_text(f"""
slack_usergroups: {{S0FINTEAM: [{dee}, {eve}]}}
groups:
  fin: {{max_usd: 1000, members: [{{slack: S0FINTEAM, max_usd: 900}}], next: cfo}}
  cfo: {{max_usd: unlimited, members: [U0CY00001]}}
""")
    url = f"sqlite:///{tmp_path / 's.db'}"
    upgrade(url)
    store = GuardrailStore(url)
    aid = store.decide(overrun(), POLICY, now=T).approval.approval_id
    client = RecordingClient()
    notifier = ApprovalNotifier(SlackOutbox(url), store, approvers)
    inter = ApprovalInteractions(store, approvers, client, notifier)  # type: ignore[arg-type]
    inter.apply(parse_callback(click(aid, dee)), T + timedelta(minutes=5))
    [(method, kw)] = client.calls
    assert method == "views.open" and "You may approve up to $900.00 in fin." in kw["view"]["blocks"][0]["text"]["text"]
    inter.apply(parse_callback(click(aid, CARL, action_ts="2.2")), T + timedelta(minutes=5))
    assert f"{CARL} is not a member of approver group fin" in client.calls[-1][1]["text"]
    inter.apply(parse_callback(submit(aid, eve, reason="all of it")), T + timedelta(minutes=6))  # $800 <= $900
    req = store.approval(aid)
    assert (req.state, req.decided_by, req.approved_usd) == ("approved", eve, 800.0)
    assert store.audit()[-1].actor == eve

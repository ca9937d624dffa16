"""Approval state machine and authorisation (hand-worked deadlines and limits)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from guardrails.approvals import ApprovalRequest, Refused, approval_id, approve, deny, due, grant_expiry
from guardrails.approvers import Approvers, ConfigError
from guardrails.policy.actions import OnTimeoutEscalate

T = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
AP = Approvers.from_yaml_text("""
groups:
  leads: {max_usd: 300, members: [{slack: U0LEAD1, name: Lee}, {name: kim, max_usd: 100}], next: fin}
  fin: {max_usd: 5000, members: [U0FIN01], next: cfo}
  cfo: {max_usd: unlimited, members: [cy]}
""")


def req(**kw) -> ApprovalRequest:
    base = dict(approval_id=approval_id("ov", 0), overrun_id="ov", budget_id="b", rule="r", group="leads",
                amount_usd=250.0, created_at=T, deadline=T + timedelta(hours=2), deadline_s=7200.0,
                period_start=T.replace(hour=0), period_end=T.replace(hour=0) + timedelta(days=1))
    base.update(kw)
    return ApprovalRequest(**base)


@pytest.mark.parametrize(("user", "amount", "allowed"), [
    ("U0LEAD1", 300.0, True), ("lee", 300.0, True), ("Lee", 300.01, False),  # names are case-insensitive
    ("kim", 100.0, True), ("kim", 100.5, False),  # member limit overrides the group's
    ("U0FIN01", 10.0, False),  # member of another group
    ("cy", 10.0, False), ("mallory", 1.0, False),
])
def test_authorisation(user: str, amount: float, allowed: bool) -> None:
    assert (AP.authorise(user, "leads", amount) is None) == allowed


def test_authorisation_unknown_group_and_unlimited() -> None:
    assert AP.authorise("cy", "cfo", 1e12) is None
    assert "not defined" in AP.authorise("cy", "board", 1.0)


def test_approve_and_deny() -> None:
    tr = approve(req(), "lee", AP, T + timedelta(minutes=30), reason="ok")
    assert (tr.event, tr.after.state, tr.after.decided_by, tr.after.reason, tr.grant_usd) == \
        ("approved", "approved", "lee", "ok", 250.0)
    assert tr.before.state == "pending"
    with pytest.raises(Refused, match="kim may approve at most 100 USD in leads; this request is 250 USD"):
        approve(req(), "kim", AP, T)
    d = deny(req(), "kim", AP, T, reason="too much")  # any member may deny, whatever the amount
    assert (d.after.state, d.after.reason, d.grant_usd) == ("denied", "too much", None)
    with pytest.raises(Refused, match="needs a reason"):
        deny(req(), "lee", AP, T, reason="")
    with pytest.raises(Refused, match="approved, not pending"):
        approve(tr.after, "lee", AP, T)
    with pytest.raises(Refused, match="passed its deadline"):
        approve(req(), "lee", AP, T + timedelta(hours=2))


@pytest.mark.parametrize(("on_timeout", "event", "state", "next_group"), [
    ("expire", "expired", "expired", None),
    ("approve", "approved", "approved", None),
    ("deny", "denied", "denied", None),
    ("escalate", "escalated", "escalated", "fin"),
    (OnTimeoutEscalate(escalate="cfo"), "escalated", "escalated", "cfo"),
])
def test_deadlines(on_timeout, event: str, state: str, next_group: str | None) -> None:
    r = req(on_timeout=on_timeout)
    assert due(r, T + timedelta(hours=1, minutes=59), AP) is None
    tr = due(r, T + timedelta(hours=2, seconds=30), AP)
    assert (tr.event, tr.after.state, tr.actor) == (event, state, "deadline")
    if next_group is None:
        assert tr.created is None
    else:
        new = tr.created
        assert (new.group, new.state, new.level, new.previous_id) == (next_group, "pending", 1, r.approval_id)
        assert new.deadline == T + timedelta(hours=4, seconds=30)  # same 2 h from the escalation
        assert new.approval_id == approval_id("ov", 1) != r.approval_id
    assert due(tr.after, T + timedelta(days=1), AP) is None  # a decided request never changes again


def test_escalation_chain_runs_to_its_end_then_expires() -> None:
    r = req(on_timeout="escalate")
    levels = []
    now = T
    while r is not None and r.state == "pending":
        now = r.deadline
        tr = due(r, now, AP)
        levels.append((r.group, tr.event))
        r = tr.created
    assert levels == [("leads", "escalated"), ("fin", "escalated"), ("cfo", "expired")]


def test_escalate_with_a_new_deadline_then_expire() -> None:
    r = req(on_timeout=OnTimeoutEscalate(escalate="cfo", deadline=timedelta(hours=8)))
    new = due(r, r.deadline, AP).created
    assert (new.deadline - r.deadline, new.on_timeout) == (timedelta(hours=8), "expire")


def test_grant_expiry_never_passes_the_period() -> None:
    assert grant_expiry(req(), T) == req().period_end
    assert grant_expiry(req(grant_expires_s=3600), T) == T + timedelta(hours=1)
    assert grant_expiry(req(grant_expires_s=86400 * 3), T) == req().period_end


def test_approvers_file_errors_name_the_line() -> None:
    with pytest.raises(ConfigError, match=r"^a.yaml:3: groups.x.next: unknown group 'y'"):
        Approvers.from_yaml_text("groups:\n  x:\n    next: y\n    max_usd: 1\n    members: [bob]\n", "a.yaml")
    with pytest.raises(ConfigError, match=r"loops back"):
        Approvers.from_yaml_text("groups:\n  x: {max_usd: 1, members: [a], next: y}\n"
                                 "  y: {max_usd: 1, members: [b], next: x}\n", "a.yaml")
    with pytest.raises(ConfigError, match=r"a.yaml:2: groups.x.members.0.slack: Value error, a Slack user id"):
        Approvers.from_yaml_text("groups:\n  x: {max_usd: 1, members: [{slack: bob}]}\n", "a.yaml")


UG = Approvers.from_yaml_text("""
slack_usergroups:
  S0FINOPS: [U0ANN, U0BOB, U0CAT]
  S0BIGFIN: [U0CAT]
groups:
  finops:
    max_usd: 1000
    members:
      - {slack: S0FINOPS, name: finops-team}
      - {slack: S0BIGFIN, max_usd: 20000}
      - {slack: U0BOB, name: bob, max_usd: 100}
""")


@pytest.mark.parametrize(("user", "limit"), [
    ("U0ANN", 1000.0),    # via S0FINOPS: the group's limit
    ("U0BOB", 100.0),     # his own entry wins over his user group's
    ("bob", 100.0),
    ("U0CAT", 20000.0),   # in two user groups: the higher limit
    ("U0DAN", None),      # in none
    ("finops-team", None),  # a user group's name is not a user
])
def test_slack_user_groups_map_to_limits(user: str, limit: float | None) -> None:
    assert UG.limit(user, "finops") == limit
    r = req(group="finops", amount_usd=900.0)
    if limit is None:
        with pytest.raises(Refused, match=f"{user} is not a member of approver group finops"):
            approve(r, user, UG, T)
    elif limit < 900:
        with pytest.raises(Refused, match=f"{user} may approve at most {limit:g} USD in finops"):
            approve(r, user, UG, T)
    else:
        assert approve(r, user, UG, T).after.decided_by == user


def test_user_group_config_errors_name_the_line() -> None:
    with pytest.raises(ConfigError, match=r"^a.yaml:2: groups.x.members.0.slack: user group S0NOPE has no members "
                                          r"under slack_usergroups"):
        Approvers.from_yaml_text("groups:\n  x: {max_usd: 1, members: [S0NOPE]}\n", "a.yaml")
    with pytest.raises(ConfigError, match=r"^a.yaml:1: slack_usergroups: Value error, S0X: 'bob' is not a Slack "
                                          r"user id"):
        Approvers.from_yaml_text("slack_usergroups: {S0X: [bob]}\ngroups:\n  x: {max_usd: 1, members: [S0X]}\n",
                                 "a.yaml")
    with pytest.raises(ConfigError, match=r"is not a Slack user-group id"):
        Approvers.from_yaml_text("slack_usergroups: {G0X: [U0A]}\ngroups:\n  x: {max_usd: 1, members: [a]}\n",
                                 "a.yaml")

"""burnguard policy / approvals / audit / db through the real CLI entry point (subprocess-free: main(argv))."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from guardrails.policy import load_policy
from guardrails.policy.cases import OverrunCase
from sinks.guardrail_store import GuardrailStore
from sinks.migrations import head_revision, upgrade
from streams.cli import main

@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # rich wraps tables and long lines at the terminal width


SHIPPED = str(Path(__file__).resolve().parents[2] / "guardrails" / "policy.yaml")


def test_check_ok_and_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", SHIPPED]) == 0
    assert "ok, 8 rules" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: a\n    when: {overrun_usd: {le: 1}}\n    then: {action: nope}\n")
    assert main(["policy", "check", str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{bad}:3: rules.0.when.overrun_usd: unknown operator 'le'; use lt, lte, gt, gte, eq or in",
                   f"{bad}:4: rules.0.then.action: unknown action 'nope'; known: auto_approve, escalate, page, "
                   "throttle, deny, expand_budget",
                   f"{bad}:1: rules: no default rule: end the rules with one that has `default: true`"]
    assert main(["policy", "check", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_policy_test_cases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("""
cases:
  - name: small sandbox overrun [/x]
    overrun: {tier: sandbox, cap_usd: 50, spend_usd: 50, forecast_usd: 70}
    expect: {rule: sandbox-self-approve, action: auto_approve, decision: grant, amount_usd: 20}
  - name: big production overrun
    overrun: {tier: production, cap_usd: 10000, spend_usd: 10000, forecast_usd: 15000}
    expect: {rule: finance-same-day, action: escalate, group: finance-approvers}
  - name: wrong on purpose
    overrun: {tier: production, cap_usd: 1000, spend_usd: 1000, forecast_usd: 1100}
    expect: {rule: finance-same-day}
""")
    assert main(["policy", "test", SHIPPED, "--cases", str(cases)]) == 1
    out = capsys.readouterr().out
    assert "pass small sandbox overrun [/x]: sandbox-self-approve -> auto_approve" in out  # markup escaped
    assert "pass big production overrun" in out
    assert "FAIL wrong on purpose: rule: expected 'finance-same-day', got 'engineers-approve-small'" in out
    assert "2 passed, 1 failed" in out
    cases.write_text("cases:\n  - name: x\n    overrun: {tier: sandbox, cap_usd: lots}\n    expect: {rule: a}\n")
    assert main(["policy", "test", SHIPPED, "--cases", str(cases)]) == 2
    assert f"{cases}:3: cases.0.overrun.cap_usd" in capsys.readouterr().err


def test_explain_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ov = '{"tier": "production", "cap_usd": 1000, "spend_usd": 1000, "forecast_usd": 1500}'
    assert main(["policy", "explain", SHIPPED, "--overrun", ov]) == 0
    out = capsys.readouterr().out
    assert "rule engineers-approve-small (line 40): no" in out and "when.overrun_usd: 500 needs <= 200" in out
    assert "rule finance-same-day (line 46): no" in out and "when.overrun_usd: 500 needs > 1000" in out
    assert "rule finops-review (line 52): DECIDES -> escalate: to finops-approvers" in out
    f = tmp_path / "ov.json"
    f.write_text(ov)
    assert main(["policy", "explain", SHIPPED, "--overrun", f"@{f}", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["rule"], d["decision"], d["amount_usd"], d["group"]) == ("finops-review", "escalated", 500.0,
                                                                       "finops-approvers")
    assert [r["rule"] for r in d["rules"]][:2] == ["sandbox-self-approve", "sandbox-lead-or-stop"]
    assert main(["policy", "explain", SHIPPED, "--overrun", "{not json"]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert main(["policy", "explain", SHIPPED, "--overrun", '{"cap_usd": -1}']) == 2
    assert "--overrun: cap_usd" in capsys.readouterr().err


def test_approvals_approve_deny_and_audit(database_url: str, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BURNGUARD_DATABASE_URL", database_url)
    assert main(["db", "upgrade"]) == 0 and f"at revision {head_revision()}" in capsys.readouterr().out
    upgrade(database_url)
    store = GuardrailStore(database_url)
    policy = load_policy()
    at = datetime.now(timezone.utc)  # the CLI decides at wall-clock time: the deadline is 4 h from now
    mk = lambda oid, team: OverrunCase.model_validate(  # noqa: E731
        {"overrun_id": oid, "budget_id": f"b-{team}", "tier": "production", "scope": {"team": [team]},
         "period": "month", "at": at, "cap_usd": 10000, "spend_usd": 10000, "forecast_usd": 12000}).to_overrun()
    a = store.decide(mk("o1", "[red]x"), policy, now=at).approval
    b = store.decide(mk("o2", "y"), policy, now=at).approval
    store.close()
    assert main(["approvals", "--state", "pending"]) == 0
    out = capsys.readouterr().out
    assert a.approval_id in out and b.approval_id in out and "finance-approvers" in out
    assert main(["approvals", "--state", "pending", "--budget", "b-y", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["approval_id"], r["state"], r["group"], r["amount_usd"]) for r in rows] == \
        [(b.approval_id, "pending", "finance-approvers", 2000.0)]
    assert datetime.fromisoformat(rows[0]["deadline"]) == at + timedelta(hours=4)
    assert main(["approve", a.approval_id, "--as", "jordan"]) == 1  # finops, not finance
    assert "refused: jordan is not a member of approver group finance-approvers" in capsys.readouterr().err
    assert main(["approve", a.approval_id, "--as", "sam", "--reason", "launch"]) == 0
    assert "approved by sam; decision grant 2,000.00 USD" in capsys.readouterr().out
    assert main(["deny", b.approval_id, "--as", "U0FINANCE1", "--reason", "no"]) == 0
    assert main(["approve", "ap-missing", "--as", "sam"]) == 1
    capsys.readouterr()
    assert main(["audit", "--budget", "b-[red]x"]) == 0
    assert "approval.approved" in capsys.readouterr().out
    assert main(["audit", "verify"]) == 0 and "ok, 4 record(s)" in capsys.readouterr().out
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE guardrail_audit SET actor = 'mallory' WHERE seq = 3"))
    engine.dispose()
    assert main(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert "record 3: hash mismatch" in err and "FAILED" in err


def test_unreachable_database_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BURNGUARD_DATABASE_URL", "postgresql+psycopg://u:secret@127.0.0.1:1/x")
    assert main(["approvals"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot use the database") and "secret" not in err and err.count("\n") == 1


def test_the_shipped_policy_passes_its_shipped_cases(capsys: pytest.CaptureFixture[str]) -> None:
    """guardrails/policy_cases.yaml: one hand-worked case per rule of the shipped policy (at least)."""
    cases = str(Path(SHIPPED).with_name("policy_cases.yaml"))
    assert main(["policy", "test", SHIPPED, "--cases", cases]) == 0
    out = capsys.readouterr().out
    assert "10 passed, 0 failed" in out
    rules = {line.split(": ")[-1].split(" -> ")[0] for line in out.replace("\n", " ").split("pass ")[1:]}
    assert {"sandbox-self-approve", "sandbox-lead-or-stop", "pilot-goal-met", "production-runaway-burn",
            "engineers-approve-small", "finance-same-day", "finops-review", "default"} <= {r.strip() for r in rules}

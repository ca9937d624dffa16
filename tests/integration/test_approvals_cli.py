"""``burnguard approve ID --as USER --amount USD`` through the real CLI entry point, on SQLite and PostgreSQL.

The shipped policy escalates a $2,000 production overrun to finance-approvers (sam may approve $50,000).
Above the request or not a number: refused with a clear line, nothing changes; $1,500: approved, the
grant and the audit record carry $1,500 (the amount path Slack's modal uses).
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from guardrails.policy import load_policy
from guardrails.policy.cases import OverrunCase
from sinks.guardrail_store import GuardrailStore
from sinks.migrations import upgrade
from streams.cli import main


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")


def test_approve_with_an_amount(database_url: str, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BURNGUARD_DATABASE_URL", database_url)
    upgrade(database_url)
    store = GuardrailStore(database_url)
    at = datetime.now(timezone.utc)
    ov = OverrunCase.model_validate(
        {"overrun_id": "o-cli", "budget_id": "b-cli", "tier": "production", "scope": {"team": ["cli"]},
         "period": "month", "at": at, "cap_usd": 10000, "spend_usd": 10000, "forecast_usd": 12000}).to_overrun()
    req = store.decide(ov, load_policy(), now=at).approval
    assert req is not None and (req.group, req.amount_usd) == ("finance-approvers", 2000.0)
    audit = len(store.audit())

    assert main(["approve", req.approval_id, "--as", "sam", "--amount", "2500"]) == 1
    err = capsys.readouterr().err
    assert err == "refused: 2500 USD is more than the 2000 USD requested: approve at most 2000 USD\n", err
    assert main(["approve", req.approval_id, "--as", "sam", "--amount", "lots"]) == 2
    assert capsys.readouterr().err == "error: --amount: the amount must be a number of USD, not 'lots'\n"
    assert main(["approve", req.approval_id, "--as", "sam", "--amount", "0"]) == 1
    assert "must be more than 0 USD" in capsys.readouterr().err
    assert store.approval(req.approval_id).state == "pending"
    assert (len(store.audit()), store.grants()) == (audit, [])

    assert main(["approve", req.approval_id, "--as", "sam", "--amount", "$1,500", "--reason", "half"]) == 0
    out = capsys.readouterr().out
    assert out == f"{req.approval_id}: approved by sam; decision grant 1,500.00 USD on budget b-cli\n", out
    done = store.approval(req.approval_id)
    assert (done.state, done.decided_by, done.approved_usd, done.amount_usd) == ("approved", "sam", 1500.0, 2000.0)
    assert [(g.amount_usd, g.decided_by) for g in store.grants("b-cli")] == [(1500.0, "sam")]
    rec = store.audit()[-1]
    assert (rec.event, rec.actor, rec.amount_usd) == ("approval.approved", "sam", 1500.0)
    assert store.verify_audit() == []
    store.close()

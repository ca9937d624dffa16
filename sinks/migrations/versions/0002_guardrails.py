"""guardrail tables: budgets (locks), overruns, decisions, grants, approvals, audit log and head

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if _missing("guardrail_budgets"):
        op.create_table("guardrail_budgets",
                        sa.Column("budget_id", sa.String(128), primary_key=True),
                        sa.Column("created_at", TS, nullable=False))
    if _missing("guardrail_overruns"):
        op.create_table("guardrail_overruns",
                        sa.Column("overrun_id", sa.String(64), primary_key=True),
                        sa.Column("budget_id", sa.String(128), nullable=False),
                        sa.Column("payload", sa.JSON, nullable=False),
                        sa.Column("received_at", TS, nullable=False))
        op.create_index("ix_guardrail_overruns_budget_id", "guardrail_overruns", ["budget_id"])
    if _missing("guardrail_decisions"):
        op.create_table("guardrail_decisions",
                        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                        sa.Column("decision_id", sa.String(64), nullable=False, unique=True),
                        sa.Column("overrun_id", sa.String(64), nullable=False),
                        sa.Column("step", sa.Integer, nullable=False),
                        sa.Column("budget_id", sa.String(128), nullable=False),
                        sa.Column("action", sa.String(16), nullable=False),
                        sa.Column("amount_usd", sa.Float, nullable=True),
                        sa.Column("rule", sa.String(64), nullable=False),
                        sa.Column("policy_version", sa.String(80), nullable=False),
                        sa.Column("decided_at", TS, nullable=False),
                        sa.Column("decided_by", sa.String(128), nullable=False),
                        sa.Column("payload", sa.JSON, nullable=False),
                        sa.Column("published_at", TS, nullable=True),
                        sa.UniqueConstraint("overrun_id", "step", name="uq_guardrail_decisions_overrun_step"))
        op.create_index("ix_guardrail_decisions_overrun_id", "guardrail_decisions", ["overrun_id"])
        op.create_index("ix_guardrail_decisions_budget_id", "guardrail_decisions", ["budget_id"])
        op.create_index("ix_guardrail_decisions_published_at", "guardrail_decisions", ["published_at"])
    if _missing("guardrail_grants"):
        op.create_table("guardrail_grants",
                        sa.Column("grant_id", sa.String(64), primary_key=True),
                        sa.Column("budget_id", sa.String(128), nullable=False),
                        sa.Column("rule", sa.String(64), nullable=False),
                        sa.Column("amount_usd", sa.Float, nullable=False),
                        sa.Column("kind", sa.String(16), nullable=False),
                        sa.Column("period_start", TS, nullable=False),
                        sa.Column("period_end", TS, nullable=False),
                        sa.Column("expires_at", TS, nullable=True),
                        sa.Column("created_at", TS, nullable=False),
                        sa.Column("overrun_id", sa.String(64), nullable=True),
                        sa.Column("decided_by", sa.String(128), nullable=False))
        op.create_index("ix_guardrail_grants_budget_id", "guardrail_grants", ["budget_id"])
    if _missing("guardrail_approvals"):
        op.create_table("guardrail_approvals",
                        sa.Column("approval_id", sa.String(64), primary_key=True),
                        sa.Column("overrun_id", sa.String(64), nullable=False),
                        sa.Column("budget_id", sa.String(128), nullable=False),
                        sa.Column("group", sa.String(128), nullable=False),
                        sa.Column("state", sa.String(16), nullable=False),
                        sa.Column("amount_usd", sa.Float, nullable=False),
                        sa.Column("deadline", TS, nullable=False),
                        sa.Column("payload", sa.JSON, nullable=False),
                        sa.Column("updated_at", TS, nullable=False))
        for col in ("overrun_id", "budget_id", "state", "deadline"):
            op.create_index(f"ix_guardrail_approvals_{col}", "guardrail_approvals", [col])
    if _missing("guardrail_audit"):
        op.create_table("guardrail_audit",
                        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
                        sa.Column("at", sa.String(40), nullable=False),
                        sa.Column("event", sa.String(64), nullable=False),
                        sa.Column("actor", sa.String(128), nullable=False),
                        sa.Column("budget_id", sa.String(128), nullable=True),
                        sa.Column("overrun_id", sa.String(64), nullable=True),
                        sa.Column("approval_id", sa.String(64), nullable=True),
                        sa.Column("decision_id", sa.String(64), nullable=True),
                        sa.Column("body", sa.Text, nullable=False),
                        sa.Column("prev_hash", sa.String(64), nullable=False),
                        sa.Column("hash", sa.String(64), nullable=False))
        op.create_index("ix_guardrail_audit_at", "guardrail_audit", ["at"])
        op.create_index("ix_guardrail_audit_budget_id", "guardrail_audit", ["budget_id"])
    if _missing("guardrail_audit_head"):
        op.create_table("guardrail_audit_head",
                        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                        sa.Column("seq", sa.Integer, nullable=False),
                        sa.Column("hash", sa.String(64), nullable=False))


def downgrade() -> None:
    for name in ("guardrail_audit_head", "guardrail_audit", "guardrail_approvals", "guardrail_grants",
                 "guardrail_decisions", "guardrail_overruns", "guardrail_budgets"):
        op.drop_table(name)

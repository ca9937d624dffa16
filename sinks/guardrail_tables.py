"""SQLAlchemy models of the guardrail tables (their own metadata; Alembic migrates both it and sinks.store's).

One decision per (overrun_id, step) is a unique constraint: the policy's decision on an
overrun (step 0) exists once, however often the overrun is redelivered.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["ApprovalRow", "AuditHeadRow", "AuditRow", "BudgetLockRow", "DecisionRow", "GrantRow", "GuardrailBase",
           "OverrunRow"]

TS = DateTime(timezone=True)


class GuardrailBase(DeclarativeBase):
    pass


class BudgetLockRow(GuardrailBase):
    """One row per budget, locked (SELECT ... FOR UPDATE) while deciding on that budget."""

    __tablename__ = "guardrail_budgets"

    budget_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(TS)


class OverrunRow(GuardrailBase):
    __tablename__ = "guardrail_overruns"

    overrun_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    budget_id: Mapped[str] = mapped_column(String(128), index=True)
    payload: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(TS)


class DecisionRow(GuardrailBase):
    __tablename__ = "guardrail_decisions"
    __table_args__ = (UniqueConstraint("overrun_id", "step", name="uq_guardrail_decisions_overrun_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_id: Mapped[str] = mapped_column(String(64), unique=True)
    overrun_id: Mapped[str] = mapped_column(String(64), index=True)
    step: Mapped[int] = mapped_column(Integer)
    budget_id: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(16))
    amount_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    rule: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(80))
    decided_at: Mapped[datetime] = mapped_column(TS)
    decided_by: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict] = mapped_column(JSON)
    published_at: Mapped[datetime | None] = mapped_column(TS, nullable=True, index=True)


class GrantRow(GuardrailBase):
    __tablename__ = "guardrail_grants"

    grant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    budget_id: Mapped[str] = mapped_column(String(128), index=True)
    rule: Mapped[str] = mapped_column(String(64))
    amount_usd: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[datetime] = mapped_column(TS)
    period_end: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TS)
    overrun_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_by: Mapped[str] = mapped_column(String(128))


class ApprovalRow(GuardrailBase):
    __tablename__ = "guardrail_approvals"

    approval_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    overrun_id: Mapped[str] = mapped_column(String(64), index=True)
    budget_id: Mapped[str] = mapped_column(String(128), index=True)
    group: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), index=True)
    amount_usd: Mapped[float] = mapped_column(Float)
    deadline: Mapped[datetime] = mapped_column(TS, index=True)
    payload: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(TS)


class AuditRow(GuardrailBase):
    """One audit record; ``body`` is its canonical JSON, ``hash`` SHA-256 over it (guardrails.audit)."""

    __tablename__ = "guardrail_audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40), index=True)  # ISO 8601 UTC, as hashed
    event: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    budget_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    overrun_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approval_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decision_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(GuardrailBase):
    """The newest audit record's (seq, hash): catches records deleted from the end; locked while appending."""

    __tablename__ = "guardrail_audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))

"""The guardrail store: overruns, decisions, grants, approval requests and the audit log (SQLAlchemy 2).

Every change happens in one transaction that first locks the budget's row (``SELECT ... FOR
UPDATE`` on PostgreSQL; SQLite transactions start with ``BEGIN IMMEDIATE``, one writer at a
time), so decisions on one budget are serialised: a second overrun decided at the same moment
sees the first one's grant, and a rule never grants more than it allows. The policy's decision
on an overrun is stored once (unique ``(overrun_id, step)``): a redelivered overrun returns the
stored decision (``created=False``) and writes nothing. Each decision and approval state change
appends one hash-chained audit record (:mod:`guardrails.audit`) in the same transaction.

Schema: ``sinks.migrations.upgrade(url)`` (the store does not create tables itself).

>>> from datetime import datetime, timezone
>>> from guardrails.policy import Policy
>>> from schemas.overrun import Overrun
>>> from sinks.migrations import upgrade
>>> store = GuardrailStore("sqlite://")
>>> _ = upgrade(store.engine)
>>> p = Policy.from_text("rules: [{name: all, default: true, then: {action: deny}}]")
>>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
>>> ov = Overrun(overrun_id="o1", budget_id="b", trigger="threshold", rule="threshold_100", period="day",
...              period_start=t, period_end=t, at=t, started_at=t, cap_usd=5, spend_usd=6, forecast_usd=6,
...              overrun_usd=1, overrun_pct=20)
>>> first, again = store.decide(ov, p, now=t), store.decide(ov, p, now=t)
>>> first.created, again.created, again.decision == first.decision, len(store.audit()), store.verify_audit()
(True, False, True, 1, [])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
from sqlalchemy import Engine, create_engine, event, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from guardrails import approvals as ap
from guardrails.approvals import ApprovalRequest, Refused, Transition
from guardrails.approvers import Approvers
from guardrails.audit import GENESIS, AuditEntry, AuditRecord, Problem, append, verify
from guardrails.decision import DecisionContext, decide, decision_for_transition, grant_for_transition
from guardrails.grants import Grant, active_grants_usd, effective_cap, granted_by_rule
from guardrails.policy import Explanation, Policy
from schemas.decision import Decision
from schemas.overrun import Overrun
from sinks.guardrail_tables import (ApprovalRow, AuditHeadRow, AuditRow, BudgetLockRow, DecisionRow, GrantRow,
                                    OverrunRow)

__all__ = ["Applied", "GuardrailStore", "NotFound", "Refused", "StoredDecision"]


class NotFound(LookupError):
    """No approval request with that id."""


@dataclass(frozen=True, slots=True)
class StoredDecision:
    decision: Decision
    created: bool  # False: the overrun was decided before (redelivery); nothing was written
    grant: Grant | None = None
    approval: ApprovalRequest | None = None
    explanation: Explanation | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """An approval transition as stored, with the decision and grant it made."""

    transition: Transition
    decision: Decision | None
    grant: Grant | None


def _utc(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _json(model) -> dict:  # noqa: ANN001 - any pydantic model
    return orjson.loads(model.model_dump_json())


def _grant(row: GrantRow) -> Grant:
    return Grant(row.grant_id, row.budget_id, row.rule, row.amount_usd, row.kind,  # type: ignore[arg-type]
                 _utc(row.period_start), _utc(row.period_end), _utc(row.created_at),  # type: ignore[arg-type]
                 _utc(row.expires_at), row.overrun_id, row.decided_by)


def _record(row: AuditRow) -> AuditRecord:
    """The record as stored: the columns win over the body, so an edit to either breaks the hash."""
    data = orjson.loads(row.body)
    data.update(seq=row.seq, at=row.at, event=row.event, actor=row.actor, budget_id=row.budget_id,
                overrun_id=row.overrun_id, approval_id=row.approval_id, decision_id=row.decision_id,
                prev_hash=row.prev_hash, hash=row.hash)
    return AuditRecord.model_validate(data)


def make_engine(url: str) -> Engine:
    """An engine for the store; SQLite transactions take the write lock at BEGIN (one writer at a time)."""
    if url in ("sqlite://", "sqlite:///:memory:"):
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
    else:
        return create_engine(url, pool_pre_ping=True)

    @event.listens_for(engine, "connect")
    def _no_pysqlite_transactions(dbapi_conn, _rec) -> None:  # noqa: ANN001 - SQLAlchemy's documented recipe
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn) -> None:  # noqa: ANN001
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class GuardrailStore:
    """Thread-safe; call from a thread (``asyncio.to_thread``), not the event loop."""

    def __init__(self, url: str | Engine) -> None:
        self.engine = url if isinstance(url, Engine) else make_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ locking and audit

    def _insert_ignore(self, s: Session, model, **values) -> None:  # noqa: ANN001
        ins = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        s.execute(ins(model).values(**values).on_conflict_do_nothing())

    def _lock_budget(self, s: Session, budget_id: str, now: datetime) -> None:
        self._insert_ignore(s, BudgetLockRow, budget_id=budget_id, created_at=now)
        s.execute(select(BudgetLockRow).where(BudgetLockRow.budget_id == budget_id).with_for_update())

    def _audit(self, s: Session, entry: AuditEntry) -> AuditRecord:
        self._insert_ignore(s, AuditHeadRow, id=1, seq=0, hash=GENESIS)
        head = s.execute(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()
                         .execution_options(populate_existing=True)).scalar_one()
        rec = append((head.seq, head.hash), entry)
        s.add(AuditRow(seq=rec.seq, at=rec.model_dump(mode="json")["at"], event=rec.event, actor=rec.actor,
                       budget_id=rec.budget_id, overrun_id=rec.overrun_id, approval_id=rec.approval_id,
                       decision_id=rec.decision_id, body=rec.body().decode(), prev_hash=rec.prev_hash,
                       hash=rec.hash))
        head.seq, head.hash = rec.seq, rec.hash
        return rec

    def _budget_grants(self, s: Session, budget_id: str) -> list[Grant]:
        return [_grant(r) for r in s.scalars(select(GrantRow).where(GrantRow.budget_id == budget_id))]

    def _add_decision(self, s: Session, d: Decision, grant: Grant | None) -> None:
        s.add(DecisionRow(decision_id=d.decision_id, overrun_id=d.overrun_id, step=d.step, budget_id=d.budget_id,
                          action=d.action, amount_usd=d.amount_usd, rule=d.rule, policy_version=d.policy_version,
                          decided_at=d.decided_at, decided_by=d.decided_by, payload=_json(d)))
        if grant is not None:
            s.add(GrantRow(grant_id=grant.grant_id, budget_id=grant.budget_id, rule=grant.rule,
                           amount_usd=grant.amount_usd, kind=grant.kind, period_start=grant.period_start,
                           period_end=grant.period_end, expires_at=grant.expires_at, created_at=grant.created_at,
                           overrun_id=grant.overrun_id, decided_by=grant.decided_by))

    def _add_approval(self, s: Session, req: ApprovalRequest, now: datetime) -> None:
        s.add(ApprovalRow(approval_id=req.approval_id, overrun_id=req.overrun_id, budget_id=req.budget_id,
                          group=req.group, state=req.state, amount_usd=req.amount_usd, deadline=req.deadline,
                          payload=_json(req), updated_at=now))

    # ------------------------------------------------------------------ deciding

    def _existing(self, s: Session, overrun_id: str) -> Decision | None:
        row = s.scalar(select(DecisionRow).where(DecisionRow.overrun_id == overrun_id, DecisionRow.step == 0))
        return Decision.model_validate(row.payload) if row is not None else None

    def decide(self, ov: Overrun, policy: Policy, now: datetime | None = None) -> StoredDecision:
        """Decide ``ov`` once: store the overrun, the decision, its grant or approval request and the audit record."""
        now = now or _now()
        try:
            with Session(self.engine) as s, s.begin():
                self._lock_budget(s, ov.budget_id, now)
                existing = self._existing(s, ov.overrun_id)
                if existing is not None:
                    return StoredDecision(existing, False)
                grants = self._budget_grants(s, ov.budget_id)
                counted = [g for g in grants if g.kind == "expand" or g.period_start == ov.period_start]
                # grants active at the overrun's own time: a replayed or caught-up period counts its grants
                # (they last until their expiry or the period's end), a live overrun those active now
                ctx = DecisionContext(now, active_grants_usd(counted, min(ov.at, now)),
                                      granted_by_rule(grants, ov.period_start))
                out = decide(ov, policy, ctx)
                d = out.decision
                if s.get(OverrunRow, ov.overrun_id) is None:
                    s.add(OverrunRow(overrun_id=ov.overrun_id, budget_id=ov.budget_id, payload=_json(ov),
                                     received_at=now))
                self._add_decision(s, d, out.grant)
                if out.approval is not None:
                    self._add_approval(s, out.approval, now)
                self._audit(s, AuditEntry(
                    at=now, event="decision", actor="policy", budget_id=ov.budget_id, overrun_id=ov.overrun_id,
                    approval_id=d.approval_id, decision_id=d.decision_id, rule=d.rule,
                    policy_version=policy.version, policy_sha256=policy.sha256, action=d.action,
                    amount_usd=d.amount_usd, reason=d.reason,
                    inputs={"overrun": _json(ov), "granted_usd": ctx.granted_usd,
                            "granted_by_rule": dict(ctx.granted_by_rule), "explanation": out.explanation.as_dict()}))
                s.flush()
                return StoredDecision(d, True, out.grant, out.approval, out.explanation)
        except IntegrityError:  # a concurrent writer decided it first (the unique constraint held)
            with Session(self.engine) as s:
                existing = self._existing(s, ov.overrun_id)
            if existing is None:
                raise
            return StoredDecision(existing, False)

    # ------------------------------------------------------------------ approvals

    def _transition(self, approval_id: str, fn: Callable[[ApprovalRequest], Transition | None],
                    now: datetime) -> Applied | None:
        with Session(self.engine) as s, s.begin():
            row = s.get(ApprovalRow, approval_id)
            if row is None:
                raise NotFound(f"no approval request {approval_id}")
            self._lock_budget(s, row.budget_id, now)
            row = s.execute(select(ApprovalRow).where(ApprovalRow.approval_id == approval_id).with_for_update()
                            .execution_options(populate_existing=True)).scalar_one()
            tr = fn(ApprovalRequest.model_validate(row.payload))  # Refused propagates: the transaction rolls back
            if tr is None:
                return None
            req = tr.after
            row.state, row.payload, row.updated_at = req.state, _json(req), now
            if tr.created is not None:
                self._add_approval(s, tr.created, now)
            ov_row = s.get(OverrunRow, req.overrun_id)
            scope = ov_row.payload.get("scope", {}) if ov_row is not None else {}
            first = s.scalar(select(DecisionRow).where(DecisionRow.overrun_id == req.overrun_id,
                                                       DecisionRow.step == 0))
            version = first.policy_version if first is not None else "unknown"
            d = decision_for_transition(tr, scope, version, now)
            grant = grant_for_transition(tr, d) if d is not None else None
            if d is not None:
                self._add_decision(s, d, grant)
            self._audit(s, AuditEntry(
                at=now, event=f"approval.{tr.event}", actor=tr.actor, budget_id=req.budget_id,
                overrun_id=req.overrun_id, approval_id=req.approval_id,
                decision_id=d.decision_id if d is not None else None, rule=req.rule, policy_version=version,
                action=d.action if d is not None else None,
                amount_usd=d.amount_usd if d is not None and d.action == "grant" else req.amount_usd, reason=req.reason,
                inputs={"group": req.group, "before": tr.before.state, "deadline": tr.before.deadline.isoformat(),
                        "escalated_to": tr.created.approval_id if tr.created else None,
                        "escalated_group": tr.created.group if tr.created else None}))
            return Applied(tr, d, grant)

    def approve(self, approval_id: str, user: str, approvers: Approvers, reason: str | None = None,
                now: datetime | None = None, amount_usd: float | None = None) -> Applied:
        """``user`` approves (``amount_usd``: less than requested); raises :class:`Refused` (nothing
        changes) or :class:`NotFound`. The CLI and Slack both decide through this and :meth:`deny`."""
        now = now or _now()
        out = self._transition(approval_id, lambda r: ap.approve(r, user, approvers, now, reason, amount_usd), now)
        assert out is not None
        return out

    def deny(self, approval_id: str, user: str, approvers: Approvers, reason: str,
             now: datetime | None = None) -> Applied:
        now = now or _now()
        out = self._transition(approval_id, lambda r: ap.deny(r, user, approvers, now, reason), now)
        assert out is not None
        return out

    def apply_due(self, approvers: Approvers, now: datetime | None = None) -> list[Applied]:
        """Apply every deadline that has passed (expire, approve, deny or escalate, as each rule says)."""
        now = now or _now()
        with Session(self.engine) as s:
            ids = list(s.scalars(select(ApprovalRow.approval_id).where(ApprovalRow.state == "pending",
                                                                       ApprovalRow.deadline <= now)
                                 .order_by(ApprovalRow.deadline)))
        out = []
        for approval_id in ids:
            applied = self._transition(approval_id, lambda r: ap.due(r, now, approvers), now)
            if applied is not None:
                out.append(applied)
        return out

    # ------------------------------------------------------------------ reading

    def approval(self, approval_id: str) -> ApprovalRequest | None:
        with Session(self.engine) as s:
            row = s.get(ApprovalRow, approval_id)
            return ApprovalRequest.model_validate(row.payload) if row is not None else None

    def approvals(self, state: str | None = None, budget_id: str | None = None) -> list[ApprovalRequest]:
        with Session(self.engine) as s:
            q = select(ApprovalRow).order_by(ApprovalRow.deadline, ApprovalRow.approval_id)
            if state:
                q = q.where(ApprovalRow.state == state)
            if budget_id:
                q = q.where(ApprovalRow.budget_id == budget_id)
            return [ApprovalRequest.model_validate(r.payload) for r in s.scalars(q)]

    def overrun(self, overrun_id: str) -> Overrun | None:
        with Session(self.engine) as s:
            row = s.get(OverrunRow, overrun_id)
            return Overrun.model_validate(row.payload) if row is not None else None

    def decisions(self, budget_id: str | None = None, overrun_id: str | None = None,
                  unpublished: bool = False) -> list[Decision]:
        with Session(self.engine) as s:
            q = select(DecisionRow).order_by(DecisionRow.id)
            if budget_id:
                q = q.where(DecisionRow.budget_id == budget_id)
            if overrun_id:
                q = q.where(DecisionRow.overrun_id == overrun_id)
            if unpublished:
                q = q.where(DecisionRow.published_at.is_(None))
            return [Decision.model_validate(r.payload) for r in s.scalars(q)]

    def mark_published(self, decision_ids: list[str], now: datetime | None = None) -> None:
        """Outbox: these decisions reached ``guardrail.decisions``."""
        if decision_ids:
            with Session(self.engine) as s, s.begin():
                s.execute(update(DecisionRow).where(DecisionRow.decision_id.in_(decision_ids))
                          .values(published_at=now or _now()))

    def grants(self, budget_id: str | None = None) -> list[Grant]:
        with Session(self.engine) as s:
            q = select(GrantRow).order_by(GrantRow.created_at, GrantRow.grant_id)
            if budget_id:
                q = q.where(GrantRow.budget_id == budget_id)
            return [_grant(r) for r in s.scalars(q)]

    def effective_cap(self, budget_id: str, cap_usd: float, now: datetime | None = None) -> float:
        """The budget's cap plus its grants active at ``now``."""
        return effective_cap(cap_usd, self.grants(budget_id), now or _now())

    def audit(self, budget_id: str | None = None) -> list[AuditRecord]:
        with Session(self.engine) as s:
            q = select(AuditRow).order_by(AuditRow.seq)
            if budget_id:
                q = q.where(AuditRow.budget_id == budget_id)
            return [_record(r) for r in s.scalars(q)]

    def verify_audit(self) -> list[Problem]:
        """Breaks in the audit chain (empty: intact), including records deleted from its end."""
        with Session(self.engine) as s:
            head = s.get(AuditHeadRow, 1)
            records = []
            for r in s.scalars(select(AuditRow).order_by(AuditRow.seq)):
                try:
                    records.append(_record(r))
                except ValueError as err:  # a body edited into something that is not a record
                    return [Problem(r.seq, f"unreadable record: {str(err).splitlines()[0]}")]
            return verify(records, (head.seq, head.hash) if head is not None else None)

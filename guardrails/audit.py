"""The audit log: append-only records, each carrying the hash of the one before it (pure).

A record says who did what, when and why: the event (``decision``, ``approval.approved``,
...), the actor (``policy``, an approver, ``deadline``), the rule, the policy version and
hash, the ids involved and the inputs (the overrun). Its ``hash`` is SHA-256 over its
canonical JSON (sorted keys, every field but ``hash``), which includes ``prev_hash``; so
editing a record breaks its own hash, and deleting one breaks the next record's link.
:func:`verify` finds both, and a missing tail when given the stored head.

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
>>> a = append(None, AuditEntry(at=t, event="decision", actor="policy", budget_id="b", rule="small"))
>>> b = append(a, AuditEntry(at=t, event="approval.approved", actor="U1", budget_id="b", reason="ok"))
>>> (a.seq, b.seq, b.prev_hash == a.hash, verify([a, b]))
(1, 2, True, [])
>>> forged = b.model_copy(update={"actor": "U2"})
>>> [p.text() for p in verify([a, forged])]
['record 2: hash mismatch: the record was edited']
>>> [p.text() for p in verify([b])]
['record 2: the chain does not start at record 1: 1 record(s) before it are missing']
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from schemas.events import UtcDatetime

__all__ = ["GENESIS", "AuditEntry", "AuditRecord", "Problem", "append", "record_hash", "verify"]

#: ``prev_hash`` of the first record.
GENESIS = "0" * 64


class AuditEntry(BaseModel):
    """What is recorded (without its place in the chain)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: UtcDatetime
    event: str = Field(min_length=1, max_length=64)
    actor: str = Field(min_length=1, max_length=128)
    budget_id: str | None = None
    overrun_id: str | None = None
    approval_id: str | None = None
    decision_id: str | None = None
    rule: str | None = None
    policy_version: str | None = None
    policy_sha256: str | None = None
    action: str | None = None
    amount_usd: float | None = None
    reason: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)


class AuditRecord(AuditEntry):
    """An entry at ``seq`` in the chain."""

    seq: int = Field(ge=1)
    prev_hash: str
    hash: str = ""

    def body(self) -> bytes:
        """Canonical JSON of everything but ``hash`` (what the hash covers)."""
        return orjson.dumps(self.model_dump(mode="json", exclude={"hash"}), option=orjson.OPT_SORT_KEYS)


def record_hash(rec: AuditRecord) -> str:
    return hashlib.sha256(rec.body()).hexdigest()


def append(prev: AuditRecord | tuple[int, str] | None, entry: AuditEntry) -> AuditRecord:
    """The record that follows ``prev`` (a record, or the stored head's (seq, hash); ``None``: the first)."""
    if isinstance(prev, tuple):
        prev_seq, prev_h = prev
    else:
        prev_seq, prev_h = (0, GENESIS) if prev is None else (prev.seq, prev.hash)
    seq, prev_hash = prev_seq + 1, prev_h
    rec = AuditRecord(**entry.model_dump(), seq=seq, prev_hash=prev_hash)
    return rec.model_copy(update={"hash": record_hash(rec)})


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int
    message: str

    def text(self) -> str:
        return f"record {self.seq}: {self.message}"


def verify(records: Iterable[AuditRecord], head: tuple[int, str] | None = None) -> list[Problem]:
    """Every break in the chain (empty: intact). ``records`` in ``seq`` order; ``head`` = the stored
    (seq, hash) of the newest record, which catches records deleted from the end."""
    problems: list[Problem] = []
    prev: AuditRecord | None = None
    for rec in records:
        if rec.hash != record_hash(rec):
            problems.append(Problem(rec.seq, "hash mismatch: the record was edited"))
        if prev is None:
            if rec.seq != 1:
                problems.append(Problem(rec.seq, f"the chain does not start at record 1: {rec.seq - 1} record(s) "
                                                 f"before it are missing"))
            elif rec.prev_hash != GENESIS:
                problems.append(Problem(rec.seq, "the first record does not start the chain"))
        else:
            if rec.seq != prev.seq + 1:
                problems.append(Problem(rec.seq, f"record(s) {prev.seq + 1}..{rec.seq - 1} are missing (deleted)"))
            elif rec.prev_hash != prev.hash:
                problems.append(Problem(rec.seq, f"does not link to record {prev.seq}: it was edited or replaced"))
        prev = rec
    if head is not None:
        seq, h = head
        if prev is None and seq > 0:
            problems.append(Problem(seq, f"all {seq} record(s) are missing"))
        elif prev is not None and (prev.seq, prev.hash) != (seq, h):
            if prev.seq < seq:
                problems.append(Problem(prev.seq + 1, f"record(s) {prev.seq + 1}..{seq} at the end are missing"))
            else:
                problems.append(Problem(prev.seq, "the newest record does not match the stored head"))
    return problems

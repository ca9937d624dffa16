"""Audit hash chain: intact chains verify; edits, deletions, reordering and a cut tail are found."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from guardrails.audit import GENESIS, AuditEntry, append, record_hash, verify

T = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)


def chain(n: int):
    out, prev = [], None
    for i in range(n):
        prev = append(prev, AuditEntry(at=T + timedelta(seconds=i), event="decision", actor="policy",
                                       budget_id="b", amount_usd=float(i), inputs={"i": i}))
        out.append(prev)
    return out


def test_hash_is_sha256_of_the_canonical_body() -> None:
    [a] = chain(1)
    assert a.seq == 1 and a.prev_hash == GENESIS
    assert a.hash == hashlib.sha256(a.body()).hexdigest() == record_hash(a)
    assert b'"hash"' not in a.body() and b'"prev_hash":"' + GENESIS.encode() in a.body()


def test_intact_chain() -> None:
    recs = chain(5)
    assert verify(recs) == [] and verify(recs, (5, recs[-1].hash)) == []
    assert [r.prev_hash for r in recs[1:]] == [r.hash for r in recs[:-1]]


def test_edited_record() -> None:
    recs = chain(4)
    recs[2] = recs[2].model_copy(update={"amount_usd": 1e6})
    assert [(p.seq, p.message) for p in verify(recs)] == [(3, "hash mismatch: the record was edited")]


def test_edited_and_rehashed_record_breaks_the_next_link() -> None:
    recs = chain(4)
    forged = recs[1].model_copy(update={"actor": "mallory"})
    recs[1] = forged.model_copy(update={"hash": record_hash(forged)})
    assert [p.seq for p in verify(recs)] == [3]


def test_deleted_records() -> None:
    recs = chain(5)
    assert [p.text() for p in verify(recs[:2] + recs[3:])] == ["record 4: record(s) 3..3 are missing (deleted)"]
    assert [p.seq for p in verify(recs[1:])] == [2]
    assert [p.text() for p in verify(recs[:3], (5, recs[-1].hash))] == [
        "record 4: record(s) 4..5 at the end are missing"]
    assert verify([], (5, recs[-1].hash))[0].message == "all 5 record(s) are missing"

"""One hostile message cannot become millions of dead letters (issue 9)."""

from __future__ import annotations

import orjson

from schemas.ingest import MAX_MESSAGE_BYTES, Normalizer


def test_4mb_envelope_of_invalid_items_yields_bounded_dead_letters_with_counts_by_reason() -> None:
    n_items = (MAX_MESSAGE_BYTES - 2) // 2  # "[1,1,...,1]" just under the 4 MB limit: ~2.1 million items
    value = b"[" + b",".join([b"1"] * n_items) + b"]"
    assert len(value) <= MAX_MESSAGE_BYTES
    n = Normalizer()
    records, rejects = n.parse("llm", value)
    assert records == []
    assert len(rejects) == 101  # the first 100 one by one, then one summary
    assert [r.index for r in rejects[:100]] == list(range(100))
    summary = rejects[-1]
    assert summary.index is None
    assert f"{n_items - 100} more" in summary.reason
    assert f"event must be a JSON object, got int: {n_items - 100}" in summary.reason
    assert orjson.loads(summary.raw) == [1] * (n_items - 100)  # the rest, replayable as one envelope
    assert n.stats["rejected"] == n_items  # every rejected event is still counted


def test_summary_counts_each_reason_and_keeps_good_events() -> None:
    good = {"timestamp": "2026-01-05T10:00:00Z", "model": "gpt-4o", "cost_usd": 0.5}
    items = [1] * 5 + ["x"] * 3 + [good] + [{"model": "m"}] * 2
    records, rejects = Normalizer(max_rejects_per_message=2).parse("llm", orjson.dumps(items))
    assert [r.cost_usd for r in records] == [0.5]
    assert [r.index for r in rejects[:2]] == [0, 1]
    summary = rejects[2]
    assert len(rejects) == 3 and "8 more rejected events" in summary.reason
    assert "event must be a JSON object, got int: 3" in summary.reason
    assert "event must be a JSON object, got str: 3" in summary.reason
    assert "native: timestamp: Field required: 2" in summary.reason
    assert orjson.loads(summary.raw) == [1, 1, 1, "x", "x", "x", {"model": "m"}, {"model": "m"}]


def test_under_the_cap_every_reject_is_individual() -> None:
    _, rejects = Normalizer(max_rejects_per_message=3).parse("llm", b"[1, 2, 3]")
    assert [r.index for r in rejects] == [0, 1, 2]

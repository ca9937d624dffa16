"""The differential check of normalize's fast paths (``tests/unit/test_normalize_fast.py``,
``tests/unit/test_litellm_fast.py``): the same messages through ``reference_work`` and ``MessageWork``.

:func:`compare` gives each path its own Normalizer and limiter and compares, message by message, everything
normalize sends (:func:`view`: partial sums per key, spend per budget, GPU samples, requests per model, the newest
event time, the record count, the dead letters by reason, index and bytes), and afterwards the Normalizers'
counters and the limiters' overflow counts. Floats are compared exactly: the fast path adds in the reference's
order.

>>> compare([b'[{"timestamp": "2026-01-05T10:00:00Z", "model": "gpt-4o", "cost_usd": 0.5}]', b"{not json"])
[True, False]
"""

from __future__ import annotations

from typing import Any

from guardrails.budget_book import BudgetBook
from schemas.cardinality import CardinalityLimiter
from schemas.ingest import Normalizer
from streams.agents.normalize_work import MessageWork, Work, reference_work

__all__ = ["BOOK", "LEVELS", "compare", "view"]

BOOK = BudgetBook.load()
LEVELS = (("team", "environment"), ("environment",))


_VIEW = ("by_key", "spend", "gpu", "requests", "newest", "records", "rejects")


def view(w: Work) -> tuple[Any, ...]:
    """What of a message's work normalize sends (the dead letters as reason, index, bytes)."""
    return (w.by_key, w.spend, w.gpu, w.requests, w.newest, w.records,
            [(j.reason, j.index, j.raw) for j in w.rejects])


def _differences(got: tuple[Any, ...], ref: tuple[Any, ...]) -> str:
    """Which parts of two views differ, and how (this module's asserts are not rewritten by pytest)."""
    return "; ".join(f"{name}: fast {g!r:.600} != reference {r!r:.600}"
                     for name, g, r in zip(_VIEW, got, ref) if g != r)


def compare(messages: list[Any], *, seconds: int = 60, limits: dict[str, int] | None = None,
            normalizer: Normalizer | None = None) -> list[bool]:
    """Assert both paths agree on every message; which messages the fast path took. ``normalizer``: whose
    catalog, rules and future-skew limit both paths use (default: the shipped ones)."""
    base = normalizer or Normalizer()
    ref_n = Normalizer(base.catalog, base.rules, max_future_skew=base.max_future_skew)
    fast_n = Normalizer(base.catalog, base.rules, max_future_skew=base.max_future_skew)
    ref_lim, fast_lim = CardinalityLimiter(limits), CardinalityLimiter(limits)
    work = MessageWork(fast_n, BOOK, fast_lim, seconds, LEVELS)
    took = []
    for i, m in enumerate(messages):
        ref = reference_work(ref_n, BOOK, ref_lim, seconds, LEVELS, "llm", m)
        got = work.run("llm", m)
        fast_view, ref_view = view(got), view(ref)
        assert fast_view == ref_view, f"message {i}: {m!r:.300}: {_differences(fast_view, ref_view)}"
        took.append(got.fast)
    assert +fast_n.stats == +ref_n.stats, f"counters: fast {+fast_n.stats} != reference {+ref_n.stats}"
    assert +fast_lim.overflow == +ref_lim.overflow, f"overflow: fast {+fast_lim.overflow} != {+ref_lim.overflow}"
    return took

"""Which budgets each cost record's dollars count towards, summed per budget and minute (pure).

Spend is routed from the cost records themselves, as the normalize agent reads them, so a budget sees
every dollar once however the records are later bucketed, and tier-scoped budgets match on the
record's own tier. Only full allocation keys count (the records, not roll-ups); each budget counts
the sources it names (metered ``llm`` and ``gpu`` by default, not invoice rows for the same calls).
Credits (negative costs, e.g. FOCUS refunds) are netted in.

>>> from datetime import datetime, timezone
>>> from guardrails.budget_book import BudgetBook
>>> from schemas.cost import CostRecord
>>> book = BudgetBook.load()
>>> t = datetime(2026, 11, 20, 9, 0, 30, tzinfo=timezone.utc)
>>> recs = [CostRecord(ts=t, source="llm", team="research", tier="sandbox", cost_usd=2.0),
...         CostRecord(ts=t, source="llm", team="research", cost_usd=1.0),
...         CostRecord(ts=t, source="billing", team="research", cost_usd=5.0)]
>>> spend_by_budget(recs, book)
{'org': [[1795165200, 3.0]], 'team-research': [[1795165200, 3.0]], 'research-sandbox': [[1795165200, 2.0]]}
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from guardrails.budget_book import BudgetBook
from schemas.cost import CostRecord

MINUTE_S = 60


def spend_by_budget(records: Iterable[CostRecord], book: BudgetBook) -> dict[str, list[list[float]]]:
    """``budget id -> [[minute start (epoch s), spend], ...]`` (minutes in order) for ``records``."""
    sums: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for rec in records:
        if not rec.cost_usd:
            continue
        minute = int(rec.ts.timestamp()) // MINUTE_S * MINUTE_S
        for spec in book.matching(rec.allocation_key, tier=rec.tier):
            if rec.source in spec.sources:
                sums[spec.id][minute] += rec.cost_usd
    return {bid: [[m, usd] for m, usd in sorted(by_minute.items())] for bid, by_minute in sums.items()}

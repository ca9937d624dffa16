"""Per-dimension cardinality limits: a hostile or buggy producer cannot grow the key space without bound.

Each dimension of the allocation key may take at most ``limit`` distinct values per team (``team``
itself: in all). A record with a value beyond its limit is kept, with that value replaced by
``other``, so every dollar still counts, and the overflow is counted per dimension (``/health``).
The values admitted are the first ones seen by this worker since it started (they are not a
changelog: after a restart or on another worker a different set may be admitted first).

>>> from datetime import datetime, timezone
>>> from schemas.cost import CostRecord
>>> lim = CardinalityLimiter({"customer": 2})
>>> t = datetime(2026, 11, 20, tzinfo=timezone.utc)
>>> [lim.admit(CostRecord(ts=t, source="llm", team="a", customer=c)).customer for c in ("x", "y", "z", "x")]
['x', 'y', 'other', 'x']
>>> dict(lim.overflow)
{'customer': 1}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from schemas.cost import KEY_FIELDS, CostRecord

OTHER = "other"
#: The shipped limits: generous for real fleets, small enough that 100k invented customers stay bounded.
DEFAULT_LIMITS: dict[str, int] = {"team": 1000, "feature": 500, "customer": 2000, "model": 500, "environment": 20}


class CardinalityLimiter:
    def __init__(self, limits: Mapping[str, int] | None = None) -> None:
        unknown = set(limits or {}) - set(KEY_FIELDS)
        if unknown:
            raise ValueError(f"cardinality limits for unknown dimension(s) {sorted(unknown)}; known: {KEY_FIELDS}")
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._seen: dict[tuple[str, str], set[str]] = {}
        self.overflow: Counter[str] = Counter()

    def _allowed(self, dim: str, scope: str, value: str) -> bool:
        seen = self._seen.setdefault((dim, scope), set())
        if value in seen:
            return True
        if len(seen) >= self.limits[dim]:
            self.overflow[dim] += 1
            return False
        seen.add(value)
        return True

    def admit(self, rec: CostRecord) -> CostRecord:
        """``rec``, or a copy with each value over its limit replaced by ``other``."""
        changes: dict[str, str] = {}
        team = rec.team
        if "team" in self.limits and not self._allowed("team", "", team):
            changes["team"] = team = OTHER
        for dim, limit in self.limits.items():
            if dim == "team":
                continue
            value = getattr(rec, dim)
            if value != OTHER and not self._allowed(dim, team, value):
                changes[dim] = OTHER
        return rec.model_copy(update=changes) if changes else rec

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


#: Key values whose admission is remembered (cleared when full: recomputing gives the same answer).
MEMO_SIZE = 1 << 17


class CardinalityLimiter:
    def __init__(self, limits: Mapping[str, int] | None = None) -> None:
        unknown = set(limits or {}) - set(KEY_FIELDS)
        if unknown:
            raise ValueError(f"cardinality limits for unknown dimension(s) {sorted(unknown)}; known: {KEY_FIELDS}")
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self._seen: dict[tuple[str, str], set[str]] = {}
        self.overflow: Counter[str] = Counter()
        # key values -> (admitted values, dimensions replaced). Safe to remember: a value once admitted stays
        # admitted (sets only grow), and one refused stays refused (it was refused because its set was full, and
        # a full set takes no new value), so the same values always give the same answer.
        self._memo: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}

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
        values = (rec.team, rec.feature, rec.customer, rec.model, rec.environment)
        admitted, changed = self.admission(values)
        return rec.model_copy(update={dim: OTHER for dim in changed}) if changed else rec

    def admit_values(self, values: tuple[str, str, str, str, str]) -> tuple[str, ...]:
        """The key field values (``KEY_FIELDS`` order) as :meth:`admit` would leave them (and counted the same).

        >>> lim = CardinalityLimiter({"customer": 1})
        >>> [lim.admit_values(("a", "f", c, "m", "production"))[2] for c in ("x", "y", "y")], lim.overflow["customer"]
        (['x', 'other', 'other'], 2)
        """
        return self.admission(values)[0]

    def admission(self, values: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(admitted values, dimensions replaced by ``other``) for key field values, counted as :meth:`admit` does.
        The same values always get the same answer (see ``_memo``): one with nothing replaced may be remembered by
        the caller, since admitting it again changes nothing."""
        hit = self._memo.get(values)
        if hit is not None:
            for dim in hit[1]:
                self.overflow[dim] += 1
            return hit
        out = dict(zip(KEY_FIELDS, values))
        changed: list[str] = []
        team = out["team"]
        if "team" in self.limits and not self._allowed("team", "", team):
            changed.append("team")
            out["team"] = team = OTHER
        for dim in self.limits:
            if dim == "team":
                continue
            if out[dim] != OTHER and not self._allowed(dim, team, out[dim]):
                changed.append(dim)
                out[dim] = OTHER
        got = (tuple(out[f] for f in KEY_FIELDS), tuple(changed))
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        self._memo[values] = got
        return got

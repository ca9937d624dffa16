"""Roll-up keys: the same spend, summed at coarser levels (e.g. per team), with its children.

A record for ``team=ads|feature=copygen|…`` also counts towards the roll-up key where
every field outside the level is ``*``; its *child* names the fields that were rolled up,
so the roll-up's buckets know which children their spend came from (root cause).

>>> from datetime import datetime, timezone
>>> from schemas.cost import CostRecord
>>> r = CostRecord(ts=datetime(2026, 11, 20, tzinfo=timezone.utc), source="llm", team="ads",
...                feature="copygen", model="gpt-4o", cost_usd=1.0, requests=1)
>>> rollup_keys(r, [["team", "environment"]])
[('team=ads|feature=*|customer=*|model=*|environment=production', 'feature=copygen|customer=unknown|model=gpt-4o')]
>>> is_rollup('team=ads|feature=*|customer=*|model=*|environment=production')
True
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from schemas.cost import KEY_FIELDS, CostRecord, escape_key_value

ANY = "*"


def rollup_keys(rec: CostRecord, levels: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """(roll-up key, child) for each level, e.g. ``[["team", "environment"]]``."""
    out = []
    for level in levels:
        key = "|".join(f"{f}={escape_key_value(getattr(rec, f))}" if f in level else f"{f}={ANY}" for f in KEY_FIELDS)
        child = "|".join(f"{f}={getattr(rec, f)}" for f in KEY_FIELDS if f not in level)
        out.append((key, child))
    return out


def rollup_of(key: str, level: Sequence[str]) -> str:
    """The roll-up key that full allocation key ``key`` counts towards at ``level``.

    >>> rollup_of("team=ads|feature=f|customer=c|model=m|environment=production", ["team"])
    'team=ads|feature=*|customer=*|model=*|environment=*'
    """
    parts = dict(p.split("=", 1) for p in key.split("|"))
    return "|".join(f"{f}={parts[f] if f in level else ANY}" for f in KEY_FIELDS)


def is_rollup(key: str) -> bool:
    """True for roll-up keys; tag values cannot fake one (``*`` in a value is escaped).

    >>> from datetime import datetime, timezone
    >>> r = CostRecord(ts=datetime(2026, 11, 20, tzinfo=timezone.utc), source="llm", feature="*beta")
    >>> is_rollup(r.allocation_key), is_rollup(rollup_keys(r, [["team"]])[0][0])
    (False, True)
    """
    return any(part.split("=", 1)[1] == ANY for part in key.split("|") if "=" in part)


def keyed_records(records: Iterable[CostRecord], levels: Sequence[Sequence[str]]
                  ) -> Iterator[tuple[str, CostRecord, str | None]]:
    """Each record under its own allocation key (child ``None``) and under every roll-up key."""
    for rec in records:
        yield rec.allocation_key, rec, None
        for key, child in rollup_keys(rec, levels):
            yield key, rec, child

"""What the detectors had learnt, read off the ``monitors`` changelog: per series, the observation count its
detector held at each save, in order. A detector recovered after a crash or a rebalance carries on from its
count; one rebuilt from nothing starts again at 1 (and must warm up again before it can alert).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from streams.state.codec import decode
from streams.state.values import ChildrenState, KeyMonitors, SeriesState, SiblingsState, legacy_key
from tests.support.topics import changelog_records


@dataclass(frozen=True)
class Save:
    """One save of a series' state: changelog partition and offset, the detector's observation count (``None``:
    the series was deleted, e.g. its key expired)."""

    partition: int
    offset: int
    n: int | None


def observation_counts(bootstrap: str, app_id: str) -> dict[str, list[Save]]:
    """Series (``key#metric``) -> every save of its SeriesState on ``{app_id}-monitors-changelog``, in order
    (detectors with an observation count ``n``: ew_zscore, holt_residual, seasonal_z). A key's series are one
    value (KeyMonitors) under the key; before, one value each under ``key#kind`` (read as well)."""
    out: dict[str, list[Save]] = {}
    for partition, records in changelog_records(bootstrap, f"{app_id}-monitors-changelog").items():
        for offset, raw_key, value in records:
            key = json.loads(raw_key) if raw_key.startswith(b'"') else raw_key.decode()  # faust's JSON keys
            for series, n in series_counts(key, value, out):
                out.setdefault(series, []).append(Save(partition, offset, n))
    return out


def series_counts(key: str, value: bytes | None, seen: dict[str, list[Save]]) -> list[tuple[str, int | None]]:
    """(series, observation count or ``None`` for a deletion) of one ``monitors`` changelog record (``seen``:
    the series read so far, for a deleted key's).

    >>> from detectors.monitor import SeriesMonitor
    >>> from detectors.registry import make_detector
    >>> from streams.state.codec import encode
    >>> m = SeriesMonitor(make_detector("ew_zscore"))
    >>> state = SeriesState(1, 0.0, m)
    >>> series_counts("k", encode(KeyMonitors({"spend": state})), {}), series_counts("k#spend", encode(state), {})
    ([('k#spend', 0)], [('k#spend', 0)])
    >>> series_counts("k", None, {"k#spend": [], "k2#spend": []})
    [('k#spend', None)]
    """
    if value is None:  # a series' own value (the layout before), or a key's with all its series
        gone = [s for s in seen if s == key or s.rsplit("#", 1)[0] == key]
        return [(s, None) for s in gone] or [(key, None)]
    state = decode(value, expect=(KeyMonitors, SeriesState, ChildrenState, SiblingsState))
    if isinstance(state, KeyMonitors):
        return [(legacy_key(key, kind), s.monitor.detector.n) for kind, s in state.items()
                if isinstance(s, SeriesState)]
    if isinstance(state, (ChildrenState, SiblingsState)):
        return []  # a roll-up's root-cause baselines or a sibling prior: no detector
    return [(key, state.monitor.detector.n)]


def count_drops(saves: list[Save]) -> list[tuple[Save, Save]]:
    """(before, after) pairs where a series' observation count went down without a deletion in between: a
    detector that lost what it had learnt.

    >>> count_drops([Save(0, 1, 5), Save(0, 9, 6), Save(0, 12, 1)])
    [(Save(partition=0, offset=9, n=6), Save(partition=0, offset=12, n=1))]
    >>> count_drops([Save(0, 1, 5), Save(0, 2, None), Save(0, 3, 1)])
    []
    """
    drops = []
    for before, after in zip(saves, saves[1:]):
        if before.n is not None and after.n is not None and after.n < before.n:
            drops.append((before, after))
    return drops

"""What the detectors had learnt, read off the ``monitors`` changelog: per series, the observation count its
detector held at each save, in order. A detector recovered after a crash or a rebalance carries on from its
count; one rebuilt from nothing starts again at 1 (and must warm up again before it can alert).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from streams.scoring import SiblingsState
from streams.state.codec import decode
from streams.state.values import ChildrenState, SeriesState
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
    (detectors with an observation count ``n``: ew_zscore, holt_residual, seasonal_z)."""
    out: dict[str, list[Save]] = {}
    for partition, records in changelog_records(bootstrap, f"{app_id}-monitors-changelog").items():
        for offset, key, value in records:
            state = None if value is None else decode(value, expect=(SeriesState, ChildrenState, SiblingsState))
            if isinstance(state, (ChildrenState, SiblingsState)):
                continue  # a roll-up's root-cause baselines or a sibling prior: no detector
            n = None if state is None else state.monitor.detector.n
            series = json.loads(key) if key.startswith(b'"') else key.decode()  # faust's JSON key serializer
            out.setdefault(series, []).append(Save(partition, offset, n))
    return out


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

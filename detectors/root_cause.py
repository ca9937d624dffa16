"""Root cause of a roll-up alert: which sub-keys moved the money.

Given, for each sub-key of an alerting roll-up (e.g. the features of a team, the models
of a feature), the observed spend and its baseline, rank sub-keys by dollar impact
``observed - baseline``. Sub-keys present on one side only count as 0 on the other
(a brand-new key is all impact; a vanished key is negative impact).

>>> obs = {"feature=search": 120.0, "feature=chat": 40.0, "feature=new-agent": 30.0}
>>> base = {"feature=search": 20.0, "feature=chat": 42.0, "feature=summarise": 5.0}
>>> top = top_contributors(obs, base, k=2)
>>> [(c.key, c.impact, round(c.share, 2)) for c in top]
[('feature=search', 100.0, 0.77), ('feature=new-agent', 30.0, 0.23)]
>>> explain(top)
'feature=search +$100.00 (77%), feature=new-agent +$30.00 (23%)'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Contributor:
    key: str
    observed: float
    baseline: float
    impact: float  # observed - baseline, in the series' money unit
    share: float  # impact / total positive impact (0..1 for contributors to a rise)

    @property
    def ratio(self) -> float:
        """observed / baseline (inf for a new key)."""
        return self.observed / self.baseline if self.baseline > 0 else float("inf")


def contributions(observed: Mapping[str, float], baseline: Mapping[str, float]) -> list[Contributor]:
    """Every sub-key's impact, largest first (ties by key for a stable order).

    >>> [c.impact for c in contributions({"a": 1.0}, {"b": 2.0})]
    [1.0, -2.0]
    """
    keys = set(observed) | set(baseline)
    rows = [(k, float(observed.get(k, 0.0)), float(baseline.get(k, 0.0))) for k in keys]
    rising = sum(max(o - b, 0.0) for _, o, b in rows)
    out = [Contributor(k, o, b, o - b, (o - b) / rising if rising > 0 else 0.0) for k, o, b in rows]
    return sorted(out, key=lambda c: (-c.impact, c.key))


def top_contributors(observed: Mapping[str, float], baseline: Mapping[str, float], k: int = 5,
                     min_share: float = 0.0) -> list[Contributor]:
    """The ``k`` sub-keys with the largest positive dollar impact (and at least ``min_share`` of it).

    >>> top_contributors({"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 1.0})
    []
    """
    return [c for c in contributions(observed, baseline) if c.impact > 0 and c.share >= min_share][:k]


def explain(top: Sequence[Contributor]) -> str:
    """One line for an alert: ``key +$impact (share%)``, comma-separated."""
    return ", ".join(f"{c.key} +${c.impact:,.2f} ({100 * c.share:.0f}%)" for c in top)

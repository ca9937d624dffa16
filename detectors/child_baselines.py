"""Per-child spend baselines of one roll-up series (the input to root cause).

A roll-up key (e.g. a team) is the sum of its children (feature × model × customer …).
This keeps an exponentially weighted mean of each child's spend per bucket, so that
when the roll-up alerts, each child's observed spend can be set against its own normal.
Bounded: beyond ``max_children`` the smallest baselines are dropped.

>>> cb = ChildBaselines()
>>> for _ in range(50):
...     cb.learn({"feature=a": 1.0, "feature=b": 2.0})
>>> top = cb.contributors({"feature=a": 9.0, "feature=b": 2.1}, k=2)
>>> [(c.key, round(c.impact, 2)) for c in top]
[('feature=a', 8.0)]
"""

from __future__ import annotations

from collections.abc import Mapping

from detectors.root_cause import Contributor, top_contributors
from detectors.statecheck import NUM, fields, mapping


class ChildBaselines:
    __slots__ = ("alpha", "max_children", "means")

    def __init__(self, alpha: float = 0.05, max_children: int = 200) -> None:
        self.alpha = alpha
        self.max_children = max_children
        self.means: dict[str, float] = {}

    def learn(self, spend_by_child: Mapping[str, float]) -> None:
        """One closed bucket: children absent from it spent 0 in it."""
        a = self.alpha
        for child in self.means.keys() - spend_by_child.keys():
            self.means[child] *= 1 - a
        for child, spend in spend_by_child.items():
            prev = self.means.get(child)
            self.means[child] = spend if prev is None else prev + a * (spend - prev)
        if len(self.means) > self.max_children:
            keep = sorted(self.means.items(), key=lambda kv: -kv[1])[: self.max_children]
            self.means = dict(keep)

    def contributors(self, spend_by_child: Mapping[str, float], k: int = 3,
                     min_share: float = 0.05) -> list[Contributor]:
        """The ``k`` children whose spend rose most, in dollars, against their own baselines
        (each with at least ``min_share`` of the total rise: no 1 % noise in an alert)."""
        return top_contributors(spend_by_child, self.means, k=k, min_share=min_share)

    # -- table state (streams.state.codec) ---------------------------------------------------
    STATE_TAG = "child_baselines"
    STATE_VERSION = 1

    def to_state(self) -> dict[str, object]:
        return {"alpha": self.alpha, "max_children": self.max_children, "means": self.means}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> "ChildBaselines":
        fields(state, {"alpha": NUM, "max_children": int, "means": dict})
        cb = cls.__new__(cls)
        cb.alpha, cb.max_children = state["alpha"], state["max_children"]
        cb.means = mapping(state["means"], "means", str, NUM)
        return cb


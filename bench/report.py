"""The speed benchmark's pure helpers: percentiles of latency samples and the one table ``make bench`` prints.

Percentiles are *nearest rank* (the smallest sample with at least p % of the samples at or below it), so
a p99 is always a latency that was measured, and with fewer than 100 samples it is the maximum:

>>> percentile([0.3, 0.1, 0.2, 0.4], 50), percentile([0.3, 0.1, 0.2, 0.4], 99)
(0.2, 0.4)
>>> percentile(list(range(1, 201)), 99), percentile([5.0], 1)
(198, 5.0)

A row says how a figure compares with its target and with the raw baseline measured in the same run:

>>> rows = [Row("native-env drained", "≥ 150k/s", "9,004 events/s", "0.020×", met(False)),
...         Row("early firing", "≤ 5 s", "1.84 s", "", met(True))]
>>> print(format_table(rows))
figure              target    measured         ratio  met
---------------------------------------------------------
native-env drained  ≥ 150k/s  9,004 events/s  0.020×   no
early firing        ≤ 5 s     1.84 s                  yes
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of non-empty ``samples``."""
    if not samples:
        raise ValueError("no samples")
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {p}")
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


@dataclass(frozen=True)
class Latencies:
    """p50 / p99 / max of latency samples in seconds (``n`` = 0: nothing was measured).

    >>> Latencies.of([1.0, 3.0, 2.0]).text()
    'p50 2.00 s, p99 3.00 s (max 3.00 s, n=3)'
    >>> Latencies.of([]).text()
    'no samples'
    """

    n: int
    p50: float = math.nan
    p99: float = math.nan
    max: float = math.nan

    @classmethod
    def of(cls, samples: Sequence[float]) -> "Latencies":
        if not samples:
            return cls(0)
        return cls(len(samples), percentile(samples, 50), percentile(samples, 99), max(samples))

    def text(self) -> str:
        if not self.n:
            return "no samples"
        return f"p50 {self.p50:.2f} s, p99 {self.p99:.2f} s (max {self.max:.2f} s, n={self.n:,})"


def met(ok: bool | None) -> str:
    """The ``met`` column: yes, no, or empty when the row has no target (``None``)."""
    return "" if ok is None else ("yes" if ok else "no")


def ratio(value: float, baseline: float) -> str:
    """``value`` / ``baseline`` as the ratio column (empty without a baseline).

    >>> ratio(9004, 448_000), ratio(1.0, 0.0)
    ('0.020×', '')
    """
    if not baseline or not math.isfinite(baseline) or not math.isfinite(value):
        return ""
    return f"{value / baseline:.3f}×"


@dataclass(frozen=True)
class Row:
    figure: str
    target: str = ""
    measured: str = ""
    ratio: str = ""
    met: str = ""


def format_table(rows: Sequence[Row]) -> str:
    """Columns figure, target, measured (left-aligned), ratio and met (right-aligned), a rule under the header."""
    head = Row("figure", "target", "measured", "ratio", "met")
    cells = [(r.figure, r.target, r.measured, r.ratio, r.met) for r in (head, *rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(5)]
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in cells]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)

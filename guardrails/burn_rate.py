"""SRE multi-window, multi-burn-rate alerting applied to money budgets.

A budget of ``B`` dollars over a period of ``P`` seconds allows an even spend rate of
``B / P``. The *burn rate* of a window is its spend divided by what the even rate would
have spent in it: 1.0 exhausts the budget exactly at the end of the period, 14.4 spends
2 % of a 30-day budget in one hour. An alert needs both a long and a short window above
the factor (the long one proves it is significant, the short one that it is still
happening, so the alert resets quickly once the burn stops). Default rules (Google SRE
workbook): page at 14.4x over 1 h and 5 min; page at 6x over 6 h and 30 min.

All functions are pure, over per-window spend sums (from the stream's bucket sums).

>>> budget = Budget(amount=3000.0, period_s=30 * 86400)   # $3000 / 30 days = $4.17/h
>>> round(burn_rate(60.0, 3600, budget), 1)                 # $60 in the last hour
14.4
>>> sums = {3600: 70.0, 300: 7.0, 21600: 80.0, 1800: 10.0}
>>> [(a.rule.name, round(a.long_rate, 1), round(a.short_rate, 1)) for a in evaluate(sums, budget)]
[('fast', 16.8, 20.2)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Budget:
    amount: float  # dollars per period
    period_s: float  # e.g. 30 days

    @property
    def rate_per_s(self) -> float:
        return self.amount / self.period_s


@dataclass(frozen=True, slots=True)
class BurnRule:
    name: str
    long_s: int
    short_s: int
    factor: float
    severity: str = "page"


DEFAULT_RULES: tuple[BurnRule, ...] = (
    BurnRule("fast", 3600, 300, 14.4, "page"),
    BurnRule("slow", 6 * 3600, 1800, 6.0, "page"),
)


@dataclass(frozen=True, slots=True)
class BurnAlert:
    rule: BurnRule
    long_rate: float
    short_rate: float
    long_spend: float
    projected_exhaustion_s: float  # at the long window's rate, from a full budget


def burn_rate(spend: float, window_s: float, budget: Budget) -> float:
    """Spend in a window relative to the even rate that lands exactly on budget."""
    allowed = budget.rate_per_s * window_s
    return spend / allowed if allowed > 0 else float("inf")


def budget_spent_fraction(rule: BurnRule, budget: Budget) -> float:
    """Fraction of the budget the long window spends at the rule's factor (0.02 for 14.4x/1h/30d).

    >>> round(budget_spent_fraction(DEFAULT_RULES[0], Budget(1.0, 30 * 86400)), 3)
    0.02
    """
    return rule.factor * rule.long_s / budget.period_s


def evaluate(window_sums: Mapping[int, float], budget: Budget,
             rules: Sequence[BurnRule] = DEFAULT_RULES) -> list[BurnAlert]:
    """Rules whose long *and* short windows both burn at ``factor`` or more.

    ``window_sums`` maps a window length in seconds to the spend in the window ending now.

    >>> evaluate({3600: 70.0, 300: 0.1, 21600: 80.0, 1800: 10.0}, Budget(3000.0, 30 * 86400))
    []
    """
    out = []
    for r in rules:
        if r.long_s not in window_sums or r.short_s not in window_sums:
            raise KeyError(f"rule {r.name} needs sums for {r.long_s}s and {r.short_s}s windows")
        lr = burn_rate(window_sums[r.long_s], r.long_s, budget)
        sr = burn_rate(window_sums[r.short_s], r.short_s, budget)
        if lr >= r.factor and sr >= r.factor:
            out.append(BurnAlert(r, lr, sr, window_sums[r.long_s], budget.period_s / lr if lr > 0 else float("inf")))
    return out


def window_sums(buckets: Iterable[tuple[datetime, float]], now: datetime,
                windows: Iterable[int]) -> dict[int, float]:
    """Sum bucket spend over each trailing window ``(now - w, now]`` (bucket keyed by its start).

    >>> from datetime import timedelta, timezone
    >>> t = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    >>> b = [(t - timedelta(minutes=m), 1.0) for m in range(1, 121)]
    >>> window_sums(b, t, [300, 3600])
    {300: 5.0, 3600: 60.0}
    """
    ws = sorted(set(windows))
    sums = {w: 0.0 for w in ws}
    for start, spend in buckets:
        age = (now - start).total_seconds()
        if age <= 0:
            continue
        for w in ws:
            if age <= w:
                sums[w] += spend
    return sums


def needed_windows(rules: Sequence[BurnRule] = DEFAULT_RULES) -> list[int]:
    """Window lengths (s) the rules need, ascending.

    >>> needed_windows()
    [300, 1800, 3600, 21600]
    """
    return sorted({w for r in rules for w in (r.long_s, r.short_s)})

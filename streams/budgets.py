"""Budgets in the stream: route bucket spend to the budgets it counts towards, and burn events as alerts.

>>> from datetime import datetime, timezone
>>> from guardrails.budget_book import BudgetBook
>>> book = BudgetBook.load()
>>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
>>> b = Bucket(key="team=search|feature=f|customer=c|model=m|environment=production", start=t,
...            seconds=60, spend_usd=2.0, requests=3)
>>> routed = spend_by_budget([b], book)
>>> "org" in routed and routed["org"] == [[t.timestamp(), 2.0]]
True
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from guardrails.budget_book import BudgetBook
from guardrails.burn_tracker import BurnEvent
from schemas.alert import Alert
from schemas.bucket import Bucket
from streams.rollups import is_rollup


def spend_by_budget(buckets: Iterable[Bucket], book: BudgetBook) -> dict[str, list[list[float]]]:
    """``budget id -> [[bucket start (epoch s), spend], ...]`` for full-key buckets (roll-ups would
    count the same dollars twice); late corrections included: budgets count every dollar."""
    out: dict[str, list[list[float]]] = defaultdict(list)
    for b in buckets:
        if is_rollup(b.key) or b.spend_usd == 0:
            continue
        for spec in book.matching(b.key):
            out[spec.id].append([b.start.timestamp(), b.spend_usd])
    return out


def burn_alert(ev: BurnEvent) -> Alert:
    """A budget event as an alert, fingerprinted by (budget, rule, incident start)."""
    exhausted = f", exhausted at {ev.projected_exhaustion:%Y-%m-%d %H:%M} UTC" if ev.projected_exhaustion else ""
    spent = (f"${ev.period_spent_usd:,.2f} of ${ev.cap_usd:,.2f} spent this period; projected "
             f"${ev.projected_spend_usd:,.2f}{exhausted}")
    if ev.kind == "burn_rate":
        metric, observed, baseline, high = f"burn_rate.{ev.rule}", ev.long_rate, 1.0, ev.long_rate
        summary = f"burning {ev.long_rate:.1f}x (long window), {ev.short_rate:.1f}x (short window); {spent}"
    else:
        metric, observed, baseline, high = f"budget.{ev.rule}", ev.period_spent_usd, ev.cap_usd, ev.cap_usd
        summary = f"{100 * ev.period_spent_usd / ev.cap_usd:.0f}% of the budget; {spent}"
    return Alert(series_key=f"budget={ev.budget_id}", metric=metric, detector="burn_rate", score=1.0,
                 severity="critical" if ev.severity == "page" else "warning", observed=observed,
                 baseline=baseline, expected_low=0.0, expected_high=high, window_start=ev.started_at,
                 window_end=ev.at, started_at=ev.started_at, status=ev.status,  # type: ignore[arg-type]
                 summary=summary)

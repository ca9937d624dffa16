"""The budget an incident eats into, and that budget's state now (from the stored budget snapshots).

An incident's subject (an allocation key, a roll-up of one, or a budget's own ``budget=ID`` key)
spends from every budget whose scope covers it (:meth:`~guardrails.budget_book.BudgetBook.matching`);
the one shown is the most specific (deepest in the hierarchy; then the most consumed), since that
is the cap the incident reaches first. Its figures are the budgets agent's latest snapshot
(:mod:`sinks.budget_store`): period-to-date spend, cap, end-of-period forecast and exhaustion time.
A snapshot of a period that ended before the incident started says nothing about it (None).

>>> from datetime import datetime, timezone
>>> from guardrails.budget_book import BudgetBook
>>> t = datetime(2026, 11, 20, 14, tzinfo=timezone.utc)
>>> book = BudgetBook.from_yaml_text("budgets: [{id: org, cap_usd: 1000, period: day}, "
...     "{id: ads, parent: org, scope: {team: ads}, cap_usd: 100, period: day}]")
>>> snaps = {s.budget_id: s for s in [
...     BudgetSnapshot(budget_id="org", scope={}, tier=None, period="day", period_start=t.replace(hour=0),
...                    cap_usd=1000.0, spend_usd=300.0, updated_at=t),
...     BudgetSnapshot(budget_id="ads", scope={"team": ["ads"]}, tier=None, period="day",
...                    period_start=t.replace(hour=0), cap_usd=100.0, spend_usd=80.0, forecast_usd=130.0,
...                    updated_at=t)]}
>>> s = budget_state("team=ads|feature=copygen|customer=*|model=*|environment=production", t, book, snaps)
>>> s.budget_id, s.spent_usd, s.cap_usd, s.projected_usd, s.fraction
('ads', 80.0, 100.0, 130.0, 0.8)
>>> budget_state("budget=org", t, book, snaps).spent_usd
300.0
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from guardrails.budget_book import BudgetBook, BudgetSpec, period_bounds
from schemas.incident import BudgetState
from sinks.budget_store import BudgetSnapshot, BudgetStore

#: Snapshots are read again at most this often (seconds): a burst of notifications reads them once.
REFRESH_S = 2.0


def _candidates(subject_key: str, book: BudgetBook) -> list[BudgetSpec]:
    if subject_key.startswith("budget="):
        spec = book.get(subject_key.split("=", 1)[1])
        return [spec] if spec is not None else []
    try:
        return book.matching(subject_key)
    except ValueError:  # not an allocation key (a GPU's, another family's): no budget
        return []


def _state(snap: BudgetSnapshot) -> BudgetState:
    return BudgetState(budget_id=snap.budget_id, spent_usd=snap.spend_usd, cap_usd=snap.cap_usd,
                       projected_usd=snap.forecast_usd, exhausted_at=snap.exhausted_at)


def budget_state(subject_key: str, started_at: datetime, book: BudgetBook,
                 snapshots: Mapping[str, BudgetSnapshot]) -> BudgetState | None:
    """The state of the most specific budget covering ``subject_key`` (None: no budget, or no current figures)."""
    found: list[tuple[int, float, str, BudgetSnapshot]] = []
    for spec in _candidates(subject_key, book):
        snap = snapshots.get(spec.id)
        if snap is None:
            continue
        if snap.period_start is not None and period_bounds(spec.period, snap.period_start)[1] <= started_at:
            continue  # an earlier period's figures
        used = snap.spend_usd / snap.cap_usd if snap.cap_usd else 0.0
        found.append((-spec.level, -used, spec.id, snap))
    return _state(min(found, key=lambda f: f[:3])[3]) if found else None


class IncidentBudgets:
    """``(subject_key, started_at) -> BudgetState | None`` from a budget book and the snapshot store
    (blocking: call it from a thread). Snapshots are cached for :data:`REFRESH_S` seconds."""

    def __init__(self, book: BudgetBook, store: BudgetStore, refresh_s: float = REFRESH_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.book, self.store, self.refresh_s, self.clock = book, store, refresh_s, clock
        self._lock = threading.Lock()
        self._snaps: dict[str, BudgetSnapshot] = {}
        self._read_at: float | None = None

    def _snapshots(self) -> dict[str, BudgetSnapshot]:
        with self._lock:
            now = self.clock()
            if self._read_at is None or now - self._read_at >= self.refresh_s:
                self._snaps = {s.budget_id: s for s in self.store.snapshots()}
                self._read_at = now
            return self._snaps

    def __call__(self, subject_key: str, started_at: datetime) -> BudgetState | None:
        if not _candidates(subject_key, self.book):
            return None
        return budget_state(subject_key, started_at, self.book, self._snapshots())

    def close(self) -> None:
        self.store.close()

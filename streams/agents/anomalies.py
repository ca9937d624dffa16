"""anomalies: a spend anomaly with a $ impact becomes an overrun on each budget it speaks for, once.

Data flow::

    alerts (keyed by series) -> route_anomalies: each firing ``spend`` alert with a $ impact, once per
        budget it speaks for (guardrails.overrun.budgets_spoken_for) -> guardrail.anomalies (keyed by
        budget id: the alert as it was)
    guardrail.anomalies -> anomaly_overruns: on the budget's own partition (the topic is co-partitioned
        with budget.spend, so the budgets agent's table burn_trackers holds the budget's live tracker on
        this worker) -> overrun_from_alert with the budget's period-to-date spend and statsmodels
        forecast -> guardrail.overruns (keyed by budget id) -> decide_overruns

Why this shape:

- *One overrun per budget per incident.* A spike alerts on its leaf key and on each roll-up above it,
  and on several metrics. Only ``spend`` alerts count (money on the budget; cost per inference and the
  rest are evidence), and for each budget only the alert on the highest-level key the budget covers:
  that roll-up's series sums everything the budget covers at that level, so its alert is "the budget's
  spend is anomalous" (a leaf alert speaks for a feature budget, the team roll-up for the team budget).
  This is a property of the key and the budget, not of arrival order, so it needs no state, no wait for
  the other levels' alerts, and gives the same answer on every redelivery.
- *Stable id.* ``overrun_id`` hashes (budget, the alert's fingerprint, period start, incident start), and
  an alert's fingerprint is (series, metric, incident start): a redelivered alert, an alert detect
  re-sends after a crash, or a re-routed copy is the same overrun, which the store decides once
  (``GuardrailStore.decide``). Nothing here keeps state, so nothing here can be lost or double-applied.
- *Figures from the budget's state.* The routing step only knows the key; the pricing step runs where the
  budget's tracker lives (co-partitioned, as approvals_slack reads it), so the overrun carries the live
  period-to-date spend and the same statsmodels forecast as the budget's own overruns, never a copy a
  few seconds old. When the tracker is ahead of the alert in event time (a replay, a lagging detect), its
  spend already holds the anomaly's minutes since the alert, so the anomaly is priced from the tracker's
  clock on, not from the alert's bucket. A quarantined tracker falls back to the budget's stored snapshot
  (:mod:`sinks.budget_store`); a budget with no spend yet this period counts as 0 spent.

Resolved alerts raise nothing (the end of an incident is not a new question). The pure parts
(routing, pricing, the id) are :mod:`guardrails.overrun`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import faust

from guardrails.budget_book import BudgetBook, BudgetSpec
from guardrails.burn_tracker import BurnTracker
from guardrails.overrun import OVERRUN_METRIC, alert_impact_usd_per_s, budgets_spoken_for, overrun_from_alert
from schemas.alert import Alert
from schemas.overrun import Overrun
from schemas.text import safe_terminal
from sinks.budget_store import BudgetSnapshot, BudgetStore
from sinks.retry import until_stored
from streams.agents.guard import guarded, retrying
from streams.agents.normalize import load_budgets
from streams.state.tables import StateQuarantined, TypedTable
from streams.state.values import BudgetState
from streams.topology import alerts_topic, anomalies_topic, app, burn_trackers, overruns_topic, settings

log = logging.getLogger("burnguard")

Send = Callable[[str, bytes], Awaitable[Any]]


def is_anomaly(alert: Alert) -> bool:
    """A firing spend alert with a $ impact (the kind of alert an overrun comes from)."""
    return alert.status == "firing" and alert.metric == OVERRUN_METRIC and alert_impact_usd_per_s(alert) > 0


def route(alert: Alert, book: BudgetBook, levels: Sequence[Sequence[str]]) -> list[str]:
    """The ids of the budgets whose overrun ``alert`` raises (none for anything but a spend anomaly)."""
    if not is_anomaly(alert):
        return []
    return [spec.id for spec in budgets_spoken_for(alert.series_key, book, levels)]


class AnomalyRouter:
    """``route_anomalies``' work, testable without a broker: ``send(budget_id, value)``."""

    def __init__(self, book: BudgetBook, levels: Sequence[Sequence[str]], send: Send) -> None:
        self.book, self.levels, self.send = book, [list(level) for level in levels], send

    async def handle(self, value: bytes) -> list[str]:
        alert = Alert.model_validate_json(value)  # bad JSON raises: the guard dead-letters it
        targets = route(alert, self.book, self.levels)
        for budget_id in targets:
            await self.send(budget_id, alert.model_dump_json().encode())
        return targets


#: (period-to-date spend, end-of-period forecast, the event time they are as of)
Figures = tuple[float, float | None, datetime | None]
NOTHING_YET: Figures = (0.0, None, None)


def tracker_figures(tracker: BurnTracker, period_start: datetime) -> Figures | None:
    """The tracker's spend and statsmodels forecast, as of its clock, if it is in that period."""
    if tracker.period_start != period_start:
        return None
    forecast, _ = tracker.forecast()
    return tracker.period_spent_usd, forecast.expected_total, tracker.now


def snapshot_figures(snap: BudgetSnapshot | None, period_start: datetime) -> Figures | None:
    """A stored snapshot's figures (its time is wall time, not event time: priced from the alert on)."""
    if snap is None or snap.period_start != period_start:
        return None
    return snap.spend_usd, snap.forecast_usd, None


class AnomalyOverruns:
    """``anomaly_overruns``' work, testable without a broker: ``trackers`` maps budget ids to codec bytes,
    ``snapshot(budget_id)`` reads the stored snapshot (the fallback), ``send(budget_id, value)``."""

    def __init__(self, book: BudgetBook, trackers: TypedTable[BudgetState],
                 snapshot: Callable[[str], Awaitable[BudgetSnapshot | None]], send: Send) -> None:
        self.book, self.trackers, self.snapshot, self.send = book, trackers, snapshot, send

    async def figures(self, spec: BudgetSpec, period_start: datetime) -> Figures:
        try:
            state = self.trackers.get(spec.id)
        except StateQuarantined:  # the budgets agent reports (dead-letters) it; here only the figures are missing
            return snapshot_figures(await self.snapshot(spec.id), period_start) or NOTHING_YET
        if state is None:
            return NOTHING_YET  # no spend routed to the budget yet
        return tracker_figures(state.tracker, period_start) or NOTHING_YET

    async def handle(self, budget_id: str, value: bytes) -> Overrun | None:
        alert = Alert.model_validate_json(value)
        spec = self.book.get(budget_id)
        if spec is None:
            log.warning("anomaly for budget %r, which the budgets file no longer has: ignored",
                        safe_terminal(budget_id))
            return None
        start, _ = spec.period_bounds(alert.window_end)
        spend, forecast, as_of = await self.figures(spec, start)
        ov = overrun_from_alert(alert, spec, spend_usd=spend, forecast_usd=forecast, as_of=as_of)
        if ov is not None:
            await self.send(spec.id, ov.model_dump_json().encode())
        return ov


async def _send_anomaly(budget_id: str, value: bytes) -> None:
    await retrying(lambda: anomalies_topic.send(key=budget_id.encode(), value=value))


async def _send_overrun(budget_id: str, value: bytes) -> None:
    await retrying(lambda: overruns_topic.send(key=budget_id.encode(), value=value))


@app.agent(alerts_topic)
async def route_anomalies(stream: faust.StreamT) -> None:
    """Spend anomalies with a $ impact -> guardrail.anomalies, once per budget they speak for."""
    router = AnomalyRouter(load_budgets(), settings.rollups, _send_anomaly)

    async def one(event: faust.EventT) -> None:
        await router.handle(event.value)

    async for event in stream.events():
        await guarded("route_anomalies", event, one)


@app.agent(anomalies_topic)
async def anomaly_overruns(stream: faust.StreamT) -> None:
    """Each routed anomaly, priced on its budget's live figures -> guardrail.overruns."""
    store = BudgetStore(settings.database_url)

    async def snapshot(budget_id: str) -> BudgetSnapshot | None:
        snaps = await until_stored(lambda _: store.snapshots(), None)
        return next((s for s in snaps if s.budget_id == budget_id), None)

    handler = AnomalyOverruns(load_budgets(), burn_trackers, snapshot, _send_overrun)

    async def one(event: faust.EventT) -> None:
        key = event.key.decode() if isinstance(event.key, bytes) else event.key
        ov = await handler.handle(key, event.value)
        if ov is not None:
            log.warning("ANOMALY OVERRUN %s budget=%s score=%.3f overrun=%.2f", ov.overrun_id,
                        safe_terminal(ov.budget_id), ov.anomaly_score or 0.0, ov.overrun_usd)

    try:
        async for event in stream.events():
            await guarded("anomaly_overruns", event, one)
    finally:
        store.close()

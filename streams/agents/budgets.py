"""budgets: burn rate (SRE multi-window) and thresholds per budget, on spend routed by normalize.

Each ``budget.spend`` message carries its origin (usage partition, offset); a budget adds a
message's spend only if that origin is newer than what it holds, so a redelivered or re-normalized
usage message is counted once. Punctuations move each partition's event clock
(:class:`~streams.state.clocks.EventClock`, from the producers' own clocks, not from other budgets'
spend), so an incident resolves when spend stops wherever the budget is placed. Alerts are sent
before the state is saved, and each firing event's overrun goes to ``guardrail.overruns``, where the
policy decides it once (:mod:`streams.agents.guardrails`); snapshots for ``burnguard budgets`` are
written every few seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import faust
import orjson

from guardrails.budget_book import BudgetBook, BudgetSpec
from guardrails.burn_event import BurnEvent
from guardrails.burn_tracker import BurnTracker
from guardrails.overrun import overrun_from_burn_event
from schemas.alert import Alert
from schemas.overrun import Overrun
from sinks.budget_store import BudgetSnapshot, BudgetStore
from sinks.retry import until_stored
from streams.agents.detect import send_alert
from streams.agents.guard import guarded, report_quarantine, retrying
from streams.agents.normalize import PUNCT, load_budgets
from streams.state.applied import already_applied
from streams.state.clocks import EventClock, Punctuation
from streams.state.tables import StateQuarantined, TypedTable
from streams.state.values import BudgetState
from streams.topology import app, budget_spend_topic, burn_trackers, clocks, overruns_topic, settings

log = logging.getLogger("burnguard")

#: Budgets' snapshots are written at most this often (seconds of wall time).
SNAPSHOT_EVERY = 2.0


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


def snapshot(spec: BudgetSpec, tracker: BurnTracker, at: datetime) -> BudgetSnapshot:
    """What ``burnguard budgets`` shows for one budget."""
    projected, exhausted = tracker.projection()
    rates = {str(w): round(r, 3) for w, r in tracker.burn_rates().items()}
    return BudgetSnapshot(budget_id=spec.id, scope={d: list(v) for d, v in spec.scope}, tier=spec.tier,
                          period=spec.period, period_start=tracker.period_start, cap_usd=spec.cap_usd,
                          spend_usd=tracker.period_spent_usd, burn_rates=rates, forecast_usd=projected,
                          exhausted_at=exhausted, firing=sorted(tracker.active), updated_at=at)


class Budgets:
    def __init__(self, book: BudgetBook, trackers: TypedTable[BudgetState], clocks: TypedTable[EventClock],
                 send: Callable[[Alert], Awaitable[Any]],
                 on_events: Callable[[BudgetSpec, BurnTracker, list[BurnEvent]], Awaitable[None]] | None = None
                 ) -> None:
        self.book, self.trackers, self.clocks, self.send, self.on_events = book, trackers, clocks, send, on_events
        self.dirty: set[str] = set()  # budgets changed since their last snapshot (worker-local)

    async def handle(self, key: str, value: bytes, partition: int) -> None:
        if key == PUNCT:
            await self.punctuate(partition, Punctuation.model_validate_json(value))
            return
        spec = self.book.get(key)
        if spec is None:
            log.warning("spend for budget %r, which the budgets file no longer has: ignored", key)
            return
        doc = orjson.loads(value)
        state = self.trackers.get(key) or BudgetState(partition, BurnTracker.from_spec(spec))
        src, offset = doc["o"]
        if already_applied(state.applied, src, offset):
            return  # redelivered: its spend is already in the tracker
        state.partition = partition
        state.tracker.configure(spec)
        events = [ev for minute, usd in doc["spend"]
                  for ev in state.tracker.observe(datetime.fromtimestamp(minute, tz=timezone.utc), usd)]
        await self._emit(spec, state.tracker, events)
        self.trackers.put(key, state)
        self.dirty.add(key)

    async def punctuate(self, partition: int, punct: Punctuation) -> None:
        clock_key = f"budget.spend/{partition}"
        clock = self.clocks.get(clock_key) or EventClock()
        before = clock.now
        now = clock.apply(punct)
        self.clocks.put(clock_key, clock)
        if now is None or now == before:
            return
        at = datetime.fromtimestamp(now, tz=timezone.utc)
        for budget_id in self.trackers.keys():
            try:
                state = self.trackers.get(budget_id)
            except StateQuarantined as q:
                await report_quarantine(q, "budgets")
                continue
            spec = self.book.get(budget_id)
            # each budget is advanced by its own partition's punctuation (co-partitioned changelog)
            if state is None or spec is None or state.partition != partition:
                continue
            events = state.tracker.advance(at)
            if events:
                await self._emit(spec, state.tracker, events)
                self.trackers.put(budget_id, state)
                self.dirty.add(budget_id)

    async def _emit(self, spec: BudgetSpec, tracker: BurnTracker, events: list[BurnEvent]) -> None:
        for ev in events:
            await self.send(burn_alert(ev))
        if events and self.on_events is not None:
            await self.on_events(spec, tracker, events)

    def snapshots(self, at: datetime) -> list[BudgetSnapshot]:
        """Snapshots of the budgets changed since the last call (and clears the list)."""
        out = []
        for budget_id in sorted(self.dirty):
            spec = self.book.get(budget_id)
            try:
                state = self.trackers.get(budget_id)
            except StateQuarantined:
                continue
            if spec is not None and state is not None:
                out.append(snapshot(spec, state.tracker, at))
        self.dirty.clear()
        return out


def overruns_of(spec: BudgetSpec, tracker: BurnTracker, events: list[BurnEvent]) -> list[Overrun]:
    """The overruns of a budget's firing events, with the statsmodels forecast of the period's end."""
    firing = [ev for ev in events if ev.status == "firing"]
    if not firing:
        return []
    forecast, exhausted = tracker.forecast()
    return [overrun_from_burn_event(ev, spec, forecast=forecast, forecast_exhausted_at=exhausted) for ev in firing]


async def send_overruns(spec: BudgetSpec, tracker: BurnTracker, events: list[BurnEvent]) -> None:
    """Every firing budget event meets the policy: its overrun goes to ``guardrail.overruns`` (keyed by budget)."""
    for ov in overruns_of(spec, tracker, events):
        await retrying(lambda o=ov: overruns_topic.send(key=spec.id.encode(), value=o.model_dump_json().encode()))


@app.agent(budget_spend_topic)
async def budgets(stream: faust.StreamT) -> None:
    """Burn rate and thresholds per budget; punctuations resolve incidents once spend stops."""
    handler = Budgets(load_budgets(), burn_trackers, clocks, send_alert, send_overruns)
    store = BudgetStore(settings.database_url)
    last = 0.0

    async def one(event: faust.EventT) -> None:
        nonlocal last
        key = event.key.decode() if isinstance(event.key, bytes) else event.key
        await handler.handle(key, event.value, event.message.partition)
        if handler.dirty and time.monotonic() - last >= SNAPSHOT_EVERY:
            last = time.monotonic()
            await until_stored(store.save_snapshots, handler.snapshots(datetime.now(timezone.utc)))

    try:
        async for event in stream.events():
            await guarded("budgets", event, one)
    finally:
        store.close()

"""detect: score each closed bucket per (key, metric); open and resolve incidents as alerts.

Alerts are sent before the monitors are saved: a crash between the two re-scores nothing (each
series remembers the last bucket it learnt from) but re-sends the same alerts, which the store
keeps once by fingerprint; the other order could lose an alert nobody was told about.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import faust

from schemas.alert import Alert
from schemas.bucket import load_batch
from streams.agents.guard import guarded, retrying
from streams.scoring import BucketScorer, SiblingsState
from streams.state.tables import TypedTable
from streams.state.values import ChildrenState, SeriesState
from streams.topology import alerts_topic, app, buckets_topic, monitors_raw, settings

SendAlert = Callable[[Alert], Awaitable[Any]]


async def send_alert(alert: Alert) -> None:
    await retrying(lambda: alerts_topic.send(key=alert.series_key.encode(), value=alert.model_dump_json().encode()))


#: What each kind of series in table monitors holds: ``key#metric`` a SeriesState, the roll-up root-cause
#: baselines ``key#children`` a ChildrenState, the roll-up cold-start prior ``key#siblings`` a SiblingsState.
KINDS: dict[str, type] = {"children": ChildrenState, "siblings": SiblingsState}


class Detect:
    def __init__(self, monitors: MutableMapping[str, bytes], scorer: BucketScorer, send: SendAlert) -> None:
        self.series = TypedTable(monitors, "monitors", SeriesState)
        self.kinds = {kind: TypedTable(monitors, "monitors", cls) for kind, cls in KINDS.items()}
        self.scorer, self.send = scorer, send

    def _table(self, series: str) -> TypedTable[Any]:
        return self.kinds.get(series.rsplit("#", 1)[-1], self.series)

    async def handle(self, value: bytes) -> None:
        batch = load_batch(value)
        if batch.forget:
            for series in [f"{batch.key}#{m}" for m in (*self.scorer.settings.metrics, *KINDS)]:
                self.series.delete(series)
            return
        touched: dict[str, Any] = {}  # each series' state is loaded and saved once per message

        def load(series: str) -> Any:
            if series not in touched:
                touched[series] = self._table(series).get(series)
            return touched[series]

        alerts = [a for b in batch.buckets for a in self.scorer.score(b, batch.seq, load, touched.__setitem__)]
        for alert in alerts:
            await self.send(alert)
        for series, state in touched.items():
            if state is not None:
                self._table(series).put(series, state)


@app.agent(buckets_topic)
async def detect(stream: faust.StreamT) -> None:
    """Score each closed bucket per (key, metric); open and resolve incidents as alerts."""
    handler = Detect(monitors_raw, BucketScorer(settings), send_alert)

    async def one(event: faust.EventT) -> None:
        await handler.handle(event.value)

    async for event in stream.events():
        await guarded("detect", event, one)

"""detect: score each closed bucket per (key, metric); open and resolve incidents as alerts.

A key's series (one per metric, and a roll-up's root-cause baselines and sibling prior) are one value of
table ``monitors``, a :class:`~streams.state.values.KeyMonitors` under the allocation key: read once and
written once per message (one changelog message, not one per series), and not written at all when the
message taught nothing (a redelivered batch, late corrections only); within it, only the series a bucket
scores are decoded and encoded again. A key still held in the layout before (``key#kind``, one value per
series) is read from it, each value through its own migrations, written as one value and its old values
deleted.

Alerts are sent before the monitors are saved: a crash between the two re-scores nothing (each
series remembers the last bucket it learnt from) but re-sends the same alerts, which the store
keeps once by fingerprint; the other order could lose an alert nobody was told about.

A *partial* (``early_firing``: a key's open bucket as it stands, :class:`~schemas.bucket.PartialBatch`) is scored
by :meth:`~streams.scoring.BucketScorer.score_partial`, learning nothing: an incident it opens is remembered in the
series' monitor (saved like any change, after its alert is sent), and the closed bucket, later on the same
partition, confirms or resolves that same incident.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import faust

from schemas.alert import Alert
from schemas.bucket import PartialBatch, load_message
from streams.agents.guard import guarded, retrying
from streams.scoring import BucketScorer
from streams.state.codec import StateDecodeError
from streams.state.tables import StateQuarantined, TypedTable
from streams.state.values import SERIES_KINDS, KeyMonitors, legacy_key
from streams.topology import alerts_topic, app, buckets_topic, monitors_raw, settings

SendAlert = Callable[[Alert], Awaitable[Any]]


async def send_alert(alert: Alert) -> None:
    await retrying(lambda: alerts_topic.send(key=alert.series_key.encode(), value=alert.model_dump_json().encode()))


class _Held:
    """One key's series while a message is handled: loaded once, saved once."""

    __slots__ = ("value", "legacy", "changed")

    def __init__(self, value: KeyMonitors, legacy: tuple[str, ...]) -> None:
        self.value, self.legacy, self.changed = value, legacy, bool(legacy)


class Detect:
    def __init__(self, monitors: MutableMapping[str, bytes], scorer: BucketScorer, send: SendAlert) -> None:
        self.keys = TypedTable(monitors, "monitors", KeyMonitors)
        #: the kinds of series a key may hold in the layout before (as its forget deleted them)
        self.legacy_kinds = (*scorer.settings.metrics, "children", "siblings")
        self.legacy = {kind: TypedTable(monitors, "monitors", SERIES_KINDS[kind]) for kind in self.legacy_kinds}
        self.scorer, self.send = scorer, send

    def _load(self, key: str) -> _Held:
        stored = self.keys.get(key)
        if stored is not None:
            return _Held(stored, ())
        legacy = {}
        for kind in self.legacy_kinds:  # (a new key, or one last saved one value per series)
            state = self.legacy[kind].get(legacy_key(key, kind))
            if state is not None:
                legacy[kind] = state
        return _Held(KeyMonitors.adopt(legacy), tuple(legacy))

    async def handle(self, value: bytes) -> None:
        batch = load_message(value)
        if not isinstance(batch, PartialBatch) and batch.forget:
            self.keys.delete(batch.key)
            for kind in self.legacy_kinds:
                self.keys.delete(legacy_key(batch.key, kind))
            return
        held: dict[str, _Held] = {}  # allocation key -> its series (a batch's buckets are all its key's)

        def at(series: str) -> tuple[_Held, str]:
            key, kind = series.rsplit("#", 1)
            h = held.get(key)
            if h is None:
                h = held[key] = self._load(key)
            return h, kind

        def load(series: str) -> Any:
            h, kind = at(series)
            try:
                return h.value.get(kind)
            except StateDecodeError as err:  # (before any alert is sent or anything saved)
                key = series.rsplit("#", 1)[0]
                raise StateQuarantined(self.keys.name, key, f"series {kind}: {err}",
                                       self.keys.raw.get(key, b"")) from err

        def save(series: str, state: Any) -> None:
            h, kind = at(series)
            h.value.set(kind, state)
            h.changed = True

        if isinstance(batch, PartialBatch):
            if batch.partial.key != batch.key:
                raise ValueError(f"a partial of key {batch.key!r} holds a bucket of {batch.partial.key!r}")
            alerts = self.scorer.score_partial(batch.partial, load, save)
        else:
            alerts = [a for b in batch.buckets for a in self.scorer.score(b, batch.seq, load, save)]
        for alert in alerts:
            await self.send(alert)
        for key, h in held.items():
            if h.changed:
                self.keys.put(key, h.value)
                for kind in h.legacy:  # taken in: the value per series goes
                    self.keys.delete(legacy_key(key, kind))


@app.agent(buckets_topic)
async def detect(stream: faust.StreamT) -> None:
    """Score each closed bucket per (key, metric); open and resolve incidents as alerts."""
    handler = Detect(monitors_raw, BucketScorer(settings), send_alert)

    async def one(event: faust.EventT) -> None:
        await handler.handle(event.value)

    async for event in stream.events():
        await guarded("detect", event, one)

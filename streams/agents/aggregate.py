"""aggregate: sum cost records into event-time buckets per key; emit closed buckets numbered per key.

A ``costs`` message (one key's records, or ``__keys__``: the records of many keys of this partition)
applies once per key (its origin is remembered in the key's state), moves the key's view of its source
clock, and closes what that clock allows. A key of a ``__keys__`` message whose state cannot be used (or
that this agent cannot process) is dead-lettered alone, as a one-key message (replayable), and the other
keys go on. A punctuation with ``scan`` set
visits every key of its partition: clocks that went idle let quiet keys close, and keys with nothing
open and no records for ``key_ttl_seconds`` are dropped (with a ``forget`` batch, so detect drops the
key's monitors too). The batch is sent before the state is
saved; a crash between the two re-emits the same batch under the same ``seq`` (the decisions depend
only on the key's state and the messages, which are read again in the same order). Each key applies a
``costs`` message once, by its offset (:meth:`KeyWindows.first_time`): a recovered state can be ahead of
the committed offset, and messages it already holds must not be applied to it a second time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson

from schemas.bucket import Bucket, dump_batch
from streams.agents.guard import dead_letter, guarded, is_transient, report_quarantine, retrying
from streams.agents.normalize import KEYS, PUNCT
from streams.settings import Settings
from streams.state.applied import already_applied
from streams.state.clocks import Punctuation
from streams.state.tables import StateQuarantined, TypedTable
from streams.state.windows import KeyWindows
from streams.topology import app, buckets_topic, costs_topic, open_buckets, settings

log = logging.getLogger("burnguard")

SendBatch = Callable[[str, bytes], Awaitable[Any]]
#: What to do with one key of a ``__keys__`` message that failed: (key, its one-key message, the error).
RejectKey = Callable[[str, bytes, Exception], Awaitable[None]]


class Aggregate:
    def __init__(self, windows: TypedTable[KeyWindows], send: SendBatch, s: Settings) -> None:
        self.windows, self.send, self.settings = windows, send, s
        # worker-local index: the partition of each key seen (a scan decodes only its own partition's keys;
        # a key recovered from the changelog and never seen yet is decoded once to learn it)
        self.partition_of: dict[str, int] = {}

    async def handle(self, key: str, value: bytes, partition: int, timestamp: float,
                     reject: RejectKey | None = None, offset: int | None = None) -> None:
        """Apply one ``costs`` message (at ``offset`` of its partition); ``reject`` takes the keys of a
        ``__keys__`` message that fail (without it, the error is raised)."""
        if key == PUNCT:
            await self.punctuate(partition, Punctuation.model_validate_json(value), offset)
            return
        doc = orjson.loads(value)
        origin, clk = doc["o"], doc["clk"]
        if key != KEYS:
            await self.apply(key, origin, clk, doc["records"], partition, timestamp, offset)
            return
        for k, records in doc["keys"].items():
            try:
                await self.apply(k, origin, clk, records, partition, timestamp, offset)
            except Exception as err:  # noqa: BLE001 - one key must not hold back the others
                if reject is None or is_transient(err):
                    raise  # retried whole: the keys applied already skip it by origin
                await reject(k, orjson.dumps({"o": origin, "clk": clk, "records": records}), err)

    async def apply(self, key: str, origin: list[Any], clk: list[Any], records: list[dict[str, Any]],
                    partition: int, timestamp: float, offset: int | None = None) -> None:
        kw = self.windows.get(key) or KeyWindows(key, self.settings.bucket_seconds, partition)
        if not kw.first_time(offset):
            return  # re-read after a crash: this key's state already holds it
        src, source_offset = origin
        if already_applied(kw.applied, src, source_offset):
            return  # normalize ran again after a crash and sent these records once more
        kw.partition, kw.touched = partition, timestamp
        self.partition_of[key] = partition
        for rec in records:
            kw.add(rec)
        clock, newest = clk
        kw.see_clock(clock, float(newest))
        await self._emit(kw, kw.close_due(self.settings.allowed_lateness_seconds))
        self.windows.put(key, kw)

    async def punctuate(self, partition: int, punct: Punctuation, offset: int | None = None) -> None:
        if not punct.scan:
            return
        lateness = self.settings.allowed_lateness_seconds
        for n, key in enumerate(self.windows.keys()):
            if n % 500 == 499:
                await asyncio.sleep(0)  # a long scan must not starve the consumer's heartbeats
            if self.partition_of.get(key, partition) != partition:
                continue
            try:
                kw = self.windows.get(key)
            except StateQuarantined as q:
                await report_quarantine(q, "aggregate")
                continue
            if kw is not None:
                self.partition_of[key] = kw.partition
            # each key is changed by its own partition's punctuation, so its changelog stays co-partitioned
            if kw is None or kw.partition != partition or not kw.first_time(offset):
                continue
            moved = kw.punctuate(punct.reading)
            closed = kw.close_due(lateness)
            if closed:
                await self._emit(kw, closed)
                self.windows.put(key, kw)
            elif kw.expired(punct.wall, self.settings.key_ttl_seconds):
                kw.emitted += 1
                await self.send(key, dump_batch(key, kw.emitted, [], forget=True))  # detect forgets it too
                self.windows.delete(key)
                self.partition_of.pop(key, None)
            elif moved:  # a clock went idle (or moved) with nothing to close yet: keep it for the next reading
                self.windows.put(key, kw)

    async def _emit(self, kw: KeyWindows, buckets: list[Bucket]) -> None:
        if buckets:
            await self.send(kw.key, dump_batch(kw.key, kw.emitted, buckets))


async def _send_batch(key: str, value: bytes) -> None:
    await retrying(lambda: buckets_topic.send(key=key.encode(), value=value))


@app.agent(costs_topic)
async def aggregate(stream: faust.StreamT) -> None:
    """Sum cost records into event-time buckets per allocation key; emit closed buckets."""
    handler = Aggregate(open_buckets, _send_batch, settings)

    async def one(event: faust.EventT) -> None:
        msg = event.message

        async def reject(key: str, value: bytes, err: Exception) -> None:
            """As :func:`guarded` does for a whole message, for one key: dead-lettered as a one-key message."""
            if isinstance(err, StateQuarantined):
                await report_quarantine(err, "aggregate")
                reason = f"internal: aggregate: {err}; kept for replay"
            else:
                log.error("aggregate could not process key %r of %s[%s]@%s: %r", key, msg.topic, msg.partition,
                          msg.offset, err)
                reason = f"internal: aggregate could not process this message: {err!r}"
            await dead_letter(value, reason, msg.topic, msg.partition, msg.offset, key=key)

        key = event.key.decode() if isinstance(event.key, bytes) else event.key
        await handler.handle(key, event.value, msg.partition, msg.timestamp, reject, msg.offset)

    async for event in stream.events():
        await guarded("aggregate", event, one)

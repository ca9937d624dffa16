"""aggregate: sum cost records into event-time buckets per key; emit closed buckets numbered per key.

A ``costs`` message (one key's records, or ``__keys__``: the records of many keys of this partition)
applies once per key (its origin is remembered in the key's state), moves the key's view of its source
clock, and closes what that clock allows. A key of a ``__keys__`` message whose state cannot be used (or
that this agent cannot process) is dead-lettered alone, as a one-key message (replayable), and the other
keys go on. Every punctuation visits the keys it can move (:class:`streams.state.close_index.CloseIndex`:
their slowest clock read past their oldest minute's end, or idle), so a quiet key closes within a reading
interval of its minute becoming closable. A punctuation with ``scan`` set visits every key of its
partition: clocks that went idle let quiet keys close, and keys with nothing open and no records for
``key_ttl_seconds`` are dropped (with a ``forget`` batch, so detect drops the key's monitors too). The batch is sent before the state is
saved; a crash between the two re-emits the same batch under the same ``seq`` (the decisions depend
only on the key's state and the messages, which are read again in the same order). Each key applies a
``costs`` message once, by its offset (:meth:`KeyWindows.first_time`): a recovered state can be ahead of
the committed offset, and messages it already holds must not be applied to it a second time.

States are kept decoded between messages (:class:`Aggregate` caches each key's ``KeyWindows`` with the
bytes it stands for) and saved in batches: the agent takes up to ``SAVE_EVERY_MESSAGES`` messages (or
what arrived within ``SAVE_WITHIN_SECONDS``), applies them one by one (each key's state is encoded once per
message, so a failed message never leaves a half-applied state), then writes each changed key once and
only then acks the batch. Faust flushes the producer before it commits offsets, so a committed offset
never runs ahead of the saved state; a crash inside a batch re-reads it and re-emits the same batches.
With a disk table store (``rocksdb://``) states are saved with each message instead: Faust's RocksDB store
files a value under the partition of the message being processed, which a batch's save has not got.

With ``early_firing``, a key whose open bucket's spend is already well above its recent closed buckets' also sends
that bucket as it stands, a *partial* (:class:`schemas.bucket.PartialBatch`), after the message's closed batch:
:class:`streams.state.partials.PartialGate` decides when (a few times per spiking key-minute, never for a key
spending as usual). A partial is not a batch: it takes no sequence number (``emitted`` is untouched) and carries
no spend anyone counts; detect scores it without learning.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import faust
import orjson

from schemas.bucket import Bucket, dump_batch, dump_partial
from streams.agents.guard import dead_letter, guarded, is_transient, report_quarantine, retrying
from streams.agents.normalize import KEYS, PUNCT
from streams.settings import COSTS_TOPIC, Settings
from streams.state.applied import already_applied
from streams.state.clocks import Punctuation
from streams.state.close_index import CloseIndex
from streams.state.partials import PartialGate
from streams.state.tables import StateQuarantined, TypedTable
from streams.state.windows import KeyWindows
from streams.topology import app, buckets_topic, costs_topic, open_buckets, settings
from streams.state.codec import encode

log = logging.getLogger("burnguard")

SendBatch = Callable[[str, bytes], Awaitable[Any]]
#: What to do with one key of a ``__keys__`` message that failed: (key, its one-key message, the error).
RejectKey = Callable[[str, bytes, Exception], Awaitable[None]]
#: The agent saves changed states (one write per key) and acks after this many costs messages ...
SAVE_EVERY_MESSAGES = 500
#: ... or what arrived within this many seconds (also bounds how long a rebalance waits for the acks).
SAVE_WITHIN_SECONDS = 1.0
#: Decoded states kept between messages (the oldest decoded is dropped first; it is decoded again if needed).
MAX_LIVE = 200_000
#: Messages Faust's producer buffer may hold before the stream waits for it to drain.
PRODUCER_BUFFER_MESSAGES = 50_000


class Aggregate:
    """The per-message work of the aggregate agent. With ``autosave`` (tests, offline use) each message's
    states are written to the table before :meth:`handle` returns; the agent passes ``autosave=False``
    and calls :meth:`save` once per batch of messages."""

    def __init__(self, windows: TypedTable[KeyWindows], send: SendBatch, s: Settings, autosave: bool = True) -> None:
        self.windows, self.send, self.settings, self.autosave = windows, send, s, autosave
        # worker-local index: the partition of each key seen (a scan decodes only its own partition's keys;
        # a key recovered from the changelog and never seen yet is decoded once to learn it)
        self.partition_of: dict[str, int] = {}
        # decoded states, each with the bytes it was read from or encoded to (the table's, or unsaved): used
        # while those bytes are still the key's (a rebalance's recovery replaces them: decoded again)
        self.live: dict[str, tuple[bytes | None, KeyWindows]] = {}
        # per partition, the encoded states (None: deleted) applied but not yet written to the table
        self.unsaved: dict[int, dict[str, bytes | None]] = {}
        # worker-local: keys with open buckets by the clock holding them back (what a punctuation can close)
        self.index = CloseIndex()
        # worker-local: which open buckets to send to detect before they close (None: early firing off)
        self.gate = PartialGate(s.alert_min_ratio) if s.early_firing else None

    def _current(self, key: str, partition: int) -> bytes | None:
        pending = self.unsaved.get(partition)
        if pending is not None and key in pending:
            return pending[key]
        return self.windows.raw.get(key)

    def _get(self, key: str, partition: int) -> KeyWindows | None:
        data = self._current(key, partition)
        hit = self.live.get(key)
        if hit is not None and hit[0] is data:
            return hit[1]
        kw = self.windows.decode(key, data)  # raises StateQuarantined for bytes it cannot use
        if kw is not None:
            self._keep(key, data, kw)
        return kw

    def _keep(self, key: str, data: bytes | None, kw: KeyWindows) -> None:
        live = self.live
        if key not in live and len(live) >= MAX_LIVE:
            del live[next(iter(live))]
        live[key] = (data, kw)

    def _stage(self, key: str, kw: KeyWindows, partition: int) -> None:
        data = encode(kw)
        self.unsaved.setdefault(partition, {})[key] = data
        self._keep(key, data, kw)
        self.index.file(partition, key, kw.holder(self.settings.allowed_lateness_seconds))

    def _stage_delete(self, key: str, partition: int) -> None:
        self.unsaved.setdefault(partition, {})[key] = None
        self.live.pop(key, None)
        self.index.file(partition, key, None)

    def _keys(self, partition: int) -> list[str]:
        """Every key the table holds (any partition) and the new keys of ``partition`` not yet written."""
        unsaved = self.unsaved.get(partition, {})
        return list(self.windows.keys()) + [k for k, v in unsaved.items() if v is not None and k not in self.windows.raw]

    async def _own(self, key: str, partition: int, report: bool = True) -> KeyWindows | None:
        """``key``'s state if it lives on ``partition`` (learning the partition of each key decoded); a state
        that cannot be used is ``None`` (reported unless ``report`` is false)."""
        if self.partition_of.get(key, partition) != partition:
            return None
        try:
            kw = self._get(key, partition)
        except StateQuarantined as q:
            if report:
                await report_quarantine(q, "aggregate")
            return None
        if kw is not None:
            self.partition_of[key] = kw.partition
        return kw if kw is not None and kw.partition == partition else None

    async def _cover(self, partition: int) -> None:
        """File every key of ``partition`` with open buckets, before the first message of it is applied here
        (a new worker, or after a rebalance): a punctuation's selection must see all of them."""
        self.index.start(partition)
        lateness = self.settings.allowed_lateness_seconds
        async for key in _yielding(self._keys(partition)):
            kw = await self._own(key, partition, report=False)  # reported by the message or scan that meets it
            if kw is not None:
                self.index.file(partition, key, kw.holder(lateness))

    def forget_partitions(self, partitions: list[int]) -> None:
        """Partitions revoked by a rebalance: their keys are filed afresh if they come back."""
        for partition in partitions:
            self.index.forget(partition)

    def save(self) -> int:
        """Write every state changed since the last save (once per key); returns how many."""
        n = 0
        for partition, items in self.unsaved.items():
            self.windows.save(partition, items)
            n += len(items)
        self.unsaved = {}
        return n

    async def handle(self, key: str, value: bytes, partition: int, timestamp: float,
                     reject: RejectKey | None = None, offset: int | None = None) -> None:
        """Apply one ``costs`` message (at ``offset`` of its partition); ``reject`` takes the keys of a
        ``__keys__`` message that fail (without it, the error is raised)."""
        try:
            await self._handle(key, value, partition, timestamp, reject, offset)
        finally:
            if self.autosave:
                self.save()

    async def _handle(self, key: str, value: bytes, partition: int, timestamp: float,
                      reject: RejectKey | None = None, offset: int | None = None) -> None:
        if not self.index.covers(partition):
            await self._cover(partition)
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
        kw = self._get(key, partition) or KeyWindows(key, self.settings.bucket_seconds, partition)
        try:
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
            if self.gate is not None:
                for start in self.gate.due(key, kw.sums):
                    await self.send(key, dump_partial(key, kw.open_bucket(start)))
        except BaseException:
            self.live.pop(key, None)  # half applied: the next message starts again from the saved bytes
            raise
        self._stage(key, kw, partition)

    async def punctuate(self, partition: int, punct: Punctuation, offset: int | None = None) -> None:
        """A scan visits every key of the partition (idle clocks, expiry); any other punctuation visits the keys
        the index says it can move (their holding clock read past their due time, or idle)."""
        keys = self._keys(partition) if punct.scan else self.index.due(partition, punct.reading)
        async for key in _yielding(keys):
            await self._visit(key, partition, punct, offset, expire=punct.scan)

    async def _visit(self, key: str, partition: int, punct: Punctuation, offset: int | None, expire: bool) -> None:
        kw = await self._own(key, partition)
        # each key is changed by its own partition's punctuation, so its changelog stays co-partitioned
        if kw is None:
            return
        lateness = self.settings.allowed_lateness_seconds
        try:
            if not kw.first_time(offset):
                self.index.file(partition, key, kw.holder(lateness))
                return
            moved = kw.punctuate(punct.reading)
            closed = kw.close_due(lateness)
            if closed:
                await self._emit(kw, closed)
            elif expire and kw.expired(punct.wall, self.settings.key_ttl_seconds):
                kw.emitted += 1
                await self.send(key, dump_batch(key, kw.emitted, [], forget=True))  # detect forgets it too
                self._stage_delete(key, partition)
                if self.gate is not None:
                    self.gate.forget(key)
                self.partition_of.pop(key, None)
                return
        except BaseException:
            self.live.pop(key, None)
            raise
        if closed or moved:  # a clock that went idle (or moved) must be kept for the next reading
            self._stage(key, kw, partition)
        else:  # only its input offset moved (in the decoded copy): a replay of this punctuation changes nothing
            self.index.file(partition, key, kw.holder(lateness))

    async def _emit(self, kw: KeyWindows, buckets: list[Bucket]) -> None:
        if buckets:
            await self.send(kw.key, dump_batch(kw.key, kw.emitted, buckets))
            if self.gate is not None:
                self.gate.closed(kw.key, ((int(b.start.timestamp()), b.spend_usd, b.late) for b in buckets))


async def _yielding(keys: list[str]) -> AsyncIterator[str]:
    """``keys`` one by one, giving the event loop a turn every 500: a long walk over a partition's keys must not
    starve the consumer's heartbeats."""
    for n, key in enumerate(keys):
        if n % 500 == 499:
            await asyncio.sleep(0)
        yield key


async def _send_batch(key: str, value: bytes) -> None:
    await retrying(lambda: buckets_topic.send(key=key.encode(), value=value))


@app.agent(costs_topic)
async def aggregate(stream: faust.StreamT) -> None:
    """Sum cost records into event-time buckets per allocation key; emit closed buckets."""
    handler = Aggregate(open_buckets, _send_batch, settings)

    def revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        handler.forget_partitions([tp.partition for tp in revoked if tp.topic == COSTS_TOPIC])

    app.on_partitions_revoked.connect(revoked)
    try:
        await _consume(stream, handler)
    finally:
        app.on_partitions_revoked.disconnect(revoked)


async def _consume(stream: faust.StreamT, handler: Aggregate) -> None:
    """The agent's loop: one message at a time (disk store) or in batches saved once per key (memory)."""

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

    if settings.table_store != "memory://":
        # A disk store writes a value into the partition of the message being processed (Faust's RocksDB
        # store reads it from the current event), so states are saved with each message, inside it.
        async for event in stream.events():
            await guarded("aggregate", event, one)
        return
    handler.autosave = False
    # a batch's saves are queued at once: let Faust's send buffer hold them instead of stalling the stream
    # ("producer buffer full") every 100 writes
    app.producer.buffer.max_messages = max(app.producer.buffer.max_messages, PRODUCER_BUFFER_MESSAGES)
    async for events in stream.take_events(SAVE_EVERY_MESSAGES, within=SAVE_WITHIN_SECONDS):
        for event in events:
            await guarded("aggregate", event, one)
        handler.save()  # then take_events acks the batch

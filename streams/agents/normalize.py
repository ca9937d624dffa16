"""normalize: validate, price and allocate raw usage; route it on; punctuate what this worker owns.

Each usage message becomes, all carrying its origin ``o = [usage topic/partition, offset]``:

- one ``costs`` message per ``costs`` partition its keys (allocation and roll-up keys) hash to, keyed
  ``__keys__`` and sent to that partition: ``{"o", "clk", "keys": {key: [partial sums]}}`` (one per key and bucket: ``PartialSums``) with the
  message's source clock ``clk = [clock, newest event time]`` (split past ``MAX_RECORDS_PER_MESSAGE``; a key
  is in one of them). The partition is the one Kafka's default partitioner gives the key, so a key's state
  stays where per-key messages put it;
- one ``budget.spend`` message per budget its dollars count towards (spend per minute);
- ``gpu.samples`` per GPU allocation, ``model.activity`` request counts per served model;
- a dead letter per rejected event (bounded per message by the Normalizer).

The ``punctuate`` timer runs on every worker: for the usage partitions it owns it sends their clocks
(newest event time per producer, idle or not) to every ``costs`` and ``budget.spend`` partition.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, cast

import faust
import orjson
from aiokafka.partitioner import murmur2

from guardrails.budget_book import BudgetBook
from schemas.allocation import AllocationRules
from schemas.cardinality import CardinalityLimiter
from schemas.cost import CostRecord
from schemas.ingest import Normalizer
from schemas.pricing import PriceCatalog
from streams.agents.guard import dead_letter, guarded, retrying
from streams.agents.normalize_work import MessageWork, partials
from streams.metrics import metrics
from streams.settings import COSTS_TOPIC, USAGE_TOPICS, Settings
from streams.state.clocks import SourceProgress, reading_interval
from streams.transport import WorkerConsumer
from streams.topology import (app, budget_spend_topic, costs_topic, gpu_samples_topic, model_activity_topic,
                              progress, settings, usage_topic)

log = logging.getLogger("burnguard")

SOURCE_BY_TOPIC = {topic: source for source, topic in USAGE_TOPICS.items()}
#: Key of punctuation messages on ``costs`` and ``budget.spend`` (no allocation key or budget id looks like it).
PUNCT = "__punct__"
#: Key of ``costs`` messages that carry many allocation keys of one partition.
KEYS = "__keys__"
#: Records per ``costs`` message: an envelope with more (for one partition) is split, whole keys per message.
MAX_RECORDS_PER_MESSAGE = 4000

Send = Callable[[Any, bytes, bytes, "int | None"], Awaitable[Any]]  # (topic, key, value, partition)


@lru_cache(maxsize=1 << 17)
def key_partition(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2: aiokafka, kafka-python, the Java client) gives ``key``.

    >>> from aiokafka.partitioner import DefaultPartitioner
    >>> k = "team=a|feature=b|customer=c|model=m|environment=production"
    >>> key_partition(k, 4) == DefaultPartitioner()(k.encode(), [0, 1, 2, 3], [0, 1, 2, 3])
    True
    """
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def load_normalizer(s: Settings = settings) -> Normalizer:
    """Price catalog and allocation rules from settings; a bad file fails here with file, line and field."""
    return Normalizer(PriceCatalog.load(s.price_catalog), AllocationRules.load(s.allocation_rules))


def load_budgets(s: Settings = settings) -> BudgetBook:
    """The budget book from settings; a bad file fails at start with file, line and field."""
    return BudgetBook.load(s.budgets)


class Normalize:
    """The per-message work of the normalize agent, with its collaborators passed in."""

    def __init__(self, normalizer: Normalizer, book: BudgetBook, s: Settings, progress: SourceProgress,
                 send: Send, limiter: CardinalityLimiter, partitions: Callable[[], int],
                 clock: Callable[[], float] = time.time) -> None:
        self.normalizer, self.book, self.settings = normalizer, book, s
        self.progress, self.send, self.limiter, self.clock = progress, send, limiter, clock
        self.partitions = partitions  # of the costs topic
        self.levels = tuple(tuple(level) for level in s.rollups)
        # parse -> limits -> partial sums, budget spend, requests per model: fast for native envelopes, else
        # the reference path (normalize_work; tests/unit/test_normalize_fast.py holds them equal)
        self.work = MessageWork(normalizer, book, limiter, s.bucket_seconds, self.levels)

    async def handle(self, event: Any) -> None:
        msg = event.message
        raw: bytes = event.value or b""
        source = SOURCE_BY_TOPIC.get(msg.topic)
        if source is None:
            await dead_letter(raw, f"no source is read from topic {msg.topic!r}", msg.topic, msg.partition, msg.offset)
            return
        metrics.usage_message(source, self.clock() - msg.timestamp)  # one per message (an envelope: many events)
        work = self.work.run(source, raw)
        src = f"{msg.topic}/{msg.partition}"
        producer = msg.key.decode("utf-8", "replace") if isinstance(msg.key, bytes) else (msg.key or "")
        clock = f"{src}:{producer}"
        newest = work.newest
        wall = self.clock()
        clock_at = self.progress.clock_after(src, clock, newest, wall)
        origin = [src, msg.offset]
        try:
            await self.send_costs(work.by_key, {"o": origin, "clk": [clock, clock_at]})
            for budget_id, spend in work.spend.items():
                await self.send(budget_spend_topic, budget_id.encode(), orjson.dumps({"o": origin, "spend": spend}),
                                None)
            if source == "gpu":
                for resource, samples in work.gpu.items():
                    await self.send(gpu_samples_topic, resource.encode(),
                                    orjson.dumps({"o": origin, "samples": samples}), None)
            elif source == "llm":
                for model, counts in work.requests.items():
                    await self.send(model_activity_topic, model.encode(),
                                    orjson.dumps({"o": origin, "requests": counts}), None)
            for rej in work.rejects:
                await dead_letter(rej.raw or raw, rej.reason, msg.topic, msg.partition, msg.offset, rej.index, msg.key)
        finally:
            # only now may punctuations speak for this message: sent before its costs messages, a punctuation
            # carrying its clock would close, on some costs partition, minutes those messages still hold
            self.progress.processed(src, msg.offset, clock, newest, wall)


    def partials(self, records: list[CostRecord]) -> dict[str, list[dict[str, Any]]]:
        """The message's records per key (allocation and roll-up keys), one partial sum per key and bucket."""
        return partials(records, self.settings.bucket_seconds, self.levels)

    async def send_costs(self, by_key: dict[str, list[dict[str, Any]]], head: dict[str, Any]) -> None:
        """One ``costs`` message per partition the keys hash to (split every ``MAX_RECORDS_PER_MESSAGE``)."""
        n = self.partitions()
        parts: dict[int, list[dict[str, list[dict[str, Any]]]]] = defaultdict(lambda: [{}])
        sizes: dict[int, int] = defaultdict(int)
        for key, recs in by_key.items():
            p = key_partition(key, n)
            if sizes[p] and sizes[p] + len(recs) > MAX_RECORDS_PER_MESSAGE:
                parts[p].append({})
                sizes[p] = 0
            parts[p][-1][key] = recs
            sizes[p] += len(recs)
        for p, chunks in parts.items():
            for keys in chunks:
                await self.send(costs_topic, KEYS.encode(), orjson.dumps({**head, "keys": keys}), p)


async def _send(topic: Any, key: bytes, value: bytes, partition: int | None = None) -> None:
    await retrying(lambda: topic.send(key=key, value=value, partition=partition))


def _costs_partitions() -> int:
    """Partitions of the costs topic as the consumer sees them (the settings' count until it knows)."""
    n = app.consumer.topic_partitions(COSTS_TOPIC) if app.consumer is not None else None
    return n or settings.partitions


@app.agent(usage_topic)
async def normalize(stream: faust.StreamT) -> None:
    """Validate, price and allocate raw usage; bad input goes to the dead-letter topic."""
    handler = Normalize(load_normalizer(), load_budgets(), settings, progress, _send,
                        CardinalityLimiter(settings.cardinality_limits), _costs_partitions)
    metrics.watch_normalizer(handler.normalizer)  # events in by source and format, from its stats at scrape time
    async for event in stream.events():
        await guarded("normalize", event, handler.handle)


async def _resume_unread(owned: dict[str, Any]) -> None:
    """Tell ``progress`` where the reading of each owned partition it has processed nothing of starts: one
    handed over already drained (its previous owner processed and committed it all) has nothing to process
    here, and would otherwise never count as caught up, so its producers' keys could never close again."""
    unread = [owned[source] for source in progress.unread() if source in owned]
    if not unread:
        return
    try:
        # its committed offset, else (never committed) its first offset
        starts = await cast(WorkerConsumer, app.consumer).start_offsets(*unread)
    except Exception as err:  # noqa: BLE001 - retried at the next reading; until then they count as not caught up
        log.warning("committed offsets unavailable (%s): will ask again", type(err).__name__)
        return
    for tp, offset in starts.items():
        progress.resumed(f"{tp.topic}/{tp.partition}", offset)


@app.timer(interval=reading_interval(settings.idle_flush_seconds))
async def punctuate() -> None:
    """Send the clocks of the usage partitions this worker owns to every costs and budget.spend partition."""
    if app.consumer is None:
        return
    owned = [tp for tp in app.consumer.assignment() if tp.topic in SOURCE_BY_TOPIC]
    names = {f"{tp.topic}/{tp.partition}": tp for tp in owned}
    now = time.time()
    for source in progress.sources:
        if source not in names:
            progress.revoked(source)
    for source in names:
        progress.assigned(source, now)
    if not names:
        return
    await _resume_unread(names)
    asked = time.time()
    try:
        ends = await app.consumer.highwaters(*owned)
    except Exception as err:  # noqa: BLE001 - the broker is unreachable: nothing can be said to be idle
        log.warning("punctuation skipped: end offsets unavailable (%s)", type(err).__name__)
        return
    # the reading's time is when the end offsets came back (a paused broker can hold the request for long)
    punct = progress.punctuation({f"{tp.topic}/{tp.partition}": int(end) for tp, end in ends.items()}, time.time(),
                                 asked)
    if progress.late_answer is not None:
        log.warning("end offsets took %.1f s to come back: no producer counts as idle across the wait",
                    progress.late_answer)
    if progress.went_idle:
        log.info("source clocks idle (nothing waiting, quiet for %.0f s): %s", settings.idle_flush_seconds,
                 ", ".join(sorted(progress.went_idle)))
    value = punct.model_dump_json().encode()
    for partition in range(settings.partitions):
        await retrying(lambda p=partition: costs_topic.send(key=PUNCT.encode(), value=value, partition=p))
        await retrying(lambda p=partition: budget_spend_topic.send(key=PUNCT.encode(), value=value, partition=p))

"""The Faust app: topics, tables and agents (declared as in Faust's own examples).

Data flow::

    usage.llm|gpu|billing -> normalize -> costs (keyed by allocation key)
    costs -> aggregate (event-time buckets, table ``open_buckets``) -> buckets
    usage.gpu -> normalize -> gpu.samples -> zombies (table ``gpu_trackers``) -> alerts
    usage.llm request counts (normalize) + serving GPUs' status (zombies) -> model.activity (keyed by
        served model) -> pinned_models (table ``model_activity``) -> alerts
        (zombies and pinned_models live in :mod:`streams.gpu_agents`, imported at the end)
    buckets -> detect (per-series monitors, table ``monitors``) -> alerts
    alerts -> store_alerts (database, idempotent by fingerprint)
    usage.deadletter <- normalize (bad input, with the reason and the original bytes)

Run with ``burnguard worker`` (which starts the embedded broker when ``BURNGUARD_BROKER``
is unset) or ``faust -A streams.app worker``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from datetime import datetime, timezone
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson

from guardrails.budget_book import BudgetBook
from guardrails.burn_tracker import BurnTracker
from schemas.alert import Alert
from schemas.bucket import Bucket, dump_buckets, load_buckets
from schemas.deadletter import DeadLetter
from schemas.allocation import AllocationRules
from schemas.ingest import Normalizer
from schemas.pricing import PriceCatalog
from sinks.retry import until_stored
from sinks.store import AlertStore
from streams.settings import (ALERTS_TOPIC, BUCKETS_TOPIC, BUDGET_SPEND_TOPIC, COSTS_TOPIC, DEADLETTER_TOPIC, GPU_SAMPLES_TOPIC,
                              MODEL_ACTIVITY_TOPIC, USAGE_TOPICS, Settings)
from streams import state_codec
from streams.scoring import BucketScorer
from streams.budgets import burn_alert, spend_by_budget
from streams.gpu import gpu_samples_by_resource, requests_by_model
from streams.rollups import keyed_records
from streams.windows import OpenBuckets, window_record

log = logging.getLogger("burnguard")

settings = Settings()
SOURCE_BY_TOPIC = {topic: source for source, topic in USAGE_TOPICS.items()}

app = faust.App(
    settings.app_id,
    broker=settings.broker or "kafka://127.0.0.1:9092",
    store="memory://",
    topic_partitions=settings.partitions,
    web_port=settings.web_port,
    datadir="burnguard-data",
    broker_session_timeout=10,
    value_serializer="raw",
)

usage_topic = app.topic(*USAGE_TOPICS.values(), value_serializer="raw")
deadletter_topic = app.topic(DEADLETTER_TOPIC, value_serializer="raw")
costs_topic = app.topic(COSTS_TOPIC, key_type=str, key_serializer="raw", value_serializer="raw")
buckets_topic = app.topic(BUCKETS_TOPIC, key_type=str, key_serializer="raw", value_serializer="raw")
budget_spend_topic = app.topic(BUDGET_SPEND_TOPIC, key_type=str, key_serializer="raw", value_serializer="raw")
gpu_samples_topic = app.topic(GPU_SAMPLES_TOPIC, key_type=str, key_serializer="raw", value_serializer="raw")
model_activity_topic = app.topic(MODEL_ACTIVITY_TOPIC, key_type=str, key_serializer="raw", value_serializer="raw")
alerts_topic = app.topic(ALERTS_TOPIC, key_type=str, key_serializer="raw", value_serializer="raw")

# Table values are state_codec bytes (OpenBuckets, SeriesMonitor, watermark tuples): a
# restricted unpickler, so a forged changelog record cannot run code.
open_buckets = app.Table("open_buckets", value_type=bytes, partitions=settings.partitions)
# Per costs partition: (wall time of its last record, newest event time seen) -> the watermark.
watermarks = app.Table("watermarks", value_type=bytes, partitions=settings.partitions)
monitors = app.Table("monitors", value_type=bytes, partitions=settings.partitions)
gpu_trackers = app.Table("gpu_trackers", value_type=bytes, partitions=settings.partitions)
# Per served model: the end of its last gateway request and its serving GPUs' idle status (the pinned-idle join).
model_activity = app.Table("model_activity", value_type=bytes, partitions=settings.partitions)
burn_trackers = app.Table("burn_trackers", value_type=bytes, partitions=settings.partitions)


def _get(table: faust.Table, key: str, default: Any = None) -> Any:
    """Decode one key's state; state that cannot be decoded is logged and started afresh
    (that series re-enters warm-up) rather than crashing the agent for every key."""
    data = table.get(key)
    if data is None:
        return default
    try:
        return state_codec.loads(data)
    except Exception as err:  # noqa: BLE001 - any decode failure of one key's state
        log.error("state of %r in table %s cannot be decoded (%s); starting it afresh", key, table.name, err)
        return default


def _put(table: faust.Table, key: str, value: Any) -> None:
    table[key] = state_codec.dumps(value)


def _key(event: faust.EventT) -> str:
    return event.key.decode() if isinstance(event.key, bytes) else event.key


async def _guarded(agent: str, event: faust.EventT, handle: Callable[[faust.EventT], Awaitable[None]]) -> None:
    """Run one message's handler; a message an internal agent cannot process is quarantined to
    the dead-letter topic with the agent and the error, instead of crash-looping the agent."""
    try:
        await handle(event)
    except Exception as err:  # noqa: BLE001 - one bad message must not stop the stream
        log.exception("%s could not process %s[%s]@%s", agent, event.message.topic, event.message.partition,
                      event.message.offset)
        await _dead_letter(event.value or b"", f"internal: {agent} could not process this message: {err!r}",
                           event.message, None)


async def _send_alert(alert: Alert) -> None:
    await alerts_topic.send(key=alert.series_key.encode(), value=alert.model_dump_json().encode())


def load_normalizer() -> Normalizer:
    """Price catalog and allocation rules from settings; a bad file fails here with file, line and field."""
    return Normalizer(PriceCatalog.load(settings.price_catalog), AllocationRules.load(settings.allocation_rules))


@app.agent(usage_topic)
async def normalize(stream: faust.StreamT) -> None:
    """Validate, price and allocate raw usage; bad input goes to the dead-letter topic."""
    normalizer = load_normalizer()

    async def normalize_one(event: faust.EventT) -> None:
        msg = event.message
        source = SOURCE_BY_TOPIC.get(msg.topic)
        raw: bytes = event.value or b""
        if source is None:
            await _dead_letter(raw, f"no source is read from topic {msg.topic!r}", msg, None)
            return
        records, rejects = normalizer.parse(source, raw)
        by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for key, rec, child in keyed_records(records, settings.rollups):
            by_key[key].append(window_record(rec, child))
        src = {"src": f"{msg.topic}/{msg.partition}", "off": msg.offset}  # lets consumers drop redeliveries
        for key, recs in by_key.items():
            await costs_topic.send(key=key.encode(), value=orjson.dumps({**src, "records": recs}))
        if source == "gpu":
            for resource, samples in gpu_samples_by_resource(records).items():
                await gpu_samples_topic.send(key=resource.encode(), value=orjson.dumps({**src, "samples": samples}))
        elif source == "llm":
            for model, counts in requests_by_model(records).items():
                await model_activity_topic.send(key=model.encode(), value=orjson.dumps({**src, "requests": counts}))
        for rej in rejects:
            await _dead_letter(rej.raw or raw, rej.reason, msg, rej.index)

    async for event in stream.events():
        await _guarded("normalize", event, normalize_one)


#: Originals above this are cut in the dead letter (base64 in JSON must stay under Kafka's 1 MB).
MAX_DEAD_LETTER_BYTES = 512 * 1024


async def _dead_letter(raw: bytes, reason: str, msg: Any, index: int | None) -> None:
    if len(raw) > MAX_DEAD_LETTER_BYTES:
        reason += f" [original {len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()}, cut to {MAX_DEAD_LETTER_BYTES}]"
        raw = raw[:MAX_DEAD_LETTER_BYTES]
    dl = DeadLetter.from_bytes(raw, reason=reason, topic=msg.topic, partition=msg.partition,
                               offset=msg.offset, index=index, key=msg.key)
    log.warning("dead letter from %s[%s]@%s: %s", msg.topic, msg.partition, msg.offset, reason)
    await deadletter_topic.send(value=dl.model_dump_json().encode())


@app.agent(costs_topic)
async def aggregate(stream: faust.StreamT) -> None:
    """Sum cost records into event-time buckets per allocation key; emit closed buckets."""
    async for event in stream.events():
        await _guarded("aggregate", event, _aggregate_one)


async def _aggregate_one(event: faust.EventT) -> None:
    key, partition = _key(event), event.message.partition
    if key == _TICK:
        await _flush_idle(partition)
        return
    ob: OpenBuckets = _get(open_buckets, key) or OpenBuckets(key, settings.bucket_seconds, partition)
    if ob.partition == partition and event.message.offset <= ob.last_offset:
        return  # redelivered after a crash: its records are already in the table's state
    ob.partition, ob.last_offset = partition, event.message.offset
    doc = orjson.loads(event.value)
    if ob.seen(doc["src"], doc["off"]):  # normalize ran again on a usage message after a crash
        _put(open_buckets, key, ob)
        return
    newest = 0.0
    for rec in doc["records"]:
        ob.add(rec)
        newest = max(newest, rec["ts"])
    _, seen, scans = _watermark(partition)
    # a producer whose clock runs ahead must not drag the partition's event time into the future
    newest = max(seen, min(newest, time.time()))
    _put(watermarks, str(partition), (time.time(), newest, scans))
    await _send_buckets(key, ob.close_until(newest - settings.allowed_lateness_seconds))
    _put(open_buckets, key, ob)


async def _send_buckets(key: str, buckets: list[Bucket]) -> None:
    """One message per key with every bucket it closed: a backlog closes many at once."""
    if buckets:
        await buckets_topic.send(key=key.encode(), value=dump_buckets(buckets))


_TICK = "__tick__"
WORKER_STARTED = time.time()  # set once at import: this process's start, never mutated
#: How often a busy partition is scanned for keys that went quiet (their buckets close when their
#: own next record arrives; a key that sends none is closed by this scan or the idle flush).
STRAGGLER_SCAN_SECONDS = 30.0


def _watermark(partition: int) -> tuple[float, float, tuple[float, float]]:
    """(wall time of the partition's last record, newest event time,
    (wall time of the last straggler scan, wall time of the last idle flush))."""
    wall, newest, *scans = _get(watermarks, str(partition), (0.0, 0.0, (0.0, 0.0)))
    return wall, newest, scans[0] if scans and isinstance(scans[0], tuple) else (0.0, 0.0)


async def _flush_idle(partition: int) -> None:
    """Close buckets of keys on ``partition`` that the watermark or idleness has passed.

    Scans the partition's open keys only when it has gone idle (once, until new records come)
    or every ``STRAGGLER_SCAN_SECONDS`` while busy: a scan decodes every open key's state."""
    wall, newest, (straggler_at, idle_at) = _watermark(partition)
    now = time.time()
    # idle since this worker started, too: after a restart the recovered wall time is old, and
    # the redelivered backlog has not been read yet; flushing then would close minutes half-full
    if now - max(wall, WORKER_STARTED) >= settings.idle_flush_seconds:
        if idle_at >= wall:
            return  # flushed everything since the last record
        watermark, scans = float("inf"), (straggler_at, now)
    elif now - straggler_at >= STRAGGLER_SCAN_SECONDS:
        watermark, scans = newest - settings.allowed_lateness_seconds, (now, idle_at)
    else:
        return
    for n, key in enumerate(list(open_buckets.keys())):
        if n % 1000 == 999:
            await asyncio.sleep(0)  # a long scan must not starve the consumer's heartbeats
        ob: OpenBuckets | None = _get(open_buckets, key)
        # Each key is flushed by its own partition's tick, so its changelog stays co-partitioned.
        if ob is None or ob.partition != partition or ob.oldest_end is None or ob.oldest_end > watermark:
            continue
        await _send_buckets(key, ob.close_until(watermark))
        _put(open_buckets, key, ob)
    _put(watermarks, str(partition), (wall, newest, scans))


@app.timer(interval=max(1.0, min(settings.idle_flush_seconds / 2, 5.0)), on_leader=True)
async def tick() -> None:
    """Punctuate every costs partition so idle keys' buckets close (event time stalls when traffic stops),
    and every budget partition so incidents resolve once spend stops (model.activity has its own, slower
    timer in streams/gpu_agents.py)."""
    for partition in range(settings.partitions):
        await costs_topic.send(key=_TICK.encode(), value=b"[]", partition=partition)
        await budget_spend_topic.send(key=_TICK.encode(), value=b"[]", partition=partition)


@app.agent(buckets_topic)
async def detect(stream: faust.StreamT) -> None:
    """Score each closed bucket per (key, metric); open and resolve incidents as alerts."""
    scorer = BucketScorer(settings)

    async def detect_one(event: faust.EventT) -> None:
        touched: dict[str, Any] = {}  # each series' state is loaded and saved once per message

        def load(series: str) -> Any:
            return touched[series] if series in touched else _get(monitors, series)

        alerts = [a for b in load_buckets(event.value) for a in scorer.score(b, load, touched.__setitem__)]
        for series, state in touched.items():
            _put(monitors, series, state)
        for alert in alerts:
            await _send_alert(alert)

    async for event in stream.events():
        await _guarded("detect", event, detect_one)


@app.agent(buckets_topic)
async def route_budgets(stream: faust.StreamT) -> None:
    """Send each closed bucket's spend to every budget it counts towards (keyed by budget id)."""
    book = load_budgets()

    async def route_one(event: faust.EventT) -> None:
        for budget_id, spend in spend_by_budget(load_buckets(event.value), book).items():
            await budget_spend_topic.send(key=budget_id.encode(), value=orjson.dumps(spend))

    async for event in stream.events():
        await _guarded("route_budgets", event, route_one)


@app.agent(budget_spend_topic)
async def budgets(stream: faust.StreamT) -> None:
    """Burn rate (SRE multi-window) and thresholds per budget; ticks resolve incidents once spend stops."""
    book = load_budgets()

    async def budget_one(event: faust.EventT) -> None:
        budget_id = _key(event)
        if budget_id == _TICK:
            await _advance_budgets(event.message.partition)
            return
        spec = book.get(budget_id)
        if spec is None:  # the budget was removed from the file since this was routed
            return
        partition, offset = event.message.partition, event.message.offset
        stored = _get(burn_trackers, budget_id)
        if stored is not None and len(stored) == 3 and stored[0] == partition and offset <= stored[1]:
            return  # redelivered after a crash: already counted
        tracker = stored[-1] if stored is not None else BurnTracker.from_spec(spec)
        tracker.configure(spec)
        events = [ev for start, spend in orjson.loads(event.value)
                  for ev in tracker.observe(datetime.fromtimestamp(start, tz=timezone.utc), spend)]
        _put(burn_trackers, budget_id, (partition, offset, tracker))
        for ev in events:
            await _send_alert(burn_alert(ev))

    async for event in stream.events():
        await _guarded("budgets", event, budget_one)


async def _advance_budgets(partition: int) -> None:
    """Move open incidents' clocks to the newest event time any budget on this worker has seen:
    a surge that stops completely sends no more spend, and must still resolve."""
    stored = [(k, v) for k in list(burn_trackers.keys()) if (v := _get(burn_trackers, k)) is not None]
    if not stored:
        return
    clocks = [v[-1].now for _, v in stored if v[-1].now is not None]
    if not clocks:
        return
    now = max(clocks)
    for budget_id, (p, *offset, tracker) in stored:
        if p != partition or not tracker.active or tracker.now is None or tracker.now >= now:
            continue  # each budget is advanced by its own partition's tick (co-partitioned changelog)
        events = tracker.advance(now)
        _put(burn_trackers, budget_id, (p, *offset, tracker))
        for ev in events:
            await _send_alert(burn_alert(ev))


def load_budgets() -> BudgetBook:
    """The budget book from settings; a bad file fails at start with file, line and field."""
    return BudgetBook.load(settings.budgets)


@app.agent(alerts_topic)
async def store_alerts(stream: faust.StreamT) -> None:
    """Persist alerts idempotently (a redelivered alert is a no-op) and log them."""
    store = AlertStore(settings.database_url)

    async def store_one(event: faust.EventT) -> None:
        alert = Alert.model_validate_json(event.value)
        if await until_stored(store.save_alert, alert):
            log.warning("ALERT %s %s %s observed=%.4g baseline=%.4g score=%.6f", alert.status,
                        alert.series_key, alert.metric, alert.observed, alert.baseline, alert.score)

    try:
        async for event in stream.events():
            await _guarded("store_alerts", event, store_one)
    finally:
        store.close()


@app.agent(deadletter_topic)
async def store_dead_letters(stream: faust.StreamT) -> None:
    """Keep every dead letter queryable (``burnguard deadletter list``)."""
    store = AlertStore(settings.database_url)

    async def store_one(event: faust.EventT) -> None:
        try:
            dl = DeadLetter.model_validate_json(event.value)
        except ValueError as err:  # a foreign message on the dead-letter topic: keep it, wrapped
            dl = DeadLetter.from_bytes(event.value or b"", reason=f"unreadable dead letter: {err}",
                                       topic=DEADLETTER_TOPIC, partition=event.message.partition,
                                       offset=event.message.offset)
        await until_stored(store.save_dead_letter, dl)

    try:
        async for event in stream.events():
            try:
                await store_one(event)
            except Exception:  # noqa: BLE001 - quarantining to its own topic would loop: log and go on
                log.exception("dead letter at %s@%s could not be stored", event.message.partition,
                              event.message.offset)
    finally:
        store.close()


@app.page("/health")
async def health(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
    """Liveness and what this worker holds: for Kubernetes probes and people."""
    return web.json({
        "status": "ok",
        "app": settings.app_id,
        "agents": {name: not agent.should_stop for name, agent in app.agents.items()},
        "tables": {name: len(table) for name, table in app.tables.items()},
        "assigned_partitions": len(app.consumer.assignment()) if app.consumer else 0,
    })


# The GPU-side agents are declared against this app in their own module; importing it here (after
# everything it imports from this one is defined) registers them for `burnguard worker` and
# `faust -A streams.app worker` alike.
from streams import gpu_agents  # noqa: E402,F401

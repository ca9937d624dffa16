"""What the fault tests (tests/e2e/test_faults.py) read off the broker: every bucket batch once per (key, seq),
the records each producer has on the costs topic, and the lead-in that starts each stream."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from schemas.bucket import BucketBatch, load_batch
from streams.harness.topic_reader import TopicReader
from streams.settings import BUCKETS_TOPIC, COSTS_TOPIC
from tests.support.fault_traffic import Traffic
from tests.support.waits import until


class BucketLog:
    """Every batch on the buckets topic, once per (key, seq); a repeat with other content is recorded."""

    def __init__(self, bootstrap: str) -> None:
        self.reader = TopicReader(bootstrap, BUCKETS_TOPIC)
        self.batches: dict[tuple[str, int], BucketBatch] = {}
        self.conflicts: list[tuple[str, int]] = []
        self.last_new = time.monotonic()

    def poll(self) -> int:
        new = 0
        for value in self.reader.poll(timeout_ms=200):
            batch = load_batch(value)
            seen = self.batches.setdefault((batch.key, batch.seq), batch)
            if seen is batch:
                new += 1
            elif seen != batch:
                self.conflicts.append((batch.key, batch.seq))
        if new:
            self.last_new = time.monotonic()
        return new

    def newest_closed(self) -> dict[str, datetime]:
        """key -> start of its newest on-time bucket."""
        out: dict[str, datetime] = {}
        for batch in self.batches.values():
            for b in batch.buckets:
                if not b.late and (b.key not in out or b.start > out[b.key]):
                    out[b.key] = b.start
        return out

    def closed_through(self, last_minute: dict[str, datetime]) -> bool:
        """Every key's last minute has closed (on time)."""
        newest = self.newest_closed()
        return all(k in newest and newest[k] >= m for k, m in last_minute.items())

    def open_keys(self, last_minute: dict[str, datetime]) -> dict[str, str]:
        """Keys whose last minute has not closed: newest closed minute / last minute published."""
        newest = self.newest_closed()
        return {k: f"{newest[k]:%H:%M}/{m:%H:%M}" if k in newest else f"none/{m:%H:%M}"
                for k, m in last_minute.items() if k not in newest or newest[k] < m}

    def by_key(self) -> dict[str, tuple[int, float, int]]:
        """key -> (records, spend, late buckets) over the deduplicated batches."""
        out: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])
        for batch in self.batches.values():
            for b in batch.buckets:
                s = out[b.key]
                s[0] += b.records
                s[1] += b.spend_usd
                s[2] += b.late
        return {k: (int(r), usd, int(late)) for k, (r, usd, late) in out.items()}

    def close(self) -> None:
        self.reader.close()


class CostsCount:
    """Leaf records per producer on the ``costs`` topic (the clock a costs message carries names its producer)."""

    def __init__(self, bootstrap: str) -> None:
        self.reader = TopicReader(bootstrap, COSTS_TOPIC)
        self.records: dict[str, int] = defaultdict(int)

    def poll(self) -> dict[str, int]:
        for value in self.reader.poll(timeout_ms=200):
            doc = json.loads(value)
            if not isinstance(doc, dict) or "keys" not in doc:
                continue  # a punctuation
            producer = str(doc["clk"][0]).split(":", 1)[1]
            for key, partials in doc["keys"].items():
                if "*" not in key:  # roll-ups repeat their leaves' records
                    self.records[producer] += sum(int(p.get("n", 1)) for p in partials)
        return dict(self.records)

    def close(self) -> None:
        self.reader.close()


def lead_in(traffic: Traffic, bootstrap: str, alive: Callable[[], None]) -> None:
    """Publish the first round (one minute of each producer's clock: nothing can close on it) and wait until
    every one of its records is on the ``costs`` topic, before the stream runs. A key fed by several producers
    learns their clocks from their records: if one producer's minutes reached it before another's first record
    did, the key closed them on the first clock alone and the other's records for them were late, by design
    (a key cannot wait for a producer it has never heard of). Started together, that is a race of the first
    messages, not a fault; led in, every shared key knows its producers before any minute can close, so a late
    bucket afterwards is the faults' doing. The producers keep sending keep-alives meanwhile (never idle)."""
    want: dict[str, int] = defaultdict(int)
    for producer, _ in traffic.rounds[0]:
        want[producer] += 1
    counts = CostsCount(bootstrap)
    try:
        traffic.start()
        traffic.release(1)
        until("the first round to reach the costs topic", lambda: all(
            counts.poll().get(p, 0) >= n for p, n in want.items()), 60, alive,
            detail=lambda: f"(records on costs by producer: {counts.records}, published: {dict(want)})")
    finally:
        counts.close()


def dump_topics(bootstrap: str, topics: list[str], path: Path) -> None:
    """Every record of ``topics`` as JSON lines (topic, partition, offset, key, value) into ``path``: kept beside
    the worker logs when a fault test finds money missing, to tell which messages held it and where they went."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                             consumer_timeout_ms=3000)
    try:
        with path.open("w") as out:
            for topic in topics:
                tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
                consumer.assign(tps)
                consumer.seek_to_beginning(*tps)
                for rec in consumer:
                    out.write(json.dumps({"topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
                                          "key": rec.key.decode(errors="replace") if rec.key else None,
                                          "value": rec.value.decode(errors="replace")}) + "\n")
    finally:
        consumer.close()

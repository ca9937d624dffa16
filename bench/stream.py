"""Stream throughput: burnguard's normalize agent vs a raw aiokafka consumer, in the same run.

    python -m bench.stream [--events 200000]

Publishes a backlog of LLM usage envelopes to an embedded broker, then measures, on the
same backlog and machine:
  1. baseline: a raw aiokafka consumer decoding the JSON envelopes (events/s);
  2. the Normalizer alone, no Kafka (events/s);
  3. the Faust worker draining the backlog into cost records (events/s, from its first
     output to its last, so worker start-up is excluded).
Prints each with its ratio to the baseline (the machines are noisy: compare ratios).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import orjson

from schemas.ingest import Normalizer
from sinks.kafka_producer import UsageProducer
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.settings import ALL_TOPICS, COSTS_TOPIC, USAGE_TOPICS, Settings
from streams.harness.synthetic import SyntheticDay
from streams.harness.topic_reader import TopicReader
from streams.harness.worker_process import WorkerProcess


def make_events(n: int) -> list[dict]:
    out: list[dict] = []
    d = date.today() - timedelta(days=1)
    seed = 0
    while len(out) < n:
        out += list(SyntheticDay(d, seed=seed).events())
        seed += 1
    return out[:n]


async def raw_aiokafka(bootstrap: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(USAGE_TOPICS["llm"], bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    seen, t0 = 0, time.perf_counter()
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=1000)
            for records in batch.values():
                for r in records:
                    doc = orjson.loads(r.value)
                    seen += len(doc) if isinstance(doc, list) else 1
    finally:
        await consumer.stop()
    return seen / (time.perf_counter() - t0)


def normalizer_only(envelopes: list[bytes], n: int) -> float:
    normalizer = Normalizer()
    t0 = time.perf_counter()
    got = sum(len(normalizer.parse("llm", env)[0]) for env in envelopes)
    assert got == n, (got, n)
    return n / (time.perf_counter() - t0)


def faust_worker(broker: EmbeddedBroker, events: int, workdir: Path) -> float:
    """Events/s from the worker's first cost record to its last (each event is one record per
    key level: its allocation key and every roll-up)."""
    n = events * (1 + len(Settings(_env_file=None).rollups))
    reader = TopicReader(broker.bootstrap, COSTS_TOPIC)
    seen, first, last = 0, None, None
    with WorkerProcess(broker.url, f"sqlite:///{workdir / 'bench.db'}", workdir / "worker.log",
                       detector="ew_zscore") as worker:
        deadline = time.monotonic() + 600
        while seen < n and time.monotonic() < deadline:
            worker.check_alive()
            for value in reader.poll(timeout_ms=200):
                recs = orjson.loads(value)
                recs = recs.get("records", []) if isinstance(recs, dict) else recs  # ticks are []
                if recs:
                    first = first or time.perf_counter()
                    seen += len(recs)
                    last = time.perf_counter()
    reader.close()
    if seen < n or first is None or last is None:
        raise RuntimeError(f"worker produced {seen}/{n} cost records")
    return events / (last - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    events = make_events(args.events)
    envelopes = [orjson.dumps(events[i:i + args.batch_size]) for i in range(0, len(events), args.batch_size)]
    workdir = Path(tempfile.mkdtemp(prefix="burnguard-bench-"))
    with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        with UsageProducer(broker.bootstrap, batch_size=args.batch_size, stream_key="bench") as producer:
            for e in events:
                producer.send("llm", e)
        base = asyncio.run(raw_aiokafka(broker.bootstrap, len(events)))
        norm = normalizer_only(envelopes, len(events))
        worker = faust_worker(broker, len(events), workdir)
    print(f"stream throughput, {len(events)} LLM events in envelopes of {args.batch_size}")
    print(f"{'path':<42}{'events/s':>12}{'ratio':>8}")
    for name, rate in (("raw aiokafka consumer + JSON decode (base)", base),
                       ("Normalizer only (validate, price, allocate)", norm),
                       ("Faust worker: usage.llm -> costs", worker)):
        print(f"{name:<42}{rate:>12,.0f}{rate / base:>8.2f}")


if __name__ == "__main__":
    main()

"""Processing latency of a live load: from a minute becoming closable to its alert (and its buckets) being stored.

    python -m bench.latency [--rate 4500] [--minutes 2]

``make bench`` runs it at half the native-envelope sustained rate measured earlier in the same run.

**The load.** A fresh embedded broker (``--partitions`` 4) and a real ``burnguard worker`` (default detector,
``memory://`` tables, the harness's 3 s idle time). One producer per usage partition (message key
``bench-P``: one source clock each) sends, every ``TICK_S`` (0.25 s), an envelope of ``rate × TICK_S ÷
partitions`` native events whose event time is the wall time of sending (live), over ``--keys`` (50,000)
random allocation keys; the bench records the rate it actually achieved. Eight *spike keys* (teams
``spike0``..``spike7``) get 8 requests a minute from the same producers; before the live load, each gets
``HISTORY_MINUTES`` (150) of such minutes in the past, so the default detector has left warm-up (100
buckets). In live minute 1 + (i mod ``--minutes``) spike key i gets 10× the requests at 10× the cost per
request and 10× the tokens (100× the spend), which opens an incident at once, and the spike goes on for
the next minute too (``SPIKE_MINUTES``: a runaway does not stop as it is detected; a key that fell quiet
the moment its minute ended would learn its other producers' clocks only from the next scan, see below).

**What is timed.** A minute [s, e) is *closable* at wall time ``e + allowed_lateness`` (60 s): live event
times are wall times, so that is when every producer's clock, and with it the watermark of every key they
feed, passes the minute's end plus the lateness (closing: :mod:`streams.state.windows`; the producers never
pause, so no clock goes idle and nothing closes earlier). Two latencies run from that instant:

- **alert stored** (the headline): an alert's ``created_at`` in the store (``sinks.store``: set when the
  store agent inserts it) minus closable(``window_end``), for every firing alert of the measured minutes:
  the spike keys, their team roll-ups, and the org roll-up (its history holds the spike keys only, so the
  live load is an anomaly there too). The worker's own ``burnguard_alert_latency_seconds`` histogram times
  the same span; its count is printed beside it as a cross-check;
- **bucket emitted**: the Kafka timestamp (producer create time, the aggregate agent's send) of the
  ``buckets`` message carrying a key's bucket of a measured minute, minus its closable instant, for every
  key and roll-up (late corrections excluded). A key only learns that its other producers' clocks moved
  from its own records or from a *scan* punctuation (every 30 s), so sparse keys close later than dense ones.

Measured minutes are the partial minute the load starts in and the ``--minutes`` full minutes after it;
the load runs until ``SETTLE_S`` (40 s) after the last of them became closable, then the worker runs on
until it has consumed the usage backlog and everything derived from it, detect and the store included (the
group's committed offsets), so an alert that took longer than the load still counts, with its full latency.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.memory import wait_ready
from bench.report import Latencies
from bench.throughput import GroupWatch, scored
from bench.workload import key_dims
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.worker_process import WorkerProcess
from streams.settings import (ALL_TOPICS, BUCKETS_TOPIC, BUDGET_SPEND_TOPIC, COSTS_TOPIC, MODEL_ACTIVITY_TOPIC,
                              USAGE_TOPICS, Settings)

Log = Callable[[str], None]

USAGE = USAGE_TOPICS["llm"]
TICK_S = 0.25
SPIKE_KEYS = 8
SPIKE_PER_MINUTE = 8
SPIKE_FACTOR = 10
#: A runaway lasts: the spike goes on in the minute after the one that alerts, as runaway spend does.
SPIKE_MINUTES = 2
HISTORY_MINUTES = 150
SETTLE_S = 40.0
#: After the load, how long detect and the store may take to consume what is on their topics.
CATCH_UP_S = 600.0
TARGET_P99_S = 2.0


@dataclass
class LatencyResult:
    rate_asked: float
    rate_achieved: float = 0.0
    minutes: list[float] = field(default_factory=list)  # starts (epoch s) of the measured minutes
    alerts: Latencies = Latencies(0)
    buckets: Latencies = Latencies(0)
    full_buckets: Latencies = Latencies(0)
    worker_histogram_count: float = 0.0
    worker_histogram_le2: float = 0.0
    lateness: int = 60


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def native(i: int, team: str, feature: str, customer: str, model: str, provider: str, ts: float, cost: float,
           tokens: int) -> bytes:
    return orjson.dumps({"timestamp": iso(ts), "model": model, "provider": provider, "input_tokens": tokens,
                         "output_tokens": tokens // 4, "cost_usd": cost, "latency_ms": 500,
                         "request_id": f"lat-{i:010d}", "tags": {"team": team, "feature": feature,
                                                                  "customer": customer}})


class LiveLoad:
    """Events of the live load and the spike keys' history, one sequence number per event."""

    def __init__(self, keys: int, partitions: int, minutes: int, seed: int = 11) -> None:
        self.keys, self.partitions, self.minutes = keys, partitions, minutes
        self.rng = random.Random(seed)
        self.n = 0
        self.spike_start = 0.0  # start of live minute 1 (epoch s)
        self.sent_spike: dict[tuple[int, int], int] = {}  # (spike key, minute start) -> requests sent

    def _spike_event(self, s: int, ts: float, factor: int) -> bytes:
        self.n += 1
        cost = 0.002 * (1 + 0.1 * self.rng.random()) * factor
        return native(self.n, f"spike{s}", "chat", "internal", "gpt-4o", "openai", ts, cost, 800 * factor)

    def history(self, until: float) -> list[list[bytes]]:
        """Per partition, envelopes of the spike keys' past minutes (``HISTORY_MINUTES`` ending at ``until``)."""
        out: list[list[bytes]] = [[] for _ in range(self.partitions)]
        first = until - 60 * HISTORY_MINUTES
        for m in range(HISTORY_MINUTES):
            events: list[list[bytes]] = [[] for _ in range(self.partitions)]
            for s in range(SPIKE_KEYS):
                for j in range(SPIKE_PER_MINUTE):
                    ts = first + 60 * m + (j + 0.5) * 60 / SPIKE_PER_MINUTE
                    events[(s + j) % self.partitions].append(self._spike_event(s, ts, 1))
            for p, evs in enumerate(events):
                out[p].append(b"[" + b",".join(evs) + b"]")
        return out

    def spike_due(self, now: float) -> list[tuple[int, int]]:
        """(spike key, factor) of the requests due by ``now``: evenly spread over each minute, ×10 in its
        ``SPIKE_MINUTES`` spike minutes (from live minute 1 + i mod minutes)."""
        minute = now - now % 60
        out = []
        for s in range(SPIKE_KEYS):
            first = self.spike_start + 60 * (s % self.minutes)
            spiking = first <= minute < first + 60 * SPIKE_MINUTES
            factor = SPIKE_FACTOR if spiking else 1
            due = int((now - minute) / 60 * SPIKE_PER_MINUTE * factor)
            sent = self.sent_spike.get((s, int(minute)), 0)
            out += [(s, factor)] * (due - sent)
            self.sent_spike[(s, int(minute))] = max(due, sent)
        return out

    def tick(self, now: float, n_events: int) -> list[bytes]:
        """One envelope per partition: ``n_events`` load events at event time ``now``, and the spike keys'."""
        events: list[list[bytes]] = [[] for _ in range(self.partitions)]
        for i in range(n_events):
            self.n += 1
            k = self.rng.randrange(self.keys)
            team, feature, customer, model, provider = key_dims(k)
            cost = self.rng.randint(1, 10_000) * 2.0 ** -20
            events[i % self.partitions].append(native(self.n, team, feature, customer, model, provider, now, cost,
                                                      self.rng.randint(50, 4000)))
        for j, (s, factor) in enumerate(self.spike_due(now)):
            events[(s + j) % self.partitions].append(self._spike_event(s, now, factor))
        return [b"[" + b",".join(evs) + b"]" if evs else b"" for evs in events]


async def producer_for(bootstrap: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=1 << 20,
                                max_request_size=8 << 20, acks="all")
    await producer.start()
    return producer


async def send_history(bootstrap: str, history: list[list[bytes]]) -> None:
    producer = await producer_for(bootstrap)
    try:
        futures = [await producer.send(USAGE, v, key=f"bench-{p}".encode(), partition=p)
                   for p, values in enumerate(history) for v in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def run_live(bootstrap: str, load: LiveLoad, rate: float, until: float, worker: WorkerProcess) -> float:
    """Send the live load until wall time ``until``; returns the load events/s achieved."""
    producer = await producer_for(bootstrap)
    sent, carry, t0 = 0, 0.0, time.time()
    next_tick = t0
    try:
        while True:
            now = time.time()
            if now >= until:
                break
            carry += rate * TICK_S
            n = int(carry)
            carry -= n
            for p, value in enumerate(load.tick(now, n)):
                if value:
                    await producer.send(USAGE, value, key=f"bench-{p}".encode(), partition=p)
            sent += n
            next_tick += TICK_S
            worker.check_alive()
            await asyncio.sleep(max(0.0, next_tick - time.time()))
        await producer.flush()
    finally:
        await producer.stop()
    return sent / (time.time() - t0)


def bucket_samples(doc: dict[str, Any], emitted: float, minutes: set[float], lateness: int
                   ) -> list[tuple[str, float]]:
    """(key, emitted - (bucket end + lateness)) of each bucket of ``minutes`` in one decoded buckets batch
    (late corrections left out)."""
    out = []
    for b in doc["buckets"]:
        start = datetime.fromisoformat(b["start"]).timestamp()
        if b.get("late") or start not in minutes:
            continue
        out.append((b["key"], emitted - (start + b["seconds"] + lateness)))
    return out


async def bucket_latencies(bootstrap: str, partitions: int, minutes: set[float], lateness: int
                           ) -> tuple[list[float], list[float]]:
    """(every key's, full keys' only) latencies of the buckets of ``minutes`` on the buckets topic: message
    timestamp - (bucket end + lateness); each (key, seq) batch once, late corrections left out."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=8 << 20)
    await consumer.start()
    tps = [TopicPartition(BUCKETS_TOPIC, p) for p in range(partitions)]
    consumer.assign(tps)
    ends = await consumer.end_offsets(tps)
    seen: set[tuple[str, int]] = set()
    every, full = [], []
    try:
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(*tps, timeout_ms=1000, max_records=5000)).values():
                for r in records:
                    doc = orjson.loads(r.value)
                    if (doc["key"], doc["seq"]) in seen:
                        continue
                    seen.add((doc["key"], doc["seq"]))
                    for key, seconds in bucket_samples(doc, r.timestamp / 1000, minutes, lateness):
                        every.append(seconds)
                        if "*" not in key:
                            full.append(seconds)
    finally:
        await consumer.stop()
    return every, full


def alert_latencies(db: Path, minutes: set[float], lateness: int) -> list[float]:
    """created_at - (window_end + lateness) of the stored firing alerts of ``minutes``."""
    out = []
    with sqlite3.connect(db) as conn:
        for payload, created in conn.execute("SELECT payload, created_at FROM alerts"):
            doc = orjson.loads(payload)
            start = datetime.fromisoformat(doc["window_start"].replace("Z", "+00:00")).timestamp()
            if doc["status"] != "firing" or start not in minutes:
                continue
            stored = datetime.fromisoformat(created)
            stored = stored if stored.tzinfo else stored.replace(tzinfo=timezone.utc)
            end = datetime.fromisoformat(doc["window_end"].replace("Z", "+00:00")).timestamp()
            out.append(stored.timestamp() - (end + lateness))
    return out


async def caught_up(worker: WorkerProcess, bootstrap: str, partitions: int, timeout: float) -> None:
    """Wait until the worker's group has consumed what is on usage and the internal topics now, then until
    detect, budgets' alerts and the store have consumed what that made (a live load may leave a backlog)."""
    watch = GroupWatch(bootstrap, Settings(_env_file=None).app_id, partitions)
    await watch.consumer.start()
    try:
        upstream = watch.tps(USAGE, COSTS_TOPIC, BUDGET_SPEND_TOPIC, MODEL_ACTIVITY_TOPIC)
        await watch.until(await watch.ends(upstream), worker, timeout)
    finally:
        await watch.consumer.stop()
    await scored(worker, bootstrap, partitions, timeout)


def scrape(port: str) -> dict[str, float]:
    """The worker's alert-latency histogram samples from ``/metrics`` (name{le} -> value)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("burnguard_alert_latency_seconds"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def measure(rate: float, minutes: int = 2, keys: int = 50_000, partitions: int = 4, workdir: Path | None = None,
            log: Log = print) -> LatencyResult:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="burnguard-latency-"))
    workdir.mkdir(parents=True, exist_ok=True)
    lateness = Settings(_env_file=None).allowed_lateness_seconds
    res = LatencyResult(rate_asked=rate, lateness=lateness)
    db = workdir / "bench.db"
    load = LiveLoad(keys, partitions, minutes)
    with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=partitions)
        with WorkerProcess(broker.url, f"sqlite:///{db}", workdir / "worker.log") as worker:
            wait_ready(worker, 120)
            start = time.time()
            first_minute = float(int(start // 60) * 60)
            log(f"[latency] worker ready; {HISTORY_MINUTES} minutes of history for {SPIKE_KEYS} spike keys ...")
            asyncio.run(send_history(broker.bootstrap, load.history(until=first_minute)))
            load.spike_start = first_minute + 60
            res.minutes = [first_minute + 60 * m for m in range(minutes + 1)]
            until = res.minutes[-1] + 60 + lateness + SETTLE_S
            log(f"[latency] live load at {rate:,.0f} events/s until {iso(until)} "
                f"({until - time.time():.0f} s); measured minutes from {iso(first_minute)}")
            res.rate_achieved = asyncio.run(run_live(broker.bootstrap, load, rate, until, worker))
            log("[latency] load stopped; waiting until detect and the store have consumed every bucket and alert ...")
            asyncio.run(caught_up(worker, broker.bootstrap, partitions, CATCH_UP_S))
            hist = scrape(worker.env["BURNGUARD_WEB_PORT"])
            res.worker_histogram_count = hist.get("burnguard_alert_latency_seconds_count", 0.0)
            res.worker_histogram_le2 = hist.get('burnguard_alert_latency_seconds_bucket{le="2.0"}', 0.0)
        every, full = asyncio.run(bucket_latencies(broker.bootstrap, partitions, set(res.minutes), lateness))
    res.buckets, res.full_buckets = Latencies.of(every), Latencies.of(full)
    res.alerts = Latencies.of(alert_latencies(db, set(res.minutes), lateness))
    log(f"[latency] achieved {res.rate_achieved:,.0f} events/s; alerts {res.alerts.text()}; "
        f"buckets {res.buckets.text()}; logs in {workdir}")
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=4500.0, help="live load events/s (make bench: half sustained)")
    ap.add_argument("--minutes", type=int, default=2, help="full live minutes measured (spikes spread over them)")
    ap.add_argument("--keys", type=int, default=50_000)
    ap.add_argument("--partitions", type=int, default=4)
    args = ap.parse_args(argv)
    res = measure(args.rate, args.minutes, args.keys, args.partitions)
    print(f"alert stored after its minute became closable: {res.alerts.text()} (target p99 <= {TARGET_P99_S} s)")
    print(f"bucket emitted, every key: {res.buckets.text()}; full keys: {res.full_buckets.text()}")
    print(f"worker histogram burnguard_alert_latency_seconds: count {res.worker_histogram_count:.0f}, "
          f"<= 2 s {res.worker_histogram_le2:.0f}")


if __name__ == "__main__":
    main()

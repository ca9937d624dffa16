"""Worker throughput against a raw aiokafka consumer, with the spend check, in one run (``make bench``).

    python -m bench.throughput [--events 1000000] [--shapes native-env,litellm-env,native-msg,litellm-msg]

For each shape, on a fresh embedded broker with ``--partitions`` partitions (4) and ``--keys`` allocation keys
(50,000), one producer per partition:

1. publishes the events (native events ~260 B, or LiteLLM StandardLoggingPayloads ~1.3 KB templated from
   the real ones in tests/fixtures), in envelopes of ``--batch`` events (``-env``) or one per message (``-msg``);
2. baseline: a raw aiokafka consumer that only decodes the JSON of the same messages (events/s);
3. starts the real worker (``burnguard worker``: normalize, aggregate, detect, budgets, guardrails, store) on
   the backlog and follows its consumer group's committed offsets:

   - *sustained*: events/s of usage consumed between 10 % and 90 % of the backlog;
   - *drained*: events / time from its first cost record until aggregate and budgets have consumed every
     internal message derived from the backlog;
   - *end to end*: until the last buckets closed (the producers go idle, 3 s) are scored and alerts stored;

4. checks that the spend in the deduplicated ``buckets`` topic (by (key, seq)) equals the published spend,
   exactly (costs are multiples of 2**-20 USD), and the request count equals the events published, for the
   full keys and for each roll-up level; and the ``org`` budget's stored snapshot too.

Prints one table: figure, target, measured, ratio to the baseline of the same run (and the Normalizer
alone, no Kafka), the spend checks last. ``make bench`` (:mod:`bench.run`) runs these shapes and then the
other figures (latency at half load, two workers, ``burnguard publish``, memory and recovery) in one table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.workload import Workload
from sinks.budget_store import BudgetStore
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.topic_reader import TopicReader
from streams.harness.worker_process import WorkerProcess
from streams.agents.normalize import load_normalizer
from streams.rollups import is_rollup
from streams.settings import (ALERTS_TOPIC, ALL_TOPICS, BUCKETS_TOPIC, BUDGET_SPEND_TOPIC, COSTS_TOPIC,
                              MODEL_ACTIVITY_TOPIC, OVERRUNS_TOPIC, USAGE_TOPICS, Settings)

USAGE = USAGE_TOPICS["llm"]
SHAPES = ("native-env", "litellm-env", "native-msg", "litellm-msg")
POLL_S = 0.25


@dataclass
class Result:
    shape: str
    events: int
    messages: int
    payload_bytes: int
    baseline: float = 0.0  # events/s
    normalizer: float = 0.0  # events/s of the Normalizer alone (no Kafka)
    sustained: float = 0.0
    drained: float = 0.0
    end_to_end: float = 0.0
    spend_ok: bool = False
    checks: list[str] = field(default_factory=list)
    buffer_full: int = 0
    worker_cpu: float = 0.0  # share of one core while draining
    broker_cpu: float = 0.0
    rss_mb: float = 0.0
    rss_growth_mb: float = 0.0
    keys: int = 0


async def publish(bootstrap: str, messages: list[list[bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20,
                                max_request_size=4 << 20, acks="all")
    await producer.start()
    try:
        for p, values in enumerate(messages):
            key = f"bench-{p}".encode()
            for i in range(0, len(values), 2000):
                futures = [await producer.send(USAGE, v, key=key, partition=p) for v in values[i:i + 2000]]
                await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def baseline(bootstrap: str, partitions: int, events: int, topic: str = USAGE) -> float:
    """Events/s of a raw aiokafka consumer decoding every message's JSON (no group, from the start): the
    baseline every worker figure is a ratio to."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=8 << 20)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    await consumer.start()
    consumer.assign(tps)
    seen, t0 = 0, time.perf_counter()
    try:
        while seen < events:
            for records in (await consumer.getmany(*tps, timeout_ms=1000, max_records=5000)).values():
                for r in records:
                    doc = orjson.loads(r.value)
                    seen += len(doc) if isinstance(doc, list) else 1
    finally:
        await consumer.stop()
    return seen / (time.perf_counter() - t0)


def normalizer_only(messages: list[list[bytes]], events: int) -> float:
    """Events/s of the configured Normalizer alone (decode, validate, price, allocate; no Kafka, no Faust)."""
    normalizer = load_normalizer(Settings(_env_file=None))
    t0 = time.perf_counter()
    got = sum(len(normalizer.parse("llm", m)[0]) for part in messages for m in part)
    elapsed = time.perf_counter() - t0
    if got != events:
        raise RuntimeError(f"the Normalizer made {got} records of {events} events")
    return events / elapsed


class GroupWatch:
    """Committed offsets of the worker's consumer group (aiokafka ``committed``: works on the embedded broker)."""

    def __init__(self, bootstrap: str, group: str, partitions: int) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        self.bootstrap, self.partitions = bootstrap, partitions

    def tps(self, *topics: str) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t in topics for p in range(self.partitions)]

    async def committed(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: (await self.consumer.committed(tp)) or 0 for tp in tps}

    async def ends(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict(await self.consumer.end_offsets(tps))

    async def until(self, targets: dict[TopicPartition, int], worker: WorkerProcess, timeout: float) -> float:
        """Wall time at which every committed offset reached its target."""
        deadline = time.monotonic() + timeout
        while True:
            got = await self.committed(list(targets))
            if all(got[tp] >= off for tp, off in targets.items()):
                return time.time()
            worker.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker did not catch up within {timeout}s: {got} < {targets}")
            await asyncio.sleep(POLL_S)

    async def first_output(self, topic: str) -> float:
        """Epoch seconds of the earliest message on ``topic`` (the worker's producer stamps it)."""
        reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest")
        await reader.start()
        first = []
        try:
            for tp in self.tps(topic):
                reader.assign([tp])
                reader.seek(tp, 0)
                got = await reader.getmany(tp, timeout_ms=2000, max_records=1)
                first += [r.timestamp / 1000 for rs in got.values() for r in rs]
        finally:
            await reader.stop()
        return min(first)


async def follow(worker: WorkerProcess, bootstrap: str, w: Workload, timeout: float) -> tuple[float, float, float]:
    """(sustained, drained events/s, t_first) while the worker drains the backlog."""
    watch = GroupWatch(bootstrap, Settings(_env_file=None).app_id, w.partitions)
    await watch.consumer.start()
    try:
        usage = watch.tps(USAGE)
        cum = [[0] for _ in range(w.partitions)]
        for p, counts in enumerate(w.events_per_offset):
            for c in counts:
                cum[p].append(cum[p][-1] + c)
        samples: list[tuple[float, int]] = []
        deadline = time.monotonic() + timeout
        while True:
            got = await watch.committed(usage)
            done = sum(cum[tp.partition][min(got[tp], len(cum[tp.partition]) - 1)] for tp in usage)
            samples.append((time.time(), done))
            if done >= w.events:
                break
            worker.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker consumed {done}/{w.events} events within {timeout}s")
            await asyncio.sleep(POLL_S)
        internal = watch.tps(COSTS_TOPIC, BUDGET_SPEND_TOPIC, MODEL_ACTIVITY_TOPIC)
        t_drained = await watch.until(await watch.ends(internal), worker, timeout)
        t_first = await watch.first_output(COSTS_TOPIC)
    finally:
        await watch.consumer.stop()
    lo = next(s for s in samples if s[1] >= 0.1 * w.events)
    hi = next(s for s in samples if s[1] >= 0.9 * w.events)
    sustained = (hi[1] - lo[1]) / (hi[0] - lo[0]) if hi[0] > lo[0] else float("nan")
    return sustained, w.events / (t_drained - t_first), t_first


async def scored(worker: WorkerProcess, bootstrap: str, partitions: int, timeout: float) -> float:
    """Wall time by which detect, budgets' alerts and the store consumed what is on their topics now."""
    watch = GroupWatch(bootstrap, Settings(_env_file=None).app_id, partitions)
    await watch.consumer.start()
    try:
        return await watch.until(await watch.ends(watch.tps(BUCKETS_TOPIC, ALERTS_TOPIC, OVERRUNS_TOPIC)),
                                 worker, timeout)
    finally:
        await watch.consumer.stop()


def bucket_totals(worker: WorkerProcess, bootstrap: str, w: Workload, levels: int,
                  timeout: float) -> dict[str, list[float]]:
    """Spend and requests per level (full keys, roll-ups) in the buckets topic, each batch once by (key, seq);
    returns once the full keys hold every published request (or at the timeout)."""
    reader = TopicReader(bootstrap, BUCKETS_TOPIC)
    seen: set[tuple[str, int]] = set()
    totals = {"full": [0.0, 0], "rollup": [0.0, 0]}
    deadline = time.monotonic() + timeout
    try:
        while totals["full"][1] < w.requests or totals["rollup"][1] < w.requests * levels:
            worker.check_alive()
            if time.monotonic() > deadline:
                break
            for value in reader.poll(timeout_ms=500):
                doc = orjson.loads(value)
                if (doc["key"], doc["seq"]) in seen:
                    continue
                seen.add((doc["key"], doc["seq"]))
                t = totals["rollup" if is_rollup(doc["key"]) else "full"]
                for b in doc["buckets"]:
                    t[0] += b["spend_usd"]
                    t[1] += b["requests"]
    finally:
        reader.close()
    return totals


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_at_ready(worker: WorkerProcess, timeout: float = 120.0) -> float:
    """The worker's RSS once Faust logs "Ready" (start-up done, before most of the backlog is read)."""
    assert worker.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.check_alive()
        if worker.log_path.exists() and "[^Worker]: Ready" in worker.log_path.read_text(errors="replace"):
            break
        time.sleep(0.05)
    return rss_mb(worker.process.pid)


def start_profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy (pip install py-spy; not a project dependency) sampling the worker until :func:`stop_profile`."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    print(f"profiling the worker (pid {pid}) into {out}", flush=True)
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
                             "--nonblocking", "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def stop_profile(spy: subprocess.Popen[bytes]) -> None:
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()


def run_shape(shape: str, events: int, args: argparse.Namespace, root: Path) -> Result:
    fmt, kind = shape.split("-")
    w = Workload(shape=fmt, events=events, batch=args.batch if kind == "env" else 1, keys=args.keys,
                 partitions=args.partitions, span_s=max(1.0, events / args.event_rate))
    print(f"[{shape}] generating {events:,} events ...", flush=True)
    messages = w.messages()
    res = Result(shape, events, sum(len(m) for m in messages), w.payload_bytes, keys=len(w.keys_used))
    workdir = root / shape
    workdir.mkdir()
    db = f"sqlite:///{workdir / 'bench.db'}"
    levels = len(Settings(_env_file=None).rollups)
    with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=args.partitions)
        print(f"[{shape}] publishing {res.messages:,} messages ({w.payload_bytes / 1e6:,.0f} MB of events) ...",
              flush=True)
        asyncio.run(publish(broker.bootstrap, messages))
        res.normalizer = normalizer_only(messages, events)
        del messages
        res.baseline = asyncio.run(baseline(broker.bootstrap, args.partitions, events))
        print(f"[{shape}] baseline {res.baseline:,.0f} events/s; starting the worker ...", flush=True)
        with WorkerProcess(broker.url, db, workdir / "worker.log", detector=args.detector) as worker:
            assert worker.process is not None
            rss0 = rss_at_ready(worker)
            spy = start_profile(worker.process.pid, root / f"profile-{shape}.txt") if args.profile else None
            cpu0, bcpu0, wall0 = cpu_seconds(worker.process.pid), cpu_seconds(broker.pid or 0), time.time()
            res.sustained, res.drained, t_first = asyncio.run(follow(worker, broker.bootstrap, w, args.timeout))
            wall = time.time() - wall0
            res.worker_cpu = (cpu_seconds(worker.process.pid) - cpu0) / wall
            res.broker_cpu = (cpu_seconds(broker.pid or 0) - bcpu0) / wall
            if spy is not None:
                stop_profile(spy)
            print(f"[{shape}] sustained {res.sustained:,.0f} events/s, drained {res.drained:,.0f} events/s; "
                  "waiting for the last buckets ...", flush=True)
            totals = bucket_totals(worker, broker.bootstrap, w, levels, args.timeout)
            t_scored = asyncio.run(scored(worker, broker.bootstrap, args.partitions, args.timeout))
            res.end_to_end = events / (t_scored - t_first)
            time.sleep(2.5)  # budgets write snapshots every 2 s
            res.rss_mb = rss_mb(worker.process.pid)
            res.rss_growth_mb = res.rss_mb - rss0
    log = (workdir / "worker.log").read_text(errors="replace")
    res.buffer_full = len(re.findall(r"[Pp]roducer buffer full", log))
    full_spend, full_req = totals["full"]
    roll_spend, roll_req = totals["rollup"]
    res.checks.append(f"full keys: spend {full_spend!r} vs published {w.spend_usd!r}, requests {full_req:,.0f} vs "
                      f"{w.requests:,}")
    res.checks.append(f"roll-ups ({levels} levels): spend {roll_spend!r} vs {w.spend_usd * levels!r}, requests "
                      f"{roll_req:,.0f} vs {w.requests * levels:,}")
    ok = full_spend == w.spend_usd and full_req == w.requests and roll_spend == w.spend_usd * levels \
        and roll_req == w.requests * levels
    store = BudgetStore(db)
    try:
        org = next((s for s in store.snapshots() if s.budget_id == "org"), None)
    finally:
        store.close()
    if org is not None:
        res.checks.append(f"budget org snapshot: {org.spend_usd!r}")
        ok = ok and abs(org.spend_usd - w.spend_usd) <= 1e-9 * w.spend_usd
    else:
        res.checks.append("budget org snapshot: none stored")
        ok = False
    res.spend_ok = ok
    return res


def table(results: list[Result]) -> str:
    """One table: figure, target, measured, ratio to the baseline of the same shape measured in this run;
    the spend checks last."""
    rows = [("figure", "target", "measured", "ratio")]
    for r in results:
        single = r.shape.endswith("-msg")
        unit = "msgs/s" if single else "events/s"
        target = "≥ 10k msgs/s" if single else ("≥ 150k/s, ≥ 0.30×" if r.shape == "native-env" else "≥ 0.30×")
        label = f"{r.shape} ({r.events:,} events, {r.payload_bytes / max(r.events, 1):,.0f} B each, {r.keys:,} keys)"
        rows.append((f"{label}: raw aiokafka + JSON (baseline)", "", f"{r.baseline:,.0f} {unit}", "1.00×"))
        rows.append((f"{r.shape}: Normalizer alone (no Kafka)", "", f"{r.normalizer:,.0f} {unit}",
                     f"{r.normalizer / r.baseline:.3f}×"))
        rows.append((f"{r.shape}: worker sustained (usage consumed 10→90 %)", target, f"{r.sustained:,.0f} {unit}",
                     f"{r.sustained / r.baseline:.3f}×"))
        rows.append((f"{r.shape}: worker drained (first cost → aggregate, budgets caught up)", target,
                     f"{r.drained:,.0f} {unit}", f"{r.drained / r.baseline:.3f}×"))
        rows.append((f"{r.shape}: worker end to end (incl. 3 s idle close, scoring, store)", "",
                     f"{r.end_to_end:,.0f} {unit}", f"{r.end_to_end / r.baseline:.3f}×"))
        rows.append((f"{r.shape}: CPU while draining, worker / broker (cores)", "",
                     f"{r.worker_cpu:.2f} / {r.broker_cpu:.2f}", ""))
        rows.append((f"{r.shape}: worker RSS at the end (growth while draining)", "",
                     f"{r.rss_mb:,.0f} MB (+{r.rss_growth_mb:,.0f} MB)", ""))
        rows.append((f"{r.shape}: 'producer buffer full' warnings", "0", str(r.buffer_full), ""))
    for r in results:
        rows.append((f"{r.shape}: stored spend = published spend (buckets by (key, seq); org budget)", "yes",
                     "yes" if r.spend_ok else "NO", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(wd) if i == 0 else c.rjust(wd) for i, (c, wd) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="native events in envelopes")
    parser.add_argument("--litellm-events", type=int, default=None, help="LiteLLM events (default events/4)")
    parser.add_argument("--single-events", type=int, default=None,
                        help="events of the one-per-message shapes (default events/20)")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--keys", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500, help="events per envelope")
    parser.add_argument("--event-rate", type=float, default=150_000.0,
                        help="events per second of event time (the target rate: a live stream's bucket closes)")
    parser.add_argument("--detector", default="seasonal_z")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the worker while it drains (collapsed stacks in the log directory)")
    args = parser.parse_args()
    counts = {"native-env": args.events, "litellm-env": args.litellm_events or max(1, args.events // 4),
              "native-msg": args.single_events or max(1, args.events // 20),
              "litellm-msg": args.single_events or max(1, args.events // 20)}
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = set(shapes) - set(SHAPES)
    if unknown:
        parser.error(f"unknown shape(s) {sorted(unknown)}; known: {', '.join(SHAPES)}")
    root = Path(tempfile.mkdtemp(prefix="burnguard-throughput-"))
    results = [run_shape(s, counts[s], args, root) for s in shapes]
    print()
    print(f"logs: {root}")
    print("throughput only: python -m bench.run (make bench) adds latency, two workers, publish, memory")
    print(table(results))
    for r in results:
        for c in r.checks:
            print(f"  {r.shape}: {c}")
    if not all(r.spend_ok for r in results):
        raise SystemExit("spend check FAILED: stored spend differs from published spend")
    print("spend check passed: stored spend = published spend for every shape (nothing lost or doubled)")

if __name__ == "__main__":
    main()

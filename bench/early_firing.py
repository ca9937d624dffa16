"""Early firing: a live spike of ≥ 10× a key's expected spend alerts before its minute closes.

    python -m bench.early_firing [--factor 10] [--burst 2.0] [--no-confirm]

``make bench`` (:mod:`bench.run`) runs it once and prints its row.

**The run.** A fresh embedded broker (``--partitions`` 4) and a real ``burnguard worker`` with
``BURNGUARD_EARLY_FIRING=true`` (default detector, ``memory://`` tables) and the live idle time (120 s, not the
harness's 3 s: a producer sending every few seconds must not be taken for idle, which would close the open minute
at once). One producer (usage partition 0, message key ``bench-0``: one source clock) feeds one *spike key*
(``team=spike``), 8 calls a minute at about $0.002 each, as :mod:`bench.latency`'s spike keys:

1. ``HISTORY_MINUTES`` (150) past minutes at once, so the default detector has left warm-up (100 buckets);
2. live, every ``TICK_S`` (0.25 s), the calls due by then (event time = wall time of sending), evenly over
   each minute, the first live minute's elapsed part included, so every minute holds its 8 calls;
3. ``SPIKE_AT_S`` (5 s) into the first live minute that starts after the last history minute (the key's
   reference, see :mod:`streams.state.partials`) closes, at least ``LEAD_IN_S`` (15 s) ahead, the spike: ``--factor`` × the minute's 8 calls more
   (same price each: the minute's spend is ≥ factor × expected, its cost per call is normal, so only ``spend``
   is anomalous), spread over ``--burst`` (2 s) of wall time; the minute's usual calls go on.

**What is timed.** From the wall time the first spike event was sent to the ``created_at`` of the key's stored
firing ``spend`` alert for that minute (``sinks.store``: set when the store agent inserts it). The run also says
how that instant compares with the minute's end and with when the minute becomes closable (end + allowed
lateness): without early firing the alert comes after the latter. With ``--confirm`` (the default) the live
calls go on until the minute has closed and been scored, and the run checks that the store still holds exactly
one spend incident of the key for that minute, with the early alert's fingerprint (the closed minute continued
it, no second alert).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from bench.memory import wait_ready
from schemas.cost import AllocationKey
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.worker_process import WorkerProcess
from streams.settings import ALL_TOPICS, USAGE_TOPICS, Settings

Log = Callable[[str], None]

USAGE = USAGE_TOPICS["llm"]
TICK_S = 0.25
PER_MINUTE = 8
COST_PER_CALL = 0.002
HISTORY_MINUTES = 150
SPIKE_AT_S = 5.0
#: How long after the spike's first event an early alert is waited for (the minute is still open then).
WAIT_S = 50.0
#: With --confirm: how long after the minute became closable its closed bucket may take to be scored.
CONFIRM_S = 20.0
#: The spike minute starts at least this long after the history was sent (it is scored before the spike).
LEAD_IN_S = 15.0
TARGET_S = 5.0
TAGS = {"team": "spike", "feature": "chat", "customer": "internal"}
MODEL = "gpt-4o"
KEY = str(AllocationKey(model=MODEL, **TAGS))


@dataclass
class EarlyFiringResult:
    factor: float
    burst_s: float
    minute: float = 0.0  # start of the spike minute (epoch s)
    lateness: int = 60
    first_sent: float = 0.0  # wall time the first spike event was sent
    stored: float | None = None  # created_at of the stored early alert
    observed: float = 0.0
    baseline: float = 0.0
    fingerprint: str = ""
    confirmed: bool | None = None  # None: not checked (--no-confirm)
    checks: list[str] = field(default_factory=list)

    @property
    def latency(self) -> float | None:
        return None if self.stored is None else self.stored - self.first_sent

    @property
    def ok(self) -> bool:
        lat = self.latency
        return lat is not None and lat <= TARGET_S and self.stored < self.minute + 60 and self.confirmed is not False

    def text(self) -> str:
        lat = self.latency
        if lat is None:
            return f"no alert within {WAIT_S:.0f} s of the spike"
        end, closable = self.minute + 60, self.minute + 60 + self.lateness
        return (f"{lat:.2f} s ({end - self.stored:.0f} s before its minute ends, "
                f"{closable - self.stored:.0f} s before it is closable)")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat().replace("+00:00", "Z")


class SpikeLoad:
    """The spike key's calls: one sequence number each, the price jittered ±5 %."""

    def __init__(self, seed: int = 13) -> None:
        self.rng = random.Random(seed)
        self.n = 0
        self.sent: dict[int, int] = {}  # minute start -> usual calls sent

    def event(self, ts: float) -> bytes:
        self.n += 1
        cost = COST_PER_CALL * (1 + 0.1 * (self.rng.random() - 0.5))
        return orjson.dumps({"timestamp": iso(ts), "model": MODEL, "provider": "openai", "input_tokens": 800,
                             "output_tokens": 200, "cost_usd": cost, "latency_ms": 500,
                             "request_id": f"early-{self.n:08d}", "tags": TAGS})

    def history(self, until: float) -> list[bytes]:
        """One envelope per past minute (``HISTORY_MINUTES`` ending at ``until``)."""
        first = until - 60 * HISTORY_MINUTES
        return [b"[" + b",".join(self.event(first + 60 * m + (j + 0.5) * 60 / PER_MINUTE)
                                 for j in range(PER_MINUTE)) + b"]" for m in range(HISTORY_MINUTES)]

    def usual(self, now: float) -> list[bytes]:
        """The usual calls due by ``now`` in its minute (evenly over the minute), at event time ``now``."""
        minute = int(now - now % 60)
        due = int((now - minute) / 60 * PER_MINUTE) + 1
        sent = self.sent.get(minute, 0)
        self.sent[minute] = max(due, sent)
        return [self.event(now) for _ in range(min(due, PER_MINUTE) - sent)]


async def _producer(bootstrap: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1, acks="all")
    await producer.start()
    return producer


def _stored_alerts(db: Path) -> list[tuple[dict, float, str]]:
    """The stored spend alerts of the spike key (payload as first sent, created_at epoch s, status now)."""
    if not db.exists():
        return []
    out = []
    try:
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT payload, created_at, status FROM alerts "
                                "WHERE series_key = ? AND metric = 'spend'", (KEY,)).fetchall()
    except sqlite3.OperationalError:  # the store has not created its tables yet
        return []
    for payload, created, status in rows:
        stored = datetime.fromisoformat(created)
        stored = stored if stored.tzinfo else stored.replace(tzinfo=timezone.utc)
        out.append((orjson.loads(payload), stored.timestamp(), status))
    return out


def _early_alert(db: Path, minute: float) -> tuple[dict, float] | None:
    for doc, stored, _ in _stored_alerts(db):
        start = datetime.fromisoformat(doc["window_start"].replace("Z", "+00:00")).timestamp()
        if doc["status"] == "firing" and start == minute:
            return doc, stored
    return None


async def _run(bootstrap: str, worker: WorkerProcess, db: Path, res: EarlyFiringResult, confirm: bool,
               log: Log) -> None:
    load = SpikeLoad()
    producer = await _producer(bootstrap)
    key = b"bench-0"

    async def send(events: list[bytes]) -> None:
        if events:
            await producer.send_and_wait(USAGE, b"[" + b",".join(events) + b"]", key=key, partition=0)

    try:
        now = time.time()
        first_minute = now - now % 60
        for value in load.history(until=first_minute):
            await producer.send(USAGE, value, key=key, partition=0)
        await producer.flush()
        # the last history minute closes as the live clock reaches first_minute + lateness: the spike minute is
        # the first to start then or later, at least LEAD_IN_S from now (the history is scored before the spike)
        res.minute = first_minute + 60 * -(-res.lateness // 60)
        while res.minute - time.time() < LEAD_IN_S:
            res.minute += 60
        spike_at = res.minute + SPIKE_AT_S
        log(f"[early firing] {HISTORY_MINUTES} minutes of history sent for {KEY}; live calls, the spike at "
            f"{iso(spike_at)} ({spike_at - time.time():.0f} s)")
        spike_total = int(round(res.factor * PER_MINUTE))
        spike_sent = 0
        deadline = spike_at + WAIT_S
        until = res.minute + 60 + res.lateness + CONFIRM_S if confirm else None
        while True:
            now = time.time()
            worker.check_alive()
            events = load.usual(now)
            if now >= spike_at and spike_sent < spike_total:
                due = min(spike_total, int((now - spike_at) / max(res.burst_s, 1e-9) * spike_total) + 1)
                if spike_sent == 0:
                    res.first_sent = time.time()
                events += [load.event(now) for _ in range(due - spike_sent)]
                spike_sent = due
            await send(events)
            if spike_sent and res.stored is None:
                hit = _early_alert(db, res.minute)
                if hit is not None:
                    doc, res.stored = hit
                    res.observed, res.baseline, res.fingerprint = doc["observed"], doc["baseline"], doc["fingerprint"]
                    log(f"[early firing] alert stored {res.stored - res.first_sent:.2f} s after the spike's first "
                        f"event: observed ${res.observed:.4f} so far vs baseline ${res.baseline:.4f}")
            if res.stored is None and now > deadline:
                log(f"[early firing] no early alert within {WAIT_S:.0f} s")
                break
            if res.stored is not None and (until is None or now > until):
                break
            await asyncio.sleep(max(0.0, TICK_S - (time.time() - now)))
    finally:
        await producer.stop()
    if confirm and res.stored is not None:
        since = [(doc["fingerprint"], status) for doc, _, status in _stored_alerts(db)
                 if datetime.fromisoformat(doc["started_at"].replace("Z", "+00:00")).timestamp() >= res.minute - 60]
        fingerprints = {f for f, _ in since}
        still = dict(since).get(res.fingerprint)
        res.confirmed = fingerprints == {res.fingerprint} and still == "firing"
        res.checks.append(f"after the spike minute closed and was scored: {len(fingerprints)} spend incident(s) of the "
                          f"spike key since the minute before it (want 1: the early one), the early one {still}")


def measure(factor: float = 10.0, burst_s: float = 2.0, partitions: int = 4, confirm: bool = True,
            workdir: Path | None = None, log: Log = print) -> EarlyFiringResult:
    """One run (see the module's docstring); the result says when the early alert was stored."""
    if factor < 10:
        raise ValueError("the figure is defined for a spike of at least 10x the expected spend")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="burnguard-early-"))
    workdir.mkdir(parents=True, exist_ok=True)
    res = EarlyFiringResult(factor=factor, burst_s=burst_s,
                            lateness=Settings(_env_file=None).allowed_lateness_seconds)
    db = workdir / "bench.db"
    with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=partitions)
        with WorkerProcess(broker.url, f"sqlite:///{db}", workdir / "worker.log", early_firing="true",
                           idle_flush_seconds="120") as worker:
            wait_ready(worker, 120)
            asyncio.run(_run(broker.bootstrap, worker, db, res, confirm, log))
    log(f"[early firing] {res.text()}; logs in {workdir}")
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.early_firing", description=__doc__.splitlines()[0])
    ap.add_argument("--factor", type=float, default=10.0, help="spike calls per usual call in the spike minute")
    ap.add_argument("--burst", type=float, default=2.0, help="wall seconds the spike's calls are spread over")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--no-confirm", dest="confirm", action="store_false",
                    help="stop at the early alert (do not wait for the closed minute to continue it)")
    args = ap.parse_args(argv)
    res = measure(args.factor, args.burst, args.partitions, args.confirm)
    print(f"early firing, first spike event -> stored alert: {res.text()} (target <= {TARGET_S:.0f} s)")
    for c in res.checks:
        print(f"  {c}")
    if not res.ok:
        raise SystemExit("early firing: target not met")


if __name__ == "__main__":
    main()

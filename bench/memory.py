"""``python -m bench.memory``: memory per live series and restart recovery of the ``monitors`` table.

What a worker holds is one ``monitors`` entry per allocation key: the key and its
:class:`~streams.state.values.KeyMonitors`, all that key's series in one value encoded by
:mod:`streams.state.codec`. Here each key holds ``len(METRICS)`` series (one
:class:`~streams.state.values.SeriesState` per metric of :data:`~streams.state.values.METRICS`: the
default detector's monitor, seasonal_z), so ``n`` series are ``n / len(METRICS)`` keys and the figures
stay per series (and give the keys too). The series are real: 64 monitors trained on four days of
one-minute points, each series taking one of them one minute further, so no two values are equal.

1. **Store** (a fresh process per store and size, so RSS is its own): faust's own table store
   (``memory://``: a dict; ``rocksdb://``: rocksdict, faust's default options) filled through
   ``Store.apply_changelog_batch``, the call table recovery makes; RSS growth ÷ series after the fill,
   and for RocksDB again after every key was read once (a detection minute touches every key, and
   the block cache keeps what was read).
2. **Worker** (the embedded broker and a real ``burnguard worker``): the ``monitors`` changelog filled
   with encoded values, then the time from starting the worker to ``GET /ready`` = 200 (partitions
   assigned, table recovery done), and the worker's RSS, against a worker started on an empty
   changelog. With RocksDB, a second start on the same data directory (the restart case).

Targets (issue 13): <= 2 KB RSS per series at 10^6; recovery of 10^6 series <= 60 s.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.report import Row, met
from detectors.monitor import SeriesMonitor
from detectors.registry import make_detector
from streams.state.codec import encode
from streams.state.values import METRICS, KeyMonitors, SeriesState

T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
PROTOTYPES = 64
TRAIN_MINUTES = 4 * 1440
BATCH = 10_000
PARTITIONS = 4
TARGET_KB, TARGET_RECOVERY_S = 2.0, 60.0
#: The latest full run's figures (written by ``python -m bench.memory``; ``--save`` elsewhere for trial runs).
LATEST = Path(__file__).resolve().parent / "results" / "memory-latest.json"


# ------------------------------------------------------------------------------- the values

def rss_bytes(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/PID/status")


def _point(rng: random.Random, level: float, minute: int) -> float:
    day = math.sin(2 * math.pi * (minute % 1440) / 1440)
    return max(0.0, level * (1 + 0.3 * day + 0.08 * rng.gauss(0, 1)))


def keys_of(series: int) -> int:
    """The allocation keys holding ``series`` series (each holds one per metric).

    >>> keys_of(1_000_000) * len(METRICS) == 1_000_000
    True
    >>> keys_of(10)
    Traceback (most recent call last):
    ...
    ValueError: 10 series are not a whole number of keys of 8 series
    """
    keys, rest = divmod(series, len(METRICS))
    if rest or series <= 0:
        raise ValueError(f"{series} series are not a whole number of keys of {len(METRICS)} series")
    return keys


class KeyValues:
    """Encoded :class:`KeyMonitors` values of distinct allocation keys (each with one series per metric),
    and their keys, ``n`` keys at a time."""

    def __init__(self, seed: int = 13) -> None:
        self.rng = random.Random(seed)
        self.levels = [0.05 * 1.1 ** i for i in range(PROTOTYPES)]
        self.monitors = [SeriesMonitor(make_detector()) for _ in range(PROTOTYPES)]
        for m, level in zip(self.monitors, self.levels):
            for minute in range(TRAIN_MINUTES):
                m.observe(T0 + timedelta(minutes=minute), _point(self.rng, level, minute))
        self.minute = [TRAIN_MINUTES] * PROTOTYPES
        self.series = 0  # series taken so far (the next one takes prototype series % PROTOTYPES)
        self.keys = 0

    def key(self, i: int) -> str:
        return (f"team=t{i % 997:03d}|feature=f{i % 89:02d}|customer=c{i:07d}|model=m{i % 31:02d}"
                f"|environment=production")

    def take(self, n: int) -> list[tuple[bytes, bytes]]:
        """The next ``n`` keys and their values (``n * len(METRICS)`` series)."""
        out = []
        for _ in range(n):
            value = KeyMonitors()
            for metric in METRICS:  # consecutive prototypes (len(METRICS) <= PROTOTYPES): distinct monitors
                p = self.series % PROTOTYPES
                m, minute = self.monitors[p], self.minute[p]
                at = T0 + timedelta(minutes=minute)
                m.observe(at, _point(self.rng, self.levels[p], minute))
                self.minute[p] = minute + 1
                value.set(metric, SeriesState(seq=minute, at=at.timestamp(), monitor=m))
                self.series += 1
            out.append((self.key(self.keys).encode(), encode(value)))  # encoded before its prototypes move on
            self.keys += 1
        return out


# ------------------------------------------------------------------------------- 1. the store alone

@dataclass(slots=True, frozen=True)
class _TP:
    topic: str
    partition: int


@dataclass(slots=True)
class _Message:
    key: bytes
    value: bytes
    partition: int
    offset: int
    tp: _TP


@dataclass(slots=True)
class _Event:
    """What ``Store.apply_changelog_batch`` reads of a changelog event."""

    key: bytes
    value: bytes
    message: _Message


def _store(url: str, datadir: str) -> Any:
    import faust

    app = faust.App("bench-memory", store=url, datadir=datadir, value_serializer="raw")
    table = app.Table("monitors", value_type=bytes, partitions=PARTITIONS)
    return table.data


def measure_store(url: str, n: int) -> dict[str, Any]:
    """(In a fresh process.) Fill faust's ``url`` store with ``n`` series (``n / len(METRICS)`` keys) as
    recovery does; RSS growth."""
    keys, values = keys_of(n), KeyValues()
    tps = [_TP("bench-memory-monitors-changelog", p) for p in range(PARTITIONS)]
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as datadir:
        store = _store(url, datadir)
        gc.collect()
        rss0, encoded, apply_s, offsets = rss_bytes(), 0, 0.0, [0] * PARTITIONS
        for start in range(0, keys, BATCH):
            batch = []
            for key, value in values.take(min(BATCH, keys - start)):
                p = hash(key) % PARTITIONS
                batch.append(_Event(key, value, _Message(key, value, p, offsets[p], tps[p])))
                offsets[p] += 1
                encoded += len(value)
            t = time.perf_counter()
            store.apply_changelog_batch(batch, lambda k: k, lambda v: v)
            apply_s += time.perf_counter() - t
            del batch
        gc.collect()
        out: dict[str, Any] = {"store": url, "series": n, "keys": keys, "encoded_bytes": encoded / n,
                               "encoded_bytes_per_key": encoded / keys, "apply_s": apply_s,
                               "rss_growth": rss_bytes() - rss0}
        if url.startswith("rocksdb"):  # found: keys
            t, found = time.perf_counter(), 0
            for i in range(keys):
                found += store[values.key(i).encode()] is not None
            out["read_all_s"], out["found"] = time.perf_counter() - t, found
            out["rss_growth_after_reads"] = rss_bytes() - rss0
            out["disk_bytes"] = sum(f.stat().st_size for f in Path(datadir).rglob("*") if f.is_file())
        else:
            out["found"] = len(store.data)
    return out


def store_figure(url: str, n: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "bench.memory", "store", url, str(n)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"bench.memory store {url} {n} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------- 2. a real worker

def fill_changelog(bootstrap: str, topic: str, n: int) -> float:
    """Publish ``n`` series (``n / len(METRICS)`` keys' encoded values) to ``topic`` as a worker's table writes
    them (key: the JSON string, Faust's table key serializer; value: the codec bytes; default partitioner);
    seconds taken."""
    import asyncio

    from aiokafka import AIOKafkaProducer

    async def fill() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20,
                                    max_request_size=8 << 20, acks=1)
        await producer.start()
        try:
            keys, values = keys_of(n), KeyValues()
            for start in range(0, keys, BATCH):
                for key, value in values.take(min(BATCH, keys - start)):
                    await producer.send(topic, key=json.dumps(key.decode()).encode(), value=value)
            await producer.flush()
        finally:
            await producer.stop()

    t = time.perf_counter()
    asyncio.run(fill())
    return time.perf_counter() - t


def wait_ready(worker: Any, timeout: float) -> float:
    """Seconds from now until the worker's ``/ready`` answers 200 (polled every 0.2 s, bounded)."""
    url = f"http://127.0.0.1:{worker.env['BURNGUARD_WEB_PORT']}/ready"
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        worker.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"worker not ready after {timeout:.0f} s")


def start_until_ready(work: Path, broker_url: str, name: str, app_id: str, store: str,
                      timeout: float) -> tuple[float, int]:
    """Start a worker, time it to ``/ready``, read its RSS, stop it; (seconds, RSS bytes)."""
    from streams.harness.worker_process import WorkerProcess

    worker = WorkerProcess(broker_url, f"sqlite:///{work / 'bench.db'}", work / f"{name}.log", app_id=app_id,
                           table_store=store, data_dir=str(work / f"data-{app_id}"))
    with worker:
        seconds = wait_ready(worker, timeout)
        assert worker.process is not None
        return seconds, rss_bytes(worker.process.pid)


def worker_figures(n: int, stores: list[str], timeout: float) -> list[dict[str, Any]]:
    from streams.embedded_broker import EmbeddedBroker, create_topics
    from streams.settings import ALL_TOPICS

    out = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp, EmbeddedBroker() as broker:
        work = Path(tmp)
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=PARTITIONS)
        for store in stores:
            scheme = store.split(":")[0]
            empty_s, empty_rss = start_until_ready(work, broker.url, f"{scheme}-empty", f"bm-{scheme}-empty",
                                                   store, timeout)
            app_id = f"bm-{scheme}-{n}"
            topic = f"{app_id}-monitors-changelog"
            create_topics(broker.bootstrap, [topic], partitions=PARTITIONS)
            fill_s = fill_changelog(broker.bootstrap, topic, n)
            ready_s, rss = start_until_ready(work, broker.url, f"{scheme}-full", app_id, store, timeout)
            row = {"store": store, "series": n, "keys": keys_of(n), "fill_s": fill_s, "empty_ready_s": empty_s,
                   "ready_s": ready_s, "rss_growth": rss - empty_rss, "rss": rss}
            if scheme == "rocksdb":  # the same data directory: a restart reads only what is new
                row["restart_ready_s"], _ = start_until_ready(work, broker.url, f"{scheme}-restart", app_id,
                                                              store, timeout)
            out.append(row)
            print(json.dumps(row), flush=True)
    return out


# ------------------------------------------------------------------------------- the table

def _kb(b: float) -> str:
    return f"{b / 1024:.2f} KB"


def _in_keys(r: dict[str, Any]) -> str:
    """`` in K keys`` (figures kept before the one-value-per-key layout have no keys)."""
    return f" in {r['keys']:,} keys" if "keys" in r else ""


def table(store_rows: list[dict[str, Any]], worker_rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    rows = []
    for r in store_rows:
        per = r["rss_growth"] / r["series"]
        rows.append((f"RSS/series, {r['store']} store, {r['series']:,} series{_in_keys(r)} "
                     f"(encoded {r['encoded_bytes']:.0f} B/series)", f"<= {TARGET_KB:.0f} KB", _kb(per)))
        if "rss_growth_after_reads" in r:
            rows.append((f"  ... after reading every key once (disk {r['disk_bytes'] / 1e6:.0f} MB)",
                         f"<= {TARGET_KB:.0f} KB", _kb(r["rss_growth_after_reads"] / r["series"])))
    for r in worker_rows:
        rows.append((f"worker start -> /ready, {r['store']}, {r['series']:,} series{_in_keys(r)} "
                     "in the changelog",
                     f"<= {TARGET_RECOVERY_S:.0f} s", f"{r['ready_s']:.1f} s (empty: {r['empty_ready_s']:.1f} s)"))
        rows.append((f"worker RSS/series after recovery, {r['store']}", f"<= {TARGET_KB:.0f} KB",
                     _kb(r["rss_growth"] / r["series"])))
        if "restart_ready_s" in r:
            rows.append((f"worker restart on its data dir -> /ready, {r['store']}", f"<= {TARGET_RECOVERY_S:.0f} s",
                         f"{r['restart_ready_s']:.1f} s"))
    return rows


def report_rows(store_rows: list[dict[str, Any]], worker_rows: list[dict[str, Any]], label: str = "") -> list[Row]:
    """The figures as rows of ``make bench``'s table (met: at or under the target)."""
    rows = []
    for figure, target, measured in table(store_rows, worker_rows):
        value = float(measured.split()[0])
        limit = TARGET_KB if target.endswith("KB") else TARGET_RECOVERY_S
        rows.append(Row(f"{label}{figure.strip()}", target.replace("<=", "≤"), measured, "", met(value <= limit)))
    return rows


def save_latest(path: Path, store_rows: list[dict[str, Any]], worker_rows: list[dict[str, Any]],
                argv: list[str]) -> None:
    """Keep this run's figures (what ``make bench --memory latest`` prints, with when and how they were made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "command": " ".join(["python -m bench.memory", *argv]), "store": store_rows, "worker": worker_rows}
    path.write_text(json.dumps(doc, indent=1) + "\n")


def load_latest(path: Path = LATEST) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def print_table(rows: list[tuple[str, str, str]]) -> None:
    w = max(len(r[0]) for r in rows)
    print(f"\n{'figure':{w}}  {'target':>8}  measured")
    for figure, target, measured in rows:
        print(f"{figure:{w}}  {target:>8}  {measured}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd")
    one = sub.add_parser("store", help="(internal) one store measurement in this process")
    one.add_argument("url")
    one.add_argument("n", type=int)
    ap.add_argument("--series", type=int, nargs="*", default=[100_000, 1_000_000], help="store sizes")
    ap.add_argument("--stores", nargs="+", default=["memory://", "rocksdb://"])
    ap.add_argument("--worker-series", type=int, default=1_000_000, help="0: skip the worker recovery")
    ap.add_argument("--timeout", type=float, default=600.0, help="longest wait for a worker's /ready")
    ap.add_argument("--save", type=Path, default=LATEST, help="where to keep the figures (JSON)")
    args = ap.parse_args(argv)
    sizes = [args.n] if args.cmd == "store" else [*args.series, *([args.worker_series] if args.worker_series else [])]
    for n in sizes:
        try:
            keys_of(n)
        except ValueError as err:
            ap.error(str(err))
    if args.cmd == "store":
        print(json.dumps(measure_store(args.url, args.n)))
        return
    store_rows = []
    for store in args.stores:
        for n in args.series:
            store_rows.append(store_figure(store, n))
            print(json.dumps(store_rows[-1]), flush=True)
    worker_rows = worker_figures(args.worker_series, args.stores, args.timeout) if args.worker_series else []
    print_table(table(store_rows, worker_rows))
    save_latest(args.save, store_rows, worker_rows, sys.argv[1:] if argv is None else argv)
    print(f"figures kept in {args.save}")


if __name__ == "__main__":
    main()

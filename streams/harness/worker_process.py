"""Run ``burnguard worker`` as a subprocess, and watch what it emits (demo and tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from datetime import datetime
from pathlib import Path
from types import TracebackType

from schemas.alert import Alert
from schemas.bucket import Bucket, load_batch
from schemas.cost import AllocationKey
from sinks.store import AlertStore
from streams.embedded_broker import free_port
from streams.rollups import rollup_of
from streams.settings import ALERTS_TOPIC, BUCKETS_TOPIC
from streams.harness.topic_reader import TopicReader


class WorkerFailed(RuntimeError):
    pass


class WorkerProcess:
    """A worker pointed at ``broker_url`` and ``database_url``; extra settings as BURNGUARD_* env."""

    def __init__(self, broker_url: str, database_url: str, log_path: Path, **settings: str) -> None:
        self.log_path = log_path
        self.env = {**os.environ, "BURNGUARD_BROKER": broker_url, "BURNGUARD_DATABASE_URL": database_url,
                    "BURNGUARD_WEB_PORT": str(free_port()), "BURNGUARD_IDLE_FLUSH_SECONDS": "3",
                    **{f"BURNGUARD_{k.upper()}": v for k, v in settings.items()}}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "WorkerProcess":
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "info"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.log_path.parent)
        return self

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise WorkerFailed(f"the worker exited with {code}; log tail:\n{tail}")

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> "WorkerProcess":
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def last_minutes(events: Iterable[dict[str, Any]], rollups: Sequence[Sequence[str]]) -> dict[str, datetime]:
    """The last event minute of every key native LLM ``events`` fill, roll-up keys included:
    what :func:`wait_for_buckets` waits for."""
    out: dict[str, datetime] = {}
    for e in events:
        minute = datetime.fromisoformat(e["timestamp"]).replace(second=0, microsecond=0)
        key = str(AllocationKey(model=e["model"], **e["tags"]))
        for k in (key, *(rollup_of(key, level) for level in rollups)):
            if k not in out or out[k] < minute:
                out[k] = minute
    return out


def wait_for_buckets(worker: WorkerProcess, bootstrap: str, last_minute: dict[str, datetime],
                     timeout: float, on_progress: Callable[[int, int], None] | None = None) -> list[Bucket]:
    """Follow the buckets topic until every key's last minute has closed; return every bucket seen, each
    batch once (a batch re-emitted after a crash carries the same ``(key, seq)``: counted once, as every
    consumer of the topic does)."""
    reader = TopicReader(bootstrap, BUCKETS_TOPIC)
    done: set[str] = set()
    batches: dict[tuple[str, int], list[Bucket]] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(done) < len(last_minute):
            worker.check_alive()
            if time.monotonic() > deadline:
                raise WorkerFailed(f"timed out: {len(done)}/{len(last_minute)} keys fully processed")
            for value in reader.poll():
                try:
                    batch = load_batch(value)
                except ValueError:  # not the worker's (the agents quarantine such messages)
                    continue
                batches.setdefault((batch.key, batch.seq), batch.buckets)
                for bucket in batch.buckets:
                    if bucket.key in last_minute and bucket.start >= last_minute[bucket.key]:
                        done.add(bucket.key)
            if on_progress:
                on_progress(len(done), sum(not b.late for bs in batches.values() for b in bs))
    finally:
        reader.close()
    return [b for bs in batches.values() for b in bs]


def wait_for_alerts(worker: WorkerProcess, bootstrap: str, database_url: str, timeout: float,
                    settle: float = 2.0) -> list[Alert]:
    """Wait until the store reflects every alert on the alerts topic; return the stored alerts."""
    reader = TopicReader(bootstrap, ALERTS_TOPIC)
    store = AlertStore(database_url)
    history: dict[str, list[str]] = {}  # fingerprint -> its statuses in topic order (one partition per series)
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    try:
        while True:
            new = [Alert.model_validate_json(v) for v in reader.poll(timeout_ms=300)]
            if new:
                quiet_since = time.monotonic()
            for a in new:
                history.setdefault(a.fingerprint, []).append(a.status)
            stored = store.alerts()
            in_store = {a.fingerprint: a.status for a in stored}
            behind = {f: (seen, in_store.get(f)) for f, seen in history.items() if in_store.get(f) != seen[-1]}
            if not behind and time.monotonic() - quiet_since > settle:
                return stored
            worker.check_alive()
            if time.monotonic() > deadline:
                names = {a.fingerprint: f"{a.series_key} {a.metric}" for a in stored}
                raise WorkerFailed("the store did not catch up with the alerts topic: (statuses on the topic, "
                                   f"in the store) {[(names.get(f, f), b) for f, b in behind.items()]}")
    finally:
        reader.close()
        store.close()

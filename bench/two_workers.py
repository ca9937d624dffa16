"""Two workers in one consumer group: their combined rate on a native-envelope backlog, and the spend check.

    python -m bench.two_workers [--events 200000]

The same workload and measurements as ``bench.throughput``'s ``native-env`` shape (a fresh embedded broker,
``--partitions`` 4, ``--keys`` 50,000 allocation keys, envelopes of 500 events; the raw aiokafka consumer
baseline first), but two ``burnguard worker`` processes (same app id = one consumer group, their own web
ports and working directories, one database) are started together on the backlog, so the group's first
rebalance is inside the measured time, as it is for a group started on a backlog. *Drained* runs from the
first cost record either worker wrote until aggregate and budgets have consumed every internal message
derived from the backlog (the group's committed offsets); *sustained* is usage consumed between 10 % and
90 % of the backlog. Then, as in ``bench.throughput``, stored spend must equal published spend exactly.
Both workers share the machine's two cores with the broker and this process.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.throughput import baseline, bucket_totals, cpu_seconds, follow, publish
from bench.workload import Workload
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.worker_process import WorkerProcess
from streams.settings import ALL_TOPICS, Settings


Log = Callable[[str], None]

class Group:
    """Both workers, watched as one: ``check_alive`` fails if either exited."""

    def __init__(self, workers: list[WorkerProcess]) -> None:
        self.workers = workers

    def check_alive(self) -> None:
        for w in self.workers:
            w.check_alive()


@dataclass
class TwoWorkersResult:
    events: int
    baseline: float = 0.0
    sustained: float = 0.0
    drained: float = 0.0
    cpu: list[float] = field(default_factory=list)  # cores per worker while draining
    spend_ok: bool = False
    checks: list[str] = field(default_factory=list)


def measure(events: int, keys: int = 50_000, partitions: int = 4, batch: int = 500, event_rate: float = 150_000.0,
            timeout: float = 1800.0, workdir: Path | None = None, log: Log = print) -> TwoWorkersResult:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="burnguard-two-workers-"))
    workdir.mkdir(parents=True, exist_ok=True)
    w = Workload(shape="native", events=events, batch=batch, keys=keys, partitions=partitions,
                 span_s=max(1.0, events / event_rate))
    res = TwoWorkersResult(events)
    levels = len(Settings(_env_file=None).rollups)
    log(f"[two-workers] generating {events:,} events ...")
    messages = w.messages()
    db = f"sqlite:///{workdir / 'bench.db'}"
    with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=partitions)
        asyncio.run(publish(broker.bootstrap, messages))
        del messages
        res.baseline = asyncio.run(baseline(broker.bootstrap, partitions, events))
        log(f"[two-workers] baseline {res.baseline:,.0f} events/s; starting two workers in one group ...")
        dirs = [workdir / f"worker{i}" for i in (1, 2)]
        for d in dirs:
            d.mkdir()
        workers = [WorkerProcess(broker.url, db, d / "worker.log") for d in dirs]
        try:
            for wp in workers:
                wp.start()
            group = Group(workers)
            pids = [wp.process.pid for wp in workers if wp.process is not None]
            cpu0, wall0 = [cpu_seconds(p) for p in pids], time.time()
            res.sustained, res.drained, _ = asyncio.run(follow(group, broker.bootstrap, w, timeout))  # type: ignore[arg-type]
            wall = time.time() - wall0
            res.cpu = [(cpu_seconds(p) - c) / wall for p, c in zip(pids, cpu0)]
            log(f"[two-workers] sustained {res.sustained:,.0f} events/s, drained {res.drained:,.0f} events/s; "
                "checking spend ...")
            totals = bucket_totals(group, broker.bootstrap, w, levels, timeout)  # type: ignore[arg-type]
        finally:
            for wp in workers:
                wp.stop()
    full_spend, full_req = totals["full"]
    roll_spend, roll_req = totals["rollup"]
    res.checks.append(f"full keys: spend {full_spend!r} vs published {w.spend_usd!r}, requests {full_req:,.0f} vs "
                      f"{w.requests:,}")
    res.checks.append(f"roll-ups ({levels} levels): spend {roll_spend!r} vs {w.spend_usd * levels!r}, requests "
                      f"{roll_req:,.0f} vs {w.requests * levels:,}")
    res.spend_ok = (full_spend == w.spend_usd and full_req == w.requests and roll_spend == w.spend_usd * levels
                    and roll_req == w.requests * levels)
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.two_workers", description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--keys", type=int, default=50_000)
    ap.add_argument("--partitions", type=int, default=4)
    args = ap.parse_args(argv)
    res = measure(args.events, args.keys, args.partitions)
    print(f"baseline {res.baseline:,.0f} events/s; two workers: sustained {res.sustained:,.0f}, drained "
          f"{res.drained:,.0f} events/s; CPU {' + '.join(f'{c:.2f}' for c in res.cpu)} cores")
    for c in res.checks:
        print(f"  {c}")
    if not res.spend_ok:
        raise SystemExit("spend check FAILED")
    print("spend check passed")


if __name__ == "__main__":
    main()

"""``burnguard demo``: broker + worker + a replayed day of LLM usage with one injected spike."""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from schemas.cost import AllocationKey
from sinks.kafka_producer import UsageProducer
from streams.rollups import is_rollup
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.settings import ALL_TOPICS, Settings
from streams.harness.synthetic import DEFAULT_SPIKE, SyntheticDay
from streams.harness.worker_process import WorkerProcess, last_minutes, wait_for_alerts, wait_for_buckets


def run(args: argparse.Namespace) -> int:
    console = Console()
    settings = Settings()
    workdir = Path(tempfile.mkdtemp(prefix="burnguard-demo-"))
    database_url = f"sqlite:///{workdir / 'demo.db'}"
    day = SyntheticDay(date.today() - timedelta(days=1), minutes=args.minutes)
    t_start = time.monotonic()
    with EmbeddedBroker(log_path=workdir / "broker.log") as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, settings.partitions)
        console.print(f"[bold]burnguard demo[/] embedded broker at {broker.bootstrap}; work dir {workdir}")
        with WorkerProcess(broker.url, database_url, workdir / "worker.log") as worker:
            events = list(day.events())
            last_minute = last_minutes(events, settings.rollups)
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console) as progress:
                task = progress.add_task("replaying usage events", total=None)
                with UsageProducer(broker.bootstrap, stream_key="demo") as producer:
                    for event in events:
                        producer.send("llm", event)
                        if producer.sent_events % 2000 == 0:
                            progress.update(task, completed=producer.sent_events)
                    producer.flush()
                    sent = producer.sent_events
                progress.update(task, total=sent, completed=sent)
                closing = progress.add_task("closing 1-minute buckets", total=len(last_minute))
                buckets = wait_for_buckets(
                    worker, broker.bootstrap, last_minute, args.timeout,
                    lambda keys, n: progress.update(closing, completed=keys,
                                                    description=f"closing 1-minute buckets ({n})"))
            alerts = wait_for_alerts(worker, broker.bootstrap, database_url, timeout=30)
    scored = sum(not b.late for b in buckets)
    elapsed = time.monotonic() - t_start
    spike_at = day.start + timedelta(minutes=DEFAULT_SPIKE.start_minute)
    console.print(f"[bold]{len(alerts)} alert(s) raised[/] (`burnguard alerts` lists them as a table):")
    firing = [a for a in alerts if a.metric == "cost_per_inference"]
    for a in alerts:
        k = AllocationKey.parse(a.series_key)
        what = (k.team if k.team != "*" else "all teams") if is_rollup(a.series_key) \
            else f"{k.team}/{k.feature} on {k.model}"
        delay = (a.started_at - spike_at).total_seconds() / 60
        console.print(f"  [red]{escape(what)}[/] {a.metric.replace('_', ' ')}: {a.observed:.4g} vs baseline "
                      f"{a.baseline:.4g} ({a.ratio:.1f}x) from {a.started_at:%H:%M} UTC "
                      f"({delay:+.0f} min from the injected spike), {a.status}")
        for c in a.contributors:
            console.print(f"      top contributor {escape(c.key)}: +${c.impact_usd:.4f}/min "
                          f"(${c.observed:.4f} vs ${c.baseline:.4f})")
    console.print(f"[bold]summary[/]: {sent} events, {len(last_minute)} series keys (roll-ups included), "
                  f"{scored} buckets scored, {len(alerts)} alert(s) ({len(firing)} cost-per-inference) "
                  f"in {elapsed:.0f}s; injected spike {DEFAULT_SPIKE.stream} at {spike_at:%H:%M} UTC")
    if not firing:
        console.print("[red]the injected spike was not detected[/]")
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="replay a synthetic day with an injected spike and show the alert")
    p.add_argument("--minutes", type=int, default=24 * 60, help="length of the replayed day")
    p.add_argument("--timeout", type=float, default=150.0, help="seconds to wait for the worker")
    p.set_defaults(func=run)

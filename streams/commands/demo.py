"""``burnguard demo``: broker + worker + a replayed day of LLM usage with one injected spike.

Act one: the spike is caught (cost-per-inference alerts with their top contributors). Act two: the
spike also pushes the ads team over its daily budget (``streams/harness/demo_budgets.yaml``); the
demo policy (``streams/harness/demo_policy.yaml``) decides each overrun, and the demo prints the
decisions as ``guardrail.decisions`` carried them and the approval requests left pending.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from guardrails.approvals import ApprovalRequest
from schemas.cost import AllocationKey
from schemas.decision import Decision
from schemas.overrun import Overrun
from sinks.guardrail_store import GuardrailStore
from sinks.kafka_producer import UsageProducer
from streams.rollups import is_rollup
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.settings import ALL_TOPICS, DECISIONS_TOPIC, OVERRUNS_TOPIC, Settings
from streams.harness.synthetic import DEFAULT_SPIKE, SyntheticDay
from streams.harness.topic_reader import TopicReader
from streams.harness.worker_process import (WorkerFailed, WorkerProcess, last_minutes, wait_for_alerts,
                                            wait_for_buckets)

HARNESS = Path(__file__).resolve().parents[1] / "harness"
DEMO_BUDGETS, DEMO_POLICY = HARNESS / "demo_budgets.yaml", HARNESS / "demo_policy.yaml"


def wait_for_decisions(worker: WorkerProcess, bootstrap: str, timeout: float) -> list[Decision]:
    """Wait until every overrun on ``guardrail.overruns`` has its policy decision on ``guardrail.decisions``
    (and nothing new arrived for a moment); return the decisions, each once."""
    overruns, decisions = TopicReader(bootstrap, OVERRUNS_TOPIC), TopicReader(bootstrap, DECISIONS_TOPIC)
    wanted: set[str] = set()
    seen: dict[str, Decision] = {}
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    try:
        while True:
            new_ov = [Overrun.model_validate_json(v).overrun_id for v in overruns.poll(timeout_ms=200)]
            new_d = [Decision.model_validate_json(v) for v in decisions.poll(timeout_ms=200)]
            if new_ov or new_d:
                quiet_since = time.monotonic()
            wanted.update(new_ov)
            seen.update((d.decision_id, d) for d in new_d)
            decided = {d.overrun_id for d in seen.values() if d.step == 0}
            if wanted <= decided and time.monotonic() - quiet_since > 2.0:
                return sorted(seen.values(), key=lambda d: (d.decided_at, d.step))
            worker.check_alive()
            if time.monotonic() > deadline:
                raise WorkerFailed(f"{len(decided)} of {len(wanted)} overrun(s) decided within {timeout:.0f}s")
    finally:
        overruns.close()
        decisions.close()


def print_guardrails(console: Console, decisions: list[Decision], database_url: str, spike_at: datetime) -> None:
    """Act two: each overrun with the policy's decision, then the approval requests left pending."""
    store = GuardrailStore(database_url)
    try:
        overruns = {d.overrun_id: store.overrun(d.overrun_id) for d in decisions}
        pending: list[ApprovalRequest] = store.approvals(state="pending")
    finally:
        store.close()
    console.print(f"[bold]{len(decisions)} guardrail decision(s)[/] on {DECISIONS_TOPIC} "
                  f"(policy {escape(DEMO_POLICY.name)}; `burnguard audit` lists the records):")
    for d in decisions:
        ov = overruns.get(d.overrun_id)
        if ov is not None:
            delay = (ov.at - spike_at).total_seconds() / 60
            console.print(f"  [yellow]{escape(d.budget_id)}[/] {escape(ov.rule)} at {ov.at:%H:%M} UTC "
                          f"({delay:+.0f} min from the injected spike): ${ov.spend_usd:,.2f} of ${ov.cap_usd:,.2f} "
                          f"spent, forecast ${ov.forecast_usd:,.2f} ({escape(ov.forecast_method or 'projection')}), "
                          f"${ov.overrun_usd:,.2f} over")
        what = {"grant": f"grant ${d.amount_usd or 0:,.2f}"
                         + (f" until {d.expires_at:%Y-%m-%d %H:%M} UTC" if d.expires_at else ""),
                "escalated": f"escalated to {escape(d.group or '?')} for ${d.amount_usd or 0:,.2f}"
                             + (f", deadline {d.deadline:%Y-%m-%d %H:%M} UTC" if d.deadline else "")}
        console.print(f"      -> rule [bold]{escape(d.rule)}[/]: {what.get(d.action, escape(d.action))}"
                      + (f" ({escape(d.reason)})" if d.reason else ""))
    console.print(f"[bold]{len(pending)} approval request(s) pending[/] (`burnguard approvals --state pending`):")
    for r in pending:
        console.print(f"  {escape(r.approval_id)}: ${r.amount_usd:,.2f} on {escape(r.budget_id)} for "
                      f"{escape(r.group)} (rule {escape(r.rule)}), deadline {r.deadline:%Y-%m-%d %H:%M} UTC")
    if pending:
        console.print(f"  approve it with: BURNGUARD_DATABASE_URL={escape(database_url)} "
                      f"burnguard approve {escape(pending[0].approval_id)} --as sam --reason 'launch week'")


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
        with WorkerProcess(broker.url, database_url, workdir / "worker.log", budgets=str(DEMO_BUDGETS),
                           policy=str(DEMO_POLICY)) as worker:
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
            decisions = wait_for_decisions(worker, broker.bootstrap, timeout=30)
    scored = sum(not b.late for b in buckets)
    elapsed = time.monotonic() - t_start
    spike_at = day.start + timedelta(minutes=DEFAULT_SPIKE.start_minute)
    console.print(f"[bold]{len(alerts)} alert(s) raised[/] (`burnguard alerts` lists them as a table):")
    firing = [a for a in alerts if a.metric == "cost_per_inference"]
    for a in alerts:
        delay = (a.started_at - spike_at).total_seconds() / 60
        if a.series_key.startswith("budget="):  # a budget's threshold or burn rate (act two decides it)
            console.print(f"  [yellow]budget {escape(a.series_key.removeprefix('budget='))}[/] "
                          f"{escape(a.metric.removeprefix('budget.'))}: {escape(a.summary or '')} from "
                          f"{a.started_at:%H:%M} UTC ({delay:+.0f} min from the injected spike), {a.status}")
            continue
        k = AllocationKey.parse(a.series_key)
        what = (k.team if k.team != "*" else "all teams") if is_rollup(a.series_key) \
            else f"{k.team}/{k.feature} on {k.model}"
        console.print(f"  [red]{escape(what)}[/] {a.metric.replace('_', ' ')}: {a.observed:.4g} vs baseline "
                      f"{a.baseline:.4g} ({a.ratio:.1f}x) from {a.started_at:%H:%M} UTC "
                      f"({delay:+.0f} min from the injected spike), {a.status}")
        for c in a.contributors:
            console.print(f"      top contributor {escape(c.key)}: +${c.impact_usd:.4f}/min "
                          f"(${c.observed:.4f} vs ${c.baseline:.4f})")
    console.print(f"[bold]summary[/]: {sent} events, {len(last_minute)} series keys (roll-ups included), "
                  f"{scored} buckets scored, {len(alerts)} alert(s) ({len(firing)} cost-per-inference) "
                  f"in {elapsed:.0f}s; injected spike {DEFAULT_SPIKE.stream} at {spike_at:%H:%M} UTC")
    print_guardrails(console, decisions, database_url, spike_at)
    if not firing:
        console.print("[red]the injected spike was not detected[/]")
        return 1
    if not decisions:
        console.print("[red]no budget overrun was decided[/]")
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="replay a synthetic day with an injected spike and show the alert")
    p.add_argument("--minutes", type=int, default=24 * 60, help="length of the replayed day")
    p.add_argument("--timeout", type=float, default=150.0, help="seconds to wait for the worker")
    p.set_defaults(func=run)

"""``make bench``: every speed figure of issue 13 in one run, printed as one table.

    python -m bench.run [--events 1000000] [--memory run|latest|skip] [...]

In order, each on its own fresh embedded broker (logs under one temporary directory):

1. **throughput** (:mod:`bench.throughput`): the four shapes (native / LiteLLM events, in envelopes / one
   per message) against a raw aiokafka consumer decoding the same messages, with the exact spend check;
2. **processing latency** (:mod:`bench.latency`): a live load at half the rate the whole worker sustains
   on ``native-env`` as just measured, i.e. half its *drained* rate (its "sustained" figure is usage
   consumption by normalize alone: at half of that, aggregate and detect fall further behind every minute
   and latency has no steady value; ``--latency-of sustained`` measures that anyway); p50 / p99 from a
   minute becoming closable to its alerts stored (and to its buckets emitted);
3. **two workers** in one consumer group (:mod:`bench.two_workers`): combined rate, spend check;
4. **``burnguard publish``** of a LiteLLM JSON-lines file through the CLI (:mod:`bench.publish_rate`);
5. **memory per live series** at 10^5 / 10^6 and **restart recovery** (:mod:`bench.memory`) with
   ``--memory run`` (the default; minutes), or its latest kept figures with ``--memory latest``
   (labelled with when and by which command they were made), or nothing with ``--memory skip``;
6. **early firing** (:mod:`bench.early_firing`): a worker with ``BURNGUARD_EARLY_FIRING=true``, one warmed key
   and a live ≥ 10× spike: wall time from the spike's first events to its alert stored, before the minute
   closes, and that the closed minute continued the same incident (``--early-firing skip`` leaves it out).

Then one table (figure, target, measured, ratio to the baseline of the same run, met), the spend checks
last; the exit status is non-zero if a spend check or a measurement failed (a failed measurement is a
row of the table, and the others still run).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import early_firing, latency, publish_rate, two_workers
from bench.memory import LATEST, load_latest, report_rows
from bench.report import Row, format_table, met, ratio
from bench.throughput import SHAPES, Result, run_shape

Log = Callable[[str], None]

EARLY_FIRING = "early firing: ≥ 10× live spike, first events → stored alert"


def throughput_rows(results: list[Result]) -> list[Row]:
    rows = []
    for r in results:
        single = r.shape.endswith("-msg")
        unit = "msgs/s" if single else "events/s"
        label = f"{r.shape} ({r.events:,} events, {r.payload_bytes / max(r.events, 1):,.0f} B each, {r.keys:,} keys)"
        rows.append(Row(f"{label}: raw aiokafka + JSON (baseline)", "", f"{r.baseline:,.0f} {unit}", "1.000×"))
        rows.append(Row(f"{r.shape}: Normalizer alone (no Kafka)", "", f"{r.normalizer:,.0f} {unit}",
                        ratio(r.normalizer, r.baseline)))
        for name, value in (("sustained (usage consumed 10→90 %)", r.sustained),
                            ("drained (first cost → aggregate, budgets caught up)", r.drained)):
            if single:
                target, ok = "≥ 10k msgs/s", value >= 10_000
            elif r.shape == "native-env":
                target, ok = "≥ 150k/s, ≥ 0.30×", value >= 150_000 and value >= 0.3 * r.baseline
            else:
                target, ok = "≥ 0.30×", value >= 0.3 * r.baseline
            rows.append(Row(f"{r.shape}: worker {name}", target, f"{value:,.0f} {unit}", ratio(value, r.baseline),
                            met(ok)))
        rows.append(Row(f"{r.shape}: worker end to end (incl. 3 s idle close, scoring, store)", "",
                        f"{r.end_to_end:,.0f} {unit}", ratio(r.end_to_end, r.baseline)))
        rows.append(Row(f"{r.shape}: CPU while draining, worker / broker (cores)", "",
                        f"{r.worker_cpu:.2f} / {r.broker_cpu:.2f}"))
        rows.append(Row(f"{r.shape}: 'producer buffer full' warnings", "0", str(r.buffer_full), "",
                        met(r.buffer_full == 0)))
    return rows


def latency_rows(res: latency.LatencyResult, basis: str) -> list[Row]:
    half = f"half of native-env {basis}" if basis else "--latency-rate"
    a = res.alerts
    return [
        Row(f"live load for latency ({half}), events/s asked / achieved", "",
            f"{res.rate_asked:,.0f} / {res.rate_achieved:,.0f}"),
        Row("processing latency: minute closable (end + lateness) → alert stored", "p99 ≤ 2 s", a.text(), "",
            met(a.n > 0 and a.p99 <= latency.TARGET_P99_S)),
        Row("  worker's burnguard_alert_latency_seconds: samples / ≤ 2 s", "",
            f"{res.worker_histogram_count:.0f} / {res.worker_histogram_le2:.0f}"),
        Row("  minute closable → bucket emitted, every key and roll-up", "", res.buckets.text()),
        Row("  minute closable → bucket emitted, full keys only", "", res.full_buckets.text()),
    ]


def two_worker_rows(res: two_workers.TwoWorkersResult, one: Result | None) -> list[Row]:
    vs = f"; one worker {one.drained:,.0f}" if one is not None else ""
    return [
        Row(f"two workers, one group ({res.events:,} native events in envelopes): raw aiokafka + JSON (baseline)",
            "", f"{res.baseline:,.0f} events/s", "1.000×"),
        Row("two workers: combined sustained (usage consumed 10→90 %)", "", f"{res.sustained:,.0f} events/s",
            ratio(res.sustained, res.baseline)),
        Row("two workers: combined drained (first cost → aggregate, budgets caught up)", "",
            f"{res.drained:,.0f} events/s{vs}", ratio(res.drained, res.baseline)),
        Row("two workers: CPU while draining (cores each)", "", " + ".join(f"{c:.2f}" for c in res.cpu)),
    ]


def publish_rows(res: publish_rate.PublishResult) -> list[Row]:
    size = res.file_bytes / max(res.lines, 1)
    return [
        Row(f"burnguard publish --source llm FILE ({res.lines:,} LiteLLM lines, {size:,.0f} B each)",
            f"≥ {publish_rate.TARGET_LINES_S // 1000}k lines/s", f"{res.publish_lines_s:,.0f} lines/s",
            ratio(res.publish_lines_s, res.baseline), met(res.publish_lines_s >= publish_rate.TARGET_LINES_S)),
        Row("  burnguard publish --check FILE (validate only, nothing sent)", "", f"{res.check_lines_s:,.0f} lines/s",
            ratio(res.check_lines_s, res.baseline)),
        Row("  raw aiokafka + JSON of what publish wrote (baseline)", "", f"{res.baseline:,.0f} events/s", "1.000×"),
    ]


def memory_rows(mode: str, series: list[int], worker_series: int, log: Log = print) -> list[Row]:
    if mode == "skip":
        return [Row("memory per live series, recovery", "", "skipped (--memory skip)")]
    if mode == "run":
        cmd = [sys.executable, "-m", "bench.memory", "--series", *map(str, series),
               "--worker-series", str(worker_series)]
        log(f"[memory] {' '.join(cmd[1:])} ...")
        subprocess.run(cmd, check=True)
    latest = load_latest()
    if latest is None:
        return [Row("memory per live series, recovery", "", f"no figures kept yet ({LATEST}): run "
                                                            "python -m bench.memory")]
    label = "" if mode == "run" else f"[{latest['measured_at']}] "
    head = [] if mode == "run" else [Row(f"memory figures below: NOT this run; kept from `{latest['command']}` "
                                         f"at {latest['measured_at']}")]
    return head + report_rows(latest["store"], latest["worker"], label=label)


def early_firing_rows(res: early_firing.EarlyFiringResult) -> list[Row]:
    rows = [Row(f"{EARLY_FIRING} ({res.factor:g}× in {res.burst_s:g} s)", f"≤ {early_firing.TARGET_S:g} s",
                res.text(), "", met(res.ok))]
    if res.confirmed is not None:
        rows.append(Row("  closed minute continued the early incident (one alert, same fingerprint)", "yes",
                        "yes" if res.confirmed else "NO", "", met(res.confirmed)))
    return rows


def spend_rows(results: list[Result], two: two_workers.TwoWorkersResult | None) -> list[Row]:
    rows = [Row(f"{r.shape}: stored spend = published spend (buckets by (key, seq); org budget)", "yes",
                "yes" if r.spend_ok else "NO", "", met(r.spend_ok)) for r in results]
    if two is not None:
        rows.append(Row("two workers: stored spend = published spend (buckets by (key, seq))", "yes",
                        "yes" if two.spend_ok else "NO", "", met(two.spend_ok)))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000, help="native events in envelopes")
    ap.add_argument("--litellm-events", type=int, default=None, help="LiteLLM events (default events/4)")
    ap.add_argument("--single-events", type=int, default=None, help="one-per-message shapes (default events/20)")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--keys", type=int, default=50_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--batch", type=int, default=500, help="events per envelope")
    ap.add_argument("--event-rate", type=float, default=150_000.0, help="events per second of event time")
    ap.add_argument("--detector", default="seasonal_z")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--profile", action="store_true", help="py-spy the worker while it drains")
    ap.add_argument("--latency-rate", type=float, default=None,
                    help="live load events/s (default: half of native-env drained; 1,000 without that shape)")
    ap.add_argument("--latency-of", choices=("drained", "sustained"), default="drained",
                    help="which native-env rate the live load is half of")
    ap.add_argument("--latency-minutes", type=int, default=2, help="full live minutes measured (0: skip)")
    ap.add_argument("--two-worker-events", type=int, default=None, help="default events/5 (0: skip)")
    ap.add_argument("--publish-lines", type=int, default=100_000, help="0: skip")
    ap.add_argument("--memory", choices=("run", "latest", "skip"), default="run")
    ap.add_argument("--memory-series", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--memory-worker-series", type=int, default=1_000_000)
    ap.add_argument("--early-firing", choices=("run", "skip"), default="run")
    args = ap.parse_args(argv)
    counts = {"native-env": args.events, "litellm-env": args.litellm_events or max(1, args.events // 4),
              "native-msg": args.single_events or max(1, args.events // 20),
              "litellm-msg": args.single_events or max(1, args.events // 20)}
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    if set(shapes) - set(SHAPES):
        ap.error(f"unknown shape(s) {sorted(set(shapes) - set(SHAPES))}; known: {', '.join(SHAPES)}")
    root = Path(tempfile.mkdtemp(prefix="burnguard-bench-"))
    print(f"logs: {root}", flush=True)

    results = [run_shape(s, counts[s], args, root) for s in shapes]
    native = next((r for r in results if r.shape == "native-env"), None)
    rows = throughput_rows(results)
    print(format_table(rows), flush=True)
    failed: list[str] = []

    def phase(name: str, make: Callable[[], list[Row]]) -> None:
        """One later measurement: a failure is a row of the table (and the exit status), not a lost run."""
        try:
            got = make()
        except Exception as err:  # noqa: BLE001 - report it and go on with the other figures
            traceback.print_exc()
            failed.append(name)
            got = [Row(f"{name}: FAILED", "", f"{type(err).__name__}: {str(err)[:120]}", "", "no")]
        rows.extend(got)
        print(format_table(got), flush=True)

    if args.latency_minutes:
        full = getattr(native, args.latency_of) if native is not None else math.nan
        full = full if math.isfinite(full) else None
        rate = args.latency_rate or (full / 2 if full else 1000.0)
        basis = "" if args.latency_rate or not full else f"{args.latency_of} {full:,.0f}"
        phase("latency", lambda: latency_rows(
            latency.measure(rate, args.latency_minutes, args.keys, args.partitions, root / "latency", log=_log),
            basis))
    two: list[two_workers.TwoWorkersResult] = []
    n_two = args.two_worker_events if args.two_worker_events is not None else max(1, args.events // 5)
    if n_two:
        def run_two() -> list[Row]:
            two.append(two_workers.measure(n_two, args.keys, args.partitions, args.batch, args.event_rate,
                                           args.timeout, root / "two-workers", log=_log))
            return two_worker_rows(two[0], native)
        phase("two workers", run_two)
    if args.publish_lines:
        phase("burnguard publish", lambda: publish_rows(
            publish_rate.measure(args.publish_lines, args.partitions, root / "publish", log=_log)))
    phase("memory", lambda: memory_rows(args.memory, args.memory_series, args.memory_worker_series, log=_log))
    if args.early_firing == "run":
        phase("early firing", lambda: early_firing_rows(
            early_firing.measure(partitions=args.partitions, workdir=root / "early-firing", log=_log)))
    else:
        rows.append(Row(EARLY_FIRING, f"≤ {early_firing.TARGET_S:g} s", "skipped (--early-firing skip)"))
    rows += spend_rows(results, two[0] if two else None)

    print()
    print(f"logs: {root}")
    print(format_table(rows))
    for r in results:
        for c in r.checks:
            print(f"  {r.shape}: {c}")
    for c in (two[0].checks if two else []):
        print(f"  two workers: {c}")
    if not all(r.spend_ok for r in results) or (two and not two[0].spend_ok):
        raise SystemExit("spend check FAILED: stored spend differs from published spend")
    print("spend check passed: stored spend = published spend in every run (nothing lost or doubled)")
    if failed:
        raise SystemExit(f"measurement(s) failed: {', '.join(failed)}")


def _log(msg: str) -> None:
    print(msg, flush=True)


if __name__ == "__main__":
    main()

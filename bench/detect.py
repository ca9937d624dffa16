"""``python -m bench.detect``: NAB scores, AI-spend incident scenarios, state size and speed.

Every number comes from the registered detectors (``detectors.registry``) fed through the
same code the service runs (``SeriesMonitor.observe`` on closed buckets).

    python -m bench.detect              # full run (~1-2 min on 2 cores)
    python -m bench.detect --quick      # a third of NAB, fewer spend series
    python -m bench.detect --write-docs # also rewrite docs/detection.md
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import pickle
import platform
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench import incidents as bench_incidents
from bench import nab
from bench import spend_scenarios as sp
from detectors.monitor import SeriesMonitor
from detectors.registry import DEFAULT_DETECTOR, DETECTORS, make_detector

SPEND_MONITOR = {"threshold": 0.9999}  # the service's default alert threshold; other SeriesMonitor defaults


@dataclass(frozen=True, slots=True)
class Footprint:
    detector: str
    bytes_detector: int
    bytes_monitor: int
    us_update: float  # score_one + learn_one
    us_observe: float  # SeriesMonitor.observe


def footprint(name: str, n: int = 20160, seed: int = 5) -> Footprint:
    """Pickled size after two weeks of per-minute data and time per update."""
    rng = random.Random(seed)
    t0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
    ts = [t0 + timedelta(minutes=i) for i in range(n)]
    xs = [max(0.01, 1.0 + 0.5 * ((i % 1440) > 480) + rng.gauss(0, 0.1)) for i in range(n)]
    d = make_detector(name)
    start = time.perf_counter()
    for t, x in zip(ts, xs):
        d.score_one(x, t)
        d.learn_one(x, t)
    us_update = 1e6 * (time.perf_counter() - start) / n
    m = SeriesMonitor(make_detector(name), **SPEND_MONITOR)
    start = time.perf_counter()
    for t, x in zip(ts, xs):
        m.observe(t, x)
    us_observe = 1e6 * (time.perf_counter() - start) / n
    return Footprint(name, len(pickle.dumps(d)), len(pickle.dumps(m)), us_update, us_observe)


_SERIES: list[sp.SpendSeries] = []


def _spend_job(job: tuple[str, int]) -> sp.SeriesOutcome:
    name, i = job
    return sp.evaluate_series(_SERIES[i], lambda: SeriesMonitor(make_detector(name), **SPEND_MONITOR))


def run_spend(names: Sequence[str], series: list[sp.SpendSeries],
              processes: int) -> tuple[dict[str, list[sp.KindSummary]], dict[str, tuple[float, ...]]]:
    """Per detector: the per-kind summary and the score exceedance rates on normal buckets."""
    global _SERIES
    _SERIES = series
    out, calib = {}, {}
    with mp.get_context("fork").Pool(processes) as pool:
        for name in names:
            outcomes = pool.map(_spend_job, [(name, i) for i in range(len(series))])
            out[name] = sp.summarise(outcomes)
            calib[name] = sp.exceedance_rates(outcomes)
    return out, calib


def _fmt(v: float | None, nd: int = 1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def nab_table(runs: Sequence[nab.NabRun]) -> str:
    lines = ["| detector | standard | reward_low_FP_rate | reward_low_FN_rate | µs/point |",
             "|---|---:|---:|---:|---:|"]
    for r in sorted(runs, key=lambda r: -r.results["standard"].normalized):
        mark = " (default)" if r.detector == DEFAULT_DETECTOR else ""
        lines.append(f"| {r.detector}{mark} | {r.results['standard'].normalized:.2f} | "
                     f"{r.results['reward_low_FP_rate'].normalized:.2f} | "
                     f"{r.results['reward_low_FN_rate'].normalized:.2f} | {r.us_per_point:.1f} |")
    return "\n".join(lines)


def spend_table(name: str, rows: Sequence[sp.KindSummary]) -> str:
    lines = [f"`{name}`:", "",
             "| incident | n | recall | false alerts / series-week | median delay (min) | p95 delay (min) |",
             "|---|---:|---:|---:|---:|---:|"]
    for k in rows:
        lines.append(f"| {k.kind} | {k.incidents} | {k.recall:.2f} | {k.false_per_series_week:.2f} | "
                     f"{_fmt(k.median_delay)} | {_fmt(k.p95_delay)} |")
    return "\n".join(lines)


def spend_summary_table(results: dict[str, list[sp.KindSummary]], calib: dict[str, tuple[float, ...]]) -> str:
    levels = " | ".join(f"share ≥ {lv} (ideal {1 - lv:.0e})" for lv in sp.CALIBRATION_LEVELS)
    lines = [f"| detector | recall | false alerts / series-week | median delay (min) | p95 delay (min) | {levels} |",
             "|---|---:|---:|---:|---:|" + "---:|" * len(sp.CALIBRATION_LEVELS)]
    for name, rows in results.items():
        a = next(k for k in rows if k.kind == "all")
        rates = " | ".join(f"{r:.1e}" for r in calib.get(name, ()))
        lines.append(f"| {name} | {a.recall:.2f} | {a.false_per_series_week:.2f} | {_fmt(a.median_delay)} | "
                     f"{_fmt(a.p95_delay)} | {rates} |")
    return "\n".join(lines)


def footprint_table(fps: Sequence[Footprint]) -> str:
    lines = ["| detector | bytes/series (detector) | bytes/series (SeriesMonitor) | µs/update | µs/observe |",
             "|---|---:|---:|---:|---:|"]
    for f in fps:
        lines.append(f"| {f.detector} | {f.bytes_detector} | {f.bytes_monitor} | {f.us_update:.1f} | "
                     f"{f.us_observe:.1f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.detect", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a third of the NAB files, 2 spend series per incident kind")
    ap.add_argument("--detectors", nargs="*", default=None, help="names (default: all registered)")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--seeds", default="7,11,23", help="spend scenario seeds (comma-separated)")
    ap.add_argument("--write-docs", action="store_true", help="rewrite docs/detection.md with the tables")
    args = ap.parse_args(argv)
    names = args.detectors or list(DETECTORS)
    started = time.time()

    files = nab.load_corpus()
    if args.quick:
        files = files[::3]
    runs = nab.run_nab(names, files, monitor=nab.NAB_MONITOR, processes=args.processes)
    t_nab = nab_table(runs)
    print(f"NAB ({len(files)} files, {sum(len(f.values) for f in files)} rows; SeriesMonitor {nab.NAB_MONITOR}, "
          "alert-once scores, corpus-optimised threshold)\n")
    print(t_nab, "\n", flush=True)

    seeds = [int(x) for x in args.seeds.split(",") if x.strip()][:1 if args.quick else None]
    series = [s for seed in seeds for s in sp.generate(seed=seed, per_kind=2 if args.quick else 6)]
    spend, calib = run_spend(names, series, args.processes)
    t_sum = spend_summary_table(spend, calib)
    t_def = spend_table(DEFAULT_DETECTOR, spend.get(DEFAULT_DETECTOR, next(iter(spend.values()))))
    print(f"AI-spend scenarios ({len(series)} series x 3 weeks per-minute, seeds {seeds}; SeriesMonitor "
          f"{SPEND_MONITOR}, false alerts counted after a 1-week burn-in; share of normal buckets scoring above "
          "a level is the calibration check)\n")
    print(t_sum, "\n")
    print(t_def, "\n", flush=True)
    print(bench_incidents.report(series, seeds, args.processes), flush=True)

    fps = [footprint(n) for n in names]
    t_fp = footprint_table(fps)
    print("State and speed (2 weeks of per-minute data, one core)\n")
    print(t_fp, "\n")
    elapsed = time.time() - started
    print(f"total {elapsed:.0f} s on {mp.cpu_count()} cores, Python {platform.python_version()}")

    if args.write_docs:
        write_docs(t_nab, t_sum, t_def, t_fp, args.quick, elapsed, spend, len(series), seeds)
    return 0


def write_docs(t_nab: str, t_sum: str, t_def: str, t_fp: str, quick: bool, elapsed: float,
               spend: dict[str, list[sp.KindSummary]], n_series: int, seeds: Sequence[int]) -> None:
    path = Path(__file__).resolve().parent.parent / "docs" / "detection.md"
    template = path.read_text() if path.exists() else ""
    marker = "<!-- bench:tables -->"
    head = template.split(marker)[0] if marker in template else template
    body = (f"{marker}\n## Results\n\nReproduce: `make bench-detect` (= `python -m bench.detect`"
            f"{' --quick' if quick else ''}), {elapsed:.0f} s on this machine (2 cores).\n\n"
            f"### NAB (58 files, corpus-optimised threshold, normalised 0 = null, 100 = perfect)\n\n{t_nab}\n\n"
            f"### AI-spend incident scenarios\n\n{n_series} labelled series (3 weeks of per-minute buckets, "
            f"seeds {', '.join(map(str, seeds))}), one incident each; `SeriesMonitor(make_detector(name), "
            f"threshold=0.9999)`; false alerts counted after a one-week burn-in.\n\n{t_sum}\n\n"
            f"Per incident type, {t_def}\n\n"
            f"### State and speed\n\n{t_fp}\n")
    path.parent.mkdir(exist_ok=True)
    path.write_text(head + body)


if __name__ == "__main__":
    raise SystemExit(main())

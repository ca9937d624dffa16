"""Incidents on the AI-spend scenarios: how many incidents each injected cause yields, and false ones.

Each labelled series (:mod:`bench.spend_scenarios`) is one team's key: its alerts come from the
same ``SeriesMonitor`` the service runs, and go through the service's incident dispatcher
(:mod:`detectors.incidents.dispatch`, default ``GroupingConfig``) with a 1-minute tick. An
incident is *true* when its first alert is raised inside the labelled window, *false* when it is
raised after the burn-in and outside it (alerts are counted the same way). Reported next to the raw alert figures of the same run.

    python -m bench.incidents [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from bench import spend_scenarios as sp
from detectors.incidents.dispatch import GroupingConfig, run
from detectors.monitor import SeriesMonitor
from detectors.registry import DEFAULT_DETECTOR, make_detector
from schemas.alert import Alert
from schemas.cost import KEY_FIELDS

SPEND_MONITOR = {"threshold": 0.9999}


def allocation_key(scenario_key: str) -> str:
    """``team=a/feature=f/model=m`` (the scenarios' own notation) as a full allocation key; other labels
    (project, gpu-pool, key) stand in for the feature.

    >>> allocation_key("team=research/project=sweep1/gpu=a100")
    'team=research|feature=sweep1|customer=unknown|model=unknown|environment=production'
    """
    parts = dict(p.split("=", 1) for p in scenario_key.split("/"))
    fields = {"team": "unallocated", "feature": "unknown", "customer": "unknown", "model": "unknown",
              "environment": "production"}
    for k, v in parts.items():
        if k in fields:
            fields[k] = v
        elif fields["feature"] == "unknown" and k in ("project", "gpu-pool", "key"):
            fields["feature"] = v
    return "|".join(f"{f}={fields[f]}" for f in KEY_FIELDS)


def series_alerts(s: sp.SpendSeries, make_monitor: Callable[[], SeriesMonitor]) -> list[Alert]:
    """Every alert transition the service's monitor raises on ``s``."""
    m, key, out = make_monitor(), allocation_key(s.key), []
    for t, x in zip(s.timestamps, s.values):
        ev = m.observe(t, x)
        if ev is None:
            continue
        out.append(Alert(series_key=key, metric=s.metric, detector=m.detector.name, score=min(ev.peak_score, 1.0),
                         observed=ev.observed, baseline=ev.expected.baseline, expected_low=ev.expected.low,
                         expected_high=ev.expected.high, window_start=t, window_end=t + timedelta(minutes=1),
                         started_at=ev.started_at, status=ev.status))  # type: ignore[arg-type]
    return out


@dataclass(frozen=True, slots=True)
class IncidentOutcome:
    kind: str
    true_alerts: int
    false_alerts: int
    true_incidents: int
    false_incidents: int
    weeks: float


def evaluate(s: sp.SpendSeries, make_monitor: Callable[[], SeriesMonitor],
             config: GroupingConfig | None = None) -> IncidentOutcome:
    inc = s.incidents[0]
    alerts = series_alerts(s, make_monitor)
    firing = [a for a in alerts if a.status == "firing" and a.window_end >= s.burn_in_end]
    true_a = sum(inc.start <= a.window_end <= inc.end for a in firing)
    incidents, _ = run(alerts, config)
    # each incident at the time its first alert was raised (as alerts are counted: when raised)
    opened = [t for t in (min(a.at for a in i.alerts) for i in incidents if i.alerts) if t >= s.burn_in_end]
    true_i = sum(inc.start <= t <= inc.end for t in opened)
    span = (s.timestamps[-1] - max(s.burn_in_end, s.timestamps[0])).total_seconds() / (7 * 86400)
    return IncidentOutcome(inc.kind, true_a, len(firing) - true_a, true_i, len(opened) - true_i, max(span, 0.0))


_SERIES: list[sp.SpendSeries] = []


def _job(i: int) -> IncidentOutcome:
    return evaluate(_SERIES[i], lambda: SeriesMonitor(make_detector(DEFAULT_DETECTOR), **SPEND_MONITOR))


def run_incidents(series: list[sp.SpendSeries], processes: int = 2) -> list[IncidentOutcome]:
    global _SERIES
    _SERIES = series
    with mp.get_context("fork").Pool(processes) as pool:
        return pool.map(_job, range(len(series)))


def incidents_table(outcomes: Sequence[IncidentOutcome]) -> str:
    """Per kind and overall: per *detected* injected cause, alerts and incidents; false ones per team-week.

    >>> print(incidents_table([IncidentOutcome("a", 3, 1, 1, 0, 2.0), IncidentOutcome("a", 0, 0, 0, 1, 2.0)]))
    | incident | n | recall | alerts per detected cause | incidents per detected cause | false alerts / team-week | false incidents / team-week |
    |---|---:|---:|---:|---:|---:|---:|
    | a | 2 | 0.50 | 3.00 | 1.00 | 0.25 | 0.25 |
    | all | 2 | 0.50 | 3.00 | 1.00 | 0.25 | 0.25 |
    """
    groups: dict[str, list[IncidentOutcome]] = {}
    for o in outcomes:
        groups.setdefault(o.kind, []).append(o)
    groups["all"] = list(outcomes)
    lines = ["| incident | n | recall | alerts per detected cause | incidents per detected cause | "
             "false alerts / team-week | false incidents / team-week |", "|---|---:|---:|---:|---:|---:|---:|"]
    for kind, os_ in groups.items():
        hit = [o for o in os_ if o.true_incidents > 0]
        weeks = sum(o.weeks for o in os_) or 1.0
        per_a = sum(o.true_alerts for o in hit) / len(hit) if hit else 0.0
        per_i = sum(o.true_incidents for o in hit) / len(hit) if hit else 0.0
        lines.append(f"| {kind} | {len(os_)} | {len(hit) / len(os_):.2f} | {per_a:.2f} | {per_i:.2f} | "
                     f"{sum(o.false_alerts for o in os_) / weeks:.2f} | "
                     f"{sum(o.false_incidents for o in os_) / weeks:.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.incidents", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, 2 series per incident kind")
    ap.add_argument("--seeds", default="7,11,23")
    ap.add_argument("--processes", type=int, default=2)
    args = ap.parse_args(argv)
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()][:1 if args.quick else None]
    series = [s for seed in seeds for s in sp.generate(seed=seed, per_kind=2 if args.quick else 6)]
    print(report(series, seeds, args.processes))
    return 0


def report(series: list[sp.SpendSeries], seeds: Sequence[int], processes: int = 2) -> str:
    outcomes = run_incidents(series, processes)
    return (f"Incidents on the AI-spend scenarios ({len(series)} series, seeds {list(seeds)}; {DEFAULT_DETECTOR}, "
            f"SeriesMonitor {SPEND_MONITOR}; incident dispatcher defaults: group_wait 2 min, group_interval 5 min, "
            f"repeat_interval 4 h; false counted after the 1-week burn-in; a team-week is one series-week)\n\n"
            f"{incidents_table(outcomes)}\n")


if __name__ == "__main__":
    raise SystemExit(main())

"""GPU samples keyed by the allocation they belong to, and zombie-GPU alerts (shared by the agent and tests).

>>> from datetime import datetime, timezone
>>> from schemas.cost import CostRecord
>>> r = CostRecord(ts=datetime(2026, 11, 20, tzinfo=timezone.utc), source="gpu", team="ml",
...                namespace="jupyter-alice", pod="nb-alice-0", gpu_uuid="GPU-1", gpu_util=0.0,
...                cost_usd=0.02, gpu_seconds=30)
>>> list(gpu_samples_by_resource([r]))
['jupyter-alice/nb-alice-0']
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from detectors.gpu_tracker import GpuTracker, kind_of
from detectors.zombie_gpu import ZombieAlert
from schemas.alert import Alert
from schemas.cost import CostRecord


def resource_of(rec: CostRecord) -> str:
    """A pod's GPUs are one allocation; without a pod, each host GPU is its own."""
    if rec.pod:
        return f"{rec.namespace or '-'}/{rec.pod}"
    return f"{rec.host or '-'}/{rec.gpu_uuid or '-'}"


def gpu_samples_by_resource(records: Iterable[CostRecord]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r.source != "gpu":
            continue
        out[resource_of(r)].append({
            "ts": r.ts.timestamp(), "gpu": r.gpu_uuid or "-", "util": r.gpu_util or 0.0,
            "cost_usd": r.cost_usd, "gpu_seconds": r.gpu_seconds, "namespace": r.namespace, "pod": r.pod,
            "team": r.team})
    return out


def new_gpu_tracker(resource: str, sample: dict[str, Any]) -> GpuTracker:
    return GpuTracker(resource, kind_of(sample.get("namespace"), sample.get("pod")))


def observe_sample(tracker: GpuTracker, sample: dict[str, Any]) -> list[tuple[str, ZombieAlert, datetime]]:
    t = datetime.fromtimestamp(sample["ts"], tz=timezone.utc)
    return tracker.observe(t, sample["gpu"], sample["util"], sample["cost_usd"], sample["gpu_seconds"])


def zombie_alert(resource: str, status: str, za: ZombieAlert, since: datetime) -> Alert:
    """A zombie-GPU transition as an alert: observed = $/h wasted, fingerprinted by resource, rule, start."""
    return Alert(series_key=f"gpu={resource}", metric=f"zombie_gpu.{za.rule}", detector="zombie_gpu",
                 score=1.0, severity="warning", observed=za.usd_per_hour, baseline=0.0, expected_low=0.0,
                 expected_high=0.0, window_start=since, window_end=since, started_at=since,
                 status=status,  # type: ignore[arg-type]
                 summary=f"{za.rule.replace('_', ' ')}: {za.detail}; ${za.usd_per_hour:,.2f}/h wasted "
                         f"({za.gpus_wasted:g} GPU)")

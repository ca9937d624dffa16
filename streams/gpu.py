"""GPU samples keyed by the allocation they belong to, and zombie-GPU alerts (shared by the agent and tests).

The pinned-idle-model join is keyed by served model (:func:`detectors.pinned_model.model_key`):
normalize sends each LLM envelope's request counts per model and minute
(:func:`requests_by_model`), the zombies agent sends the status of each resource that serves a
known model (:func:`serving_status_doc`), both to ``model.activity``.

>>> from datetime import datetime, timezone
>>> from schemas.cost import CostRecord
>>> r = CostRecord(ts=datetime(2026, 11, 20, tzinfo=timezone.utc), source="gpu", team="ml",
...                namespace="jupyter-alice", pod="nb-alice-0", gpu_uuid="GPU-1", gpu_util=0.0,
...                cost_usd=0.02, gpu_seconds=30)
>>> list(gpu_samples_by_resource([r]))
['jupyter-alice/nb-alice-0']
>>> calls = [CostRecord(ts=datetime(2026, 11, 20, 9, 0, s, tzinfo=timezone.utc), source="llm", model=m, requests=1)
...          for s, m in ((1, "Llama-3.1-8B"), (59, "llama-3.1-8b"), (5, "unknown"))]
>>> requests_by_model(calls)
{'llama-3.1-8b': [[1795165200, 2]]}
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from detectors.gpu_tracker import MAX_GPUS_PER_ALLOCATION, GpuTracker, kind_of
from detectors.pinned_model import MINUTE_S, ServingStatus, model_key
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
            "team": r.team, "served_model": r.served_model})
    return out


def requests_by_model(records: Iterable[CostRecord]) -> dict[str, list[list[int]]]:
    """Gateway requests per served-model join key and minute: ``{model: [[minute start, count], ...]}``."""
    counts: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    keys: dict[str, str | None] = {}  # an envelope repeats a few model names many times
    for r in records:
        if r.source != "llm" or r.requests <= 0:
            continue
        if (key := keys.get(r.model, "")) == "":
            key = keys[r.model] = model_key(r.model)
        if key is None:
            continue
        counts[key][int(r.ts.timestamp()) // MINUTE_S * MINUTE_S] += r.requests
    return {k: sorted([m, n] for m, n in v.items()) for k, v in counts.items()}


def new_gpu_tracker(resource: str, sample: dict[str, Any], max_gpus: int = MAX_GPUS_PER_ALLOCATION) -> GpuTracker:
    """A pod labelled with the model it serves is a serving resource, whatever its name; it tracks at most
    ``max_gpus`` GPUs (samples of further GPUs are counted as refused)."""
    kind = "serving" if model_key(sample.get("served_model")) else kind_of(sample.get("namespace"), sample.get("pod"))
    return GpuTracker(resource, kind, max_gpus=max_gpus)


def serving_status_doc(tracker: GpuTracker, samples: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """(model key, status message) for a resource whose newest sample names a served model, else ``None``."""
    model = model_key(samples[-1].get("served_model")) if samples else None
    status = tracker.serving_status() if model else None
    if model is None or status is None:
        return None
    return model, {"status": status._asdict()}


def serving_status(doc: dict[str, Any]) -> ServingStatus:
    return ServingStatus(**doc)


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

"""GPU telemetry samples in the shape of NVIDIA dcgm-exporter metrics.

One event = one GPU over one sample interval: the exporter's labels and the metric
values of one scrape, grouped per GPU::

    {"timestamp": "...", "interval_s": 30,
     "labels": {"gpu": "0", "UUID": "GPU-...", "modelName": "NVIDIA H100 80GB HBM3",
                "Hostname": "node-1", "namespace": "team-ml", "pod": "train-0", "container": "main"},
     "metrics": {"DCGM_FI_PROF_GR_ENGINE_ACTIVE": 0.93, "DCGM_FI_DEV_GPU_UTIL": 97,
                 "DCGM_FI_DEV_FB_USED": 61234, "DCGM_FI_DEV_POWER_USAGE": 612.5}}

A flat object (labels and ``DCGM_FI_*`` keys side by side) is accepted too; metric values
may be numbers or numeric strings (the Prometheus API's form).

Pricing: ``modelName`` → SKU via the catalog's ``match`` strings; the rate is the SKU's
$/GPU-hour for the sample's pricing model (``pricing`` field or label, also the
``capacity_type``/``karpenter.sh/capacity-type`` label; default from the catalog) at the
sample time. cost = rate × interval_s / 3600.

Idle: engine activity is ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` (0..1) or, if absent,
``DCGM_FI_DEV_GPU_UTIL`` / 100. A sample below ``IDLE_ACTIVITY_THRESHOLD`` (0.05) counts
whole as idle: ``idle_gpu_seconds = interval_s`` and ``idle_cost_usd = cost``.
A sample with neither metric is priced but never idle (activity unknown).

Served model: a pod that serves a model names it in a label, the first of
``SERVED_MODEL_LABELS`` present (``served_model``, ``served_model_name``, KServe's
InferenceService label), kept as ``served_model``. It is matched against the gateway's
``model`` to find pinned idle models; without it that rule does not apply to the pod.

>>> from schemas.pricing import PriceCatalog
>>> from schemas.allocation import AllocationRules
>>> s = DcgmSample.model_validate({"timestamp": "2026-01-05T10:00:00Z", "interval_s": 30,
...     "labels": {"modelName": "NVIDIA H100 80GB HBM3", "namespace": "team-ml", "UUID": "GPU-1"},
...     "metrics": {"DCGM_FI_PROF_GR_ENGINE_ACTIVE": 0.01, "DCGM_FI_DEV_FB_USED": 512}})
>>> r = to_cost_record(s, PriceCatalog.load(), AllocationRules.load())
>>> r.team, r.model, r.gpu_seconds, round(r.cost_usd, 6), r.idle_gpu_seconds, r.idle_cost_usd == r.cost_usd
('ml', 'H100-80GB', 30.0, 0.057333, 30.0, True)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.allocation import AllocationRules
from schemas.cost import CostRecord
from schemas.events import UNKNOWN
from schemas.pricing import PRICING_MODELS, PriceCatalog
from schemas.sources._common import EventTime, fast_record

FORMAT = "dcgm"
#: dcgm-exporter's default collection interval (``-c``/``DCGM_EXPORTER_INTERVAL``) is 30000 ms.
DEFAULT_INTERVAL_S = 30.0
#: Engine activity below this (5 %) means the GPU is allocated but doing ~nothing.
IDLE_ACTIVITY_THRESHOLD = 0.05
#: Labels naming the model a GPU's pod serves, first present wins (the Kubernetes pod label, exported by
#: dcgm-exporter with ``--kubernetes-enable-pod-labels`` or added by Prometheus relabelling, in either spelling).
SERVED_MODEL_LABELS = ("served_model", "served_model_name", "serving.kserve.io/inferenceservice",
                       "serving_kserve_io_inferenceservice")
_RESERVED = frozenset({"format", "timestamp", "interval_s", "labels", "metrics", "pricing", "tags"})
_PRICING_LABELS = ("pricing", "capacity_type", "karpenter.sh/capacity-type", "eks.amazonaws.com/capacityType")
_PRICING_ALIASES = {"on_demand": "on_demand", "on-demand": "on_demand", "ondemand": "on_demand",
                    "spot": "spot", "preemptible": "spot", "reserved": "reserved", "committed": "reserved"}


class DcgmMetrics(BaseModel):
    """The DCGM fields burnguard reads (others are ignored)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    gpu_util: float | None = Field(None, alias="DCGM_FI_DEV_GPU_UTIL", ge=0, le=100, description="percent")
    engine_active: float | None = Field(None, alias="DCGM_FI_PROF_GR_ENGINE_ACTIVE", ge=0, le=1,
                                        description="ratio of time the graphics engine was active")
    fb_used_mb: float | None = Field(None, alias="DCGM_FI_DEV_FB_USED", ge=0, description="framebuffer MiB")
    power_w: float | None = Field(None, alias="DCGM_FI_DEV_POWER_USAGE", ge=0, description="watts")

    @property
    def activity(self) -> float | None:
        if self.engine_active is not None:
            return self.engine_active
        return self.gpu_util / 100.0 if self.gpu_util is not None else None


class DcgmSample(BaseModel):
    """One GPU over one sample interval: dcgm-exporter labels and metric values (or a flat object)."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["dcgm"] | None = None
    timestamp: EventTime
    interval_s: float = Field(DEFAULT_INTERVAL_S, gt=0, le=3600, allow_inf_nan=False)
    labels: dict[str, Any] = Field(default_factory=dict)
    metrics: DcgmMetrics
    pricing: str | None = None
    tags: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat_form(cls, data: Any) -> Any:
        if isinstance(data, dict) and "metrics" not in data:
            metrics = {k: v for k, v in data.items() if isinstance(k, str) and k.startswith("DCGM_FI_")}
            labels = {k: v for k, v in data.items() if k not in _RESERVED and k not in metrics}
            data = {k: v for k, v in data.items() if k in _RESERVED}
            data["metrics"] = metrics
            data["labels"] = {**labels, **(data.get("labels") or {})} if isinstance(data.get("labels"), dict) \
                else labels
        return data

    def label(self, *names: str) -> str | None:
        for n in names:
            v = self.labels.get(n)
            if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip():
                return str(v).strip()
        return None

    @model_validator(mode="after")
    def _pricing_known(self) -> "DcgmSample":
        raw = self.pricing or self.label(*_PRICING_LABELS)
        if raw is not None and raw.lower() not in _PRICING_ALIASES:
            raise ValueError(f"pricing {raw!r} is not one of {', '.join(PRICING_MODELS)}")
        return self

    @property
    def pricing_model(self) -> str | None:
        raw = self.pricing or self.label(*_PRICING_LABELS)
        return _PRICING_ALIASES[raw.lower()] if raw is not None else None


def to_cost_record(s: DcgmSample, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    model_name = s.label("modelName", "model_name") or ""
    sku = catalog.gpu_sku(model_name) if model_name else None
    pricing = s.pricing_model or catalog.gpu.default_pricing
    hourly = catalog.gpu_hourly(sku, pricing, s.timestamp) if sku is not None else None
    cost = hourly * s.interval_s / 3600.0 if hourly is not None else 0.0
    activity = s.metrics.activity
    idle = activity is not None and activity < IDLE_ACTIVITY_THRESHOLD
    host = s.label("Hostname", "hostname", "host", "node")
    tags = {**s.labels, **s.tags}
    a = rules.allocate(tags, model=sku or model_name or None)
    return fast_record(
        ts=s.timestamp, source="gpu", team=a.team, feature=a.feature, customer=a.customer, model=a.model,
        environment=a.environment, tier=a.tier, provider="nvidia", cost_usd=cost, priced=hourly is not None,
        gpu_seconds=s.interval_s, idle_gpu_seconds=s.interval_s if idle else 0.0,
        idle_cost_usd=cost if idle else 0.0, gpu_util=activity, gpu_mem_used_mb=s.metrics.fb_used_mb,
        gpu_power_w=s.metrics.power_w, gpu_uuid=s.label("UUID", "uuid"), gpu_sku=sku or (model_name or UNKNOWN),
        pricing_model=pricing, host=host, namespace=s.label("namespace", "exported_namespace"),
        pod=s.label("pod", "exported_pod"), served_model=_served_model(s), format=FORMAT)


def _served_model(s: DcgmSample) -> str | None:
    """The served model's name from the pod's labels (``None`` when no label names one).

    >>> _served_model(DcgmSample.model_validate({"timestamp": 0, "served_model": "Qwen/Qwen2.5-7B",
    ...                                          "DCGM_FI_DEV_GPU_UTIL": 0}))
    'Qwen/Qwen2.5-7B'
    """
    name = s.label(*SERVED_MODEL_LABELS)
    return name[:256] if name else None


def parse(item: Any, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    return to_cost_record(DcgmSample.model_validate(item), catalog, rules)

"""What the stream knows about one GPU allocation, built from DCGM samples, and its zombie alerts.

Feed each priced GPU sample of one resource (a pod, or a host's GPU when there is no pod);
the tracker keeps a small summary (GPUs allocated, $/GPU-hour, idle run, 24 h p95 of
engine activity in 5-minute slots, last activity) and runs :mod:`detectors.zombie_gpu`'s
rules on it. Like a :class:`~detectors.monitor.SeriesMonitor`, it reports transitions: a
rule firing once, and resolving when it stops holding.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
>>> tr = GpuTracker("jupyter-alice/nb-alice-0", kind_of("jupyter-alice", "nb-alice-0"))
>>> events = []
>>> for m in range(0, 120):
...     util = 0.7 if m < 20 else 0.0          # busy for 20 min, then left open
...     events += tr.observe(t0 + timedelta(minutes=m), "GPU-1", util, cost_usd=2.5 / 60, gpu_seconds=60)
>>> [(status, a.rule, a.usd_per_hour, (at - t0).seconds // 60) for status, a, at in events]
[('firing', 'idle_notebook', 2.5, 80)]
"""

from __future__ import annotations

import math
import re
from array import array
from datetime import datetime, timedelta

from detectors.pinned_model import ServingStatus
from detectors.statecheck import NUM, Spec, fields, mapping
from detectors.zombie_gpu import GpuResource, ZombieAlert, ZombieRules, check

_KIND_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("notebook", re.compile(r"notebook|jupyter|\bnb-|^nb-", re.I)),
    ("sweep", re.compile(r"sweep|hpo|tune", re.I)),
    ("clone", re.compile(r"clone|preview|sandbox-", re.I)),
    ("serving", re.compile(r"serv|infer|vllm|triton|tgi|model-", re.I)),
)

SLOT_S = 300  # 5-minute slots for the 24 h utilisation profile
SLOTS = 24 * 3600 // SLOT_S
GPU_GONE_AFTER = timedelta(minutes=5)  # a GPU not sampled for this long is no longer allocated
#: GPUs tracked per allocation (a node has 8-16): samples of further GPU ids are counted, not tracked, so
#: one envelope of 20k distinct ids costs 20k x this, not 20k^2 / 2
MAX_GPUS_PER_ALLOCATION = 64


def kind_of(namespace: str | None, pod: str | None) -> str:
    """Resource kind from its namespace and pod names (``job`` when nothing matches).

    >>> kind_of("ml-sweeps", "sweep-lr-7-worker-0"), kind_of("prod", "vllm-llama-0"), kind_of(None, None)
    ('sweep', 'serving', 'job')
    """
    text = f"{namespace or ''}/{pod or ''}"
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(text):
            return kind
    return "job"


class GpuTracker:
    __slots__ = ("resource", "kind", "rules", "gpus", "usd_per_gpu_hour", "idle_since", "was_busy",
                 "last_active", "slot_sums", "slot_counts", "slot_start", "firing", "util", "max_gpus",
                 "refused_samples")

    def __init__(self, resource: str, kind: str, rules: ZombieRules | None = None,
                 max_gpus: int = MAX_GPUS_PER_ALLOCATION) -> None:
        self.resource = resource
        self.kind = kind
        self.rules = rules or ZombieRules()
        self.max_gpus = max(1, max_gpus)
        self.refused_samples = 0  # samples of GPUs beyond max_gpus (ignored; report it)
        self.gpus: dict[str, datetime] = {}  # GPU id -> last sample time
        self.util: dict[str, float] = {}  # GPU id -> latest engine activity
        self.usd_per_gpu_hour = 0.0
        self.idle_since: datetime | None = None
        self.was_busy = False
        self.last_active: datetime | None = None
        self.slot_sums = array("f", [0.0] * SLOTS)
        self.slot_counts = array("H", [0] * SLOTS)
        self.slot_start = 0  # epoch slot number held at index slot_start % SLOTS
        self.firing: dict[str, datetime] = {}

    def observe(self, t: datetime, gpu: str, util: float, cost_usd: float, gpu_seconds: float
                ) -> list[tuple[str, ZombieAlert, datetime]]:
        """One sample of one GPU; returns (status, alert, since) transitions. A sample of a new GPU
        while ``max_gpus`` are tracked (none gone) is counted in ``refused_samples`` and ignored."""
        if gpu not in self.gpus and len(self.gpus) >= self.max_gpus:
            self._forget_gone(t)
            if len(self.gpus) >= self.max_gpus:
                self.refused_samples += 1
                return []
        self.gpus[gpu] = t
        self.util[gpu] = util
        self._forget_gone(t)
        if gpu_seconds > 0 and cost_usd > 0:
            rate = cost_usd / gpu_seconds * 3600
            self.usd_per_gpu_hour = rate if self.usd_per_gpu_hour == 0 else 0.9 * self.usd_per_gpu_hour + 0.1 * rate
        util_now = sum(self.util.values()) / len(self.util)
        idle = util_now < self.rules.idle_util
        if idle:
            self.idle_since = self.idle_since or t
        else:
            self.idle_since, self.last_active, self.was_busy = None, t, True
        self._record_slot(t, util_now)
        return self._transitions(t, util_now)

    def _forget_gone(self, t: datetime) -> None:
        for g, seen in list(self.gpus.items()):  # at most max_gpus
            if t - seen > GPU_GONE_AFTER:
                del self.gpus[g], self.util[g]

    def _record_slot(self, t: datetime, util: float) -> None:
        slot = int(t.timestamp()) // SLOT_S
        if slot - self.slot_start >= SLOTS:  # forget slots older than 24 h
            for s in range(max(self.slot_start, slot - 2 * SLOTS + 1), slot - SLOTS + 1):
                self.slot_sums[s % SLOTS], self.slot_counts[s % SLOTS] = 0.0, 0
            self.slot_start = slot - SLOTS + 1
        if slot < self.slot_start:
            return
        self.slot_sums[slot % SLOTS] += util
        self.slot_counts[slot % SLOTS] = min(self.slot_counts[slot % SLOTS] + 1, 65535)

    def util_p95_24h(self) -> float | None:
        """p95 of 5-minute mean engine activity over the last 24 h (None with < 2 h of data)."""
        means = sorted(s / c for s, c in zip(self.slot_sums, self.slot_counts) if c)
        if len(means) < 24:
            return None
        return means[min(len(means) - 1, math.ceil(0.95 * len(means)) - 1)]

    def summary(self, t: datetime, util_now: float) -> GpuResource:
        idle_min = (t - self.idle_since).total_seconds() / 60 if self.idle_since else 0.0
        age_h = (t - self.last_active).total_seconds() / 3600 if self.last_active else None
        return GpuResource(self.resource, self.kind, gpus=len(self.gpus), usd_per_gpu_hour=self.usd_per_gpu_hour,
                           util_now=util_now, idle_minutes=idle_min, was_busy=self.was_busy,
                           util_p95_24h=self.util_p95_24h() if self.kind == "serving" else None,
                           last_activity_age_h=age_h)

    def serving_status(self) -> ServingStatus | None:
        """This resource's state at its newest sample, for the pinned-idle-model join (``None``: no sample yet).

        >>> from datetime import datetime, timezone
        >>> tr = GpuTracker("serving/vllm-0", "serving")
        >>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
        >>> _ = tr.observe(t, "GPU-1", 0.0, cost_usd=0.05, gpu_seconds=30)
        >>> s = tr.serving_status()
        >>> s.t == s.idle_since == t.timestamp(), s.gpus, s.usd_per_gpu_hour
        (True, 1, 6.0)
        """
        if not self.gpus:
            return None
        t = max(self.gpus.values())
        util_now = sum(self.util.values()) / len(self.util)
        return ServingStatus(self.resource, t.timestamp(), util_now,
                             self.idle_since.timestamp() if self.idle_since else None, len(self.gpus),
                             self.usd_per_gpu_hour)

    def _transitions(self, t: datetime, util_now: float) -> list[tuple[str, ZombieAlert, datetime]]:
        now = {a.rule: a for a in check(self.summary(t, util_now), self.rules)}
        out: list[tuple[str, ZombieAlert, datetime]] = []
        for rule, alert in now.items():
            if rule not in self.firing:
                self.firing[rule] = t
                out.append(("firing", alert, t))
        for rule in [r for r in self.firing if r not in now]:
            since = self.firing.pop(rule)
            out.append(("resolved", ZombieAlert(rule, self.resource, 0.0, 0.0, "no longer idle"), since))
        return out

    # -- table state (streams.state.codec) ---------------------------------------------------
    STATE_TAG = "gpu_tracker"
    STATE_VERSION = 1
    _STATE = Spec({
        "resource": str, "kind": str, "rules": ZombieRules, "gpus": dict, "usd_per_gpu_hour": NUM,
        "idle_since": (datetime, type(None)), "was_busy": bool, "last_active": (datetime, type(None)),
        "slot_sums": array, "slot_counts": array, "slot_start": int, "firing": dict, "util": dict,
        "max_gpus": int, "refused_samples": int})

    def to_state(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self._STATE.order}

    @classmethod
    def from_state(cls, state: dict[str, object]) -> "GpuTracker":
        fields(state, cls._STATE)
        gpus = mapping(state["gpus"], "gpus", str, datetime)
        util = mapping(state["util"], "util", str, NUM)
        mapping(state["firing"], "firing", str, datetime)
        cap = state["max_gpus"]
        if gpus.keys() != util.keys() or not 1 <= cap or len(gpus) > cap:  # type: ignore[operator]
            raise ValueError("gpus and util must name the same GPUs, at most max_gpus (>= 1)")
        for k, code in (("slot_sums", "f"), ("slot_counts", "H")):
            a = state[k]
            if a.typecode != code or len(a) != SLOTS:  # type: ignore[attr-defined]
                raise ValueError(f"field {k!r} must be {SLOTS} values of type {code!r}")
        tr = cls.__new__(cls)
        for k, v in state.items():
            setattr(tr, k, v)
        return tr


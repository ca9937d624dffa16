"""Zombie GPUs: allocated accelerators doing (almost) nothing, priced in $/h wasted.

Pure rules over a per-resource summary the stream keeps from GPU telemetry (engine
activity, requests served, allocation). Each rule returns a :class:`ZombieAlert` with
the dollars per hour being wasted, so alerts can be ranked and budgets charged.

======================  =====================================================================
rule                    fires when
======================  =====================================================================
idle_notebook           a notebook's GPUs are below ``idle_util`` for ``notebook_idle_min``
sweep_tail              a job/sweep that was busy now idles for ``sweep_tail_min`` while allocated
peak_sized_fleet        a serving fleet's 24 h p95 utilisation needs far fewer GPUs than allocated
stale_clone             an environment clone has had no activity for ``stale_days``
pinned_idle_model       a model server holds GPUs with no requests for ``pinned_idle_min``
======================  =====================================================================

>>> nb = GpuResource("nb-alice", "notebook", gpus=1, usd_per_gpu_hour=2.5, util_now=0.0, idle_minutes=95)
>>> [(a.rule, a.usd_per_hour) for a in check(nb)]
[('idle_notebook', 2.5)]
>>> fleet = GpuResource("chat-pool", "serving", gpus=16, usd_per_gpu_hour=4.0, util_now=0.2,
...                     util_p95_24h=0.15, requests_last_2h=9000)
>>> a = check(fleet)[0]
>>> a.rule, a.usd_per_hour, a.detail
('peak_sized_fleet', 48.0, 'p95 utilisation 15% over 24 h needs 4 of 16 GPUs at 60% target')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GpuResource:
    """What the stream knows about one GPU allocation (all fields observable from telemetry)."""

    resource: str
    kind: str  # "notebook" | "job" | "sweep" | "serving" | "clone"
    gpus: int
    usd_per_gpu_hour: float
    util_now: float  # engine activity 0..1 over the last bucket
    idle_minutes: float = 0.0  # consecutive minutes below the idle threshold
    was_busy: bool = False  # the job ran above the idle threshold earlier in its life
    util_p95_24h: float | None = None  # serving fleets
    requests_last_2h: int | None = None  # serving / model servers
    last_activity_age_h: float | None = None  # clones / environments

    @property
    def usd_per_hour(self) -> float:
        return self.gpus * self.usd_per_gpu_hour


@dataclass(frozen=True, slots=True)
class ZombieAlert:
    rule: str
    resource: str
    usd_per_hour: float
    gpus_wasted: float
    detail: str


@dataclass(frozen=True, slots=True)
class ZombieRules:
    idle_util: float = 0.05
    notebook_idle_min: float = 60.0
    sweep_tail_min: float = 30.0
    fleet_target_util: float = 0.6
    fleet_min_waste_gpus: int = 2
    stale_days: float = 7.0
    pinned_idle_min: float = 120.0


def _alert(rule: str, r: GpuResource, gpus: float, detail: str) -> ZombieAlert:
    return ZombieAlert(rule, r.resource, round(gpus * r.usd_per_gpu_hour, 4), gpus, detail)


def check(r: GpuResource, rules: ZombieRules = ZombieRules()) -> list[ZombieAlert]:
    """Every rule that fires for ``r`` (usually zero or one).

    >>> job = GpuResource("sweep-7", "sweep", gpus=8, usd_per_gpu_hour=3.0, util_now=0.01,
    ...                   idle_minutes=45, was_busy=True)
    >>> [(a.rule, a.usd_per_hour) for a in check(job)]
    [('sweep_tail', 24.0)]
    >>> busy = GpuResource("train", "job", gpus=8, usd_per_gpu_hour=3.0, util_now=0.9)
    >>> check(busy)
    []
    """
    out: list[ZombieAlert] = []
    idle = r.util_now < rules.idle_util
    if r.kind == "notebook" and idle and r.idle_minutes >= rules.notebook_idle_min:
        out.append(_alert("idle_notebook", r, r.gpus, f"idle {r.idle_minutes:.0f} min"))
    if r.kind in ("job", "sweep") and idle and r.was_busy and r.idle_minutes >= rules.sweep_tail_min:
        out.append(_alert("sweep_tail", r, r.gpus, f"finished work, still allocated {r.idle_minutes:.0f} min"))
    if r.kind == "serving" and r.util_p95_24h is not None and r.gpus > 0:
        needed = max(1, math.ceil(r.gpus * r.util_p95_24h / rules.fleet_target_util))
        if r.gpus - needed >= rules.fleet_min_waste_gpus:
            out.append(_alert("peak_sized_fleet", r, r.gpus - needed,
                              f"p95 utilisation {100 * r.util_p95_24h:.0f}% over 24 h needs {needed} of {r.gpus} GPUs "
                              f"at {100 * rules.fleet_target_util:.0f}% target"))
    if r.kind == "clone" and r.last_activity_age_h is not None and r.last_activity_age_h >= 24 * rules.stale_days:
        out.append(_alert("stale_clone", r, r.gpus, f"no activity for {r.last_activity_age_h / 24:.1f} days"))
    if r.kind == "serving" and r.requests_last_2h == 0 and idle and r.idle_minutes >= rules.pinned_idle_min:
        out.append(_alert("pinned_idle_model", r, r.gpus, f"no requests, idle {r.idle_minutes:.0f} min"))
    return out


def scan(resources: Iterable[GpuResource], rules: ZombieRules = ZombieRules()) -> list[ZombieAlert]:
    """All alerts over a fleet, most expensive first.

    >>> rs = [GpuResource("a", "notebook", 1, 2.0, 0.0, idle_minutes=61),
    ...       GpuResource("m", "serving", 2, 4.0, 0.0, idle_minutes=180, requests_last_2h=0)]
    >>> [(a.resource, a.rule, a.usd_per_hour) for a in scan(rs)]
    [('m', 'pinned_idle_model', 8.0), ('a', 'idle_notebook', 2.0)]
    """
    alerts = [a for r in resources for a in check(r, rules)]
    return sorted(alerts, key=lambda a: (-a.usd_per_hour, a.resource, a.rule))


def wasted_usd_per_hour(alerts: Iterable[ZombieAlert]) -> float:
    """Total $/h over alerts, counting each resource once (its most expensive alert).

    >>> wasted_usd_per_hour([ZombieAlert("x", "a", 2.0, 1, ""), ZombieAlert("y", "a", 3.0, 1, "")])
    3.0
    """
    best: dict[str, float] = {}
    for a in alerts:
        best[a.resource] = max(best.get(a.resource, 0.0), a.usd_per_hour)
    return sum(best.values())

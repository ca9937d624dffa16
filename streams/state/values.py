"""The typed value of each table (one class per table, registered with the state codec and versioned).

| table | key | value |
|---|---|---|
| ``open_buckets`` | allocation key | :class:`~streams.state.windows.KeyWindows` |
| ``monitors`` | ``key#metric`` / ``key#children`` | :class:`SeriesState` / :class:`ChildrenState` |
| ``burn_trackers`` | budget id | :class:`BudgetState` |
| ``clocks`` | ``budget.spend/P`` | :class:`~streams.state.clocks.EventClock` |
| ``gpu_trackers`` | GPU allocation | :class:`GpuState` |
| ``model_activity`` | served model | :class:`ModelState` |
| ``sweeps`` | ``model.activity/P`` | :class:`Sweep` |

Each value carries what it already applied (:func:`streams.state.applied.already_applied`), so a
redelivered message changes nothing.

>>> from streams.state.codec import decode, encode
>>> from detectors.child_baselines import ChildBaselines
>>> s = decode(encode(ChildrenState(seq=3, at=0.0, baselines=ChildBaselines())))
>>> s.seq, type(s.baselines).__name__
(3, 'ChildBaselines')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from detectors.child_baselines import ChildBaselines
from detectors.gpu_tracker import GpuTracker
from detectors.monitor import SeriesMonitor
from detectors.pinned_model import ModelActivity
from guardrails.burn_tracker import BurnTracker
from streams.state.clocks import EventClock
from streams.state.codec import register, state_type
from streams.state.windows import KeyWindows

def _key_windows_v3(state: dict[str, Any]) -> dict[str, Any]:
    """v2 clocks ``[newest, idle]`` -> v3 ``[newest, bound]``: active None; idle unbounded (v2 let it hold nothing back)."""
    clocks = state.get("clocks")
    if isinstance(clocks, dict):
        state = {**state, "clocks": {c: [r[0], math.inf if r[1] else None] if isinstance(r, list) and len(r) == 2
                                     else r for c, r in clocks.items()}}
    return state


register(KeyWindows, "key_windows", 3, check=KeyWindows.check,
         migrations={1: lambda state: {**state, "input_offset": -1},  # v2: the last costs offset applied
                     2: _key_windows_v3})  # v3: an idle clock carries the bound its idleness was confirmed up to
register(EventClock, "event_clock", 1, check=EventClock.check)


@dataclass(slots=True)
class SeriesState:
    """One metric of one key under watch: the monitor, and the last bucket it learnt from (batch seq, start).
    Held once per live series: stored positionally (version 2; version 1 was a dict by field name)."""

    seq: int
    at: float
    monitor: SeriesMonitor


def _series_v2(state: dict[str, Any]) -> list[Any]:
    """v1 ``{"seq", "at", "monitor"}`` -> v2 ``[seq, at, monitor]``."""
    if type(state) is not dict or state.keys() != {"seq", "at", "monitor"}:
        raise ValueError("a version-1 series state is a dict of seq, at and monitor")
    return [state["seq"], state["at"], state["monitor"]]


register(SeriesState, "series", 2, positional=True, migrations={1: _series_v2})


@state_type("children", 1)
@dataclass(slots=True)
class ChildrenState:
    """A roll-up key's per-child spend baselines (root cause), and the last bucket applied (seq, start)."""

    seq: int
    at: float
    baselines: ChildBaselines


@state_type("budget", 1)
@dataclass(slots=True)
class BudgetState:
    """One budget's burn tracker and, per usage partition, the newest source offset whose spend it holds."""

    partition: int
    tracker: BurnTracker
    applied: dict[str, int] = field(default_factory=dict)


@state_type("gpu", 1)
@dataclass(slots=True)
class GpuState:
    """One GPU allocation's tracker, the source offsets applied, its partition and when it was last sampled
    (message time: a pod deleted long ago is forgotten after ``key_ttl_seconds``)."""

    tracker: GpuTracker
    applied: dict[str, int] = field(default_factory=dict)
    partition: int = 0
    touched: float = 0.0


@state_type("model", 1)
@dataclass(slots=True)
class ModelState:
    """One served model's pinned-idle join, its partition (sweeps) and the source offsets applied."""

    partition: int
    activity: ModelActivity
    applied: dict[str, int] = field(default_factory=dict)


@state_type("sweep", 1)
@dataclass(slots=True)
class Sweep:
    """When a partition's keys were last swept (wall time)."""

    at: float

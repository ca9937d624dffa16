"""The typed value of each table (one class per table, registered with the state codec and versioned).

| table | key | value |
|---|---|---|
| ``open_buckets`` | allocation key | :class:`~streams.state.windows.KeyWindows` |
| ``monitors`` | allocation key | :class:`KeyMonitors` (before: ``key#metric`` :class:`SeriesState`, ``key#children``
  :class:`ChildrenState`, ``key#siblings`` :class:`SiblingsState`, one value per series) |
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
from detectors.sibling_prior import SiblingPrior
from guardrails.burn_tracker import BurnTracker
from schemas.bucket import METRICS
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


register(SiblingPrior)


@state_type("siblings", 1)
@dataclass(slots=True)
class SiblingsState:
    """A roll-up key's sibling prior (cold start), and the last bucket applied (batch seq, start)."""

    seq: int
    at: float
    prior: SiblingPrior


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


#: The state of each kind of series a key has: a metric's :class:`SeriesState`, a roll-up's root-cause
#: baselines (``children``, :class:`ChildrenState`) and cold-start sibling prior (``siblings``, :class:`SiblingsState`).
SERIES_KINDS: dict[str, type] = {**dict.fromkeys(METRICS, SeriesState), "children": ChildrenState,
                                 "siblings": SiblingsState}
#: what each kind's state holds besides (seq, at): its field name and exact class
_HELD: dict[type, tuple[str, type]] = {SeriesState: ("monitor", SeriesMonitor),
                                       ChildrenState: ("baselines", ChildBaselines),
                                       SiblingsState: ("prior", SiblingPrior)}


def legacy_key(key: str, kind: str) -> str:
    """Where a key's series of ``kind`` was stored before :class:`KeyMonitors` (one ``monitors`` value each)."""
    return f"{key}#{kind}"


class KeyMonitors:
    """Every series one allocation key has under watch, in one ``monitors`` value: one table write (one
    changelog message) per key per buckets message, where one value per series took ~6. ``series`` maps a
    kind (:data:`SERIES_KINDS`) to its state, each with the last bucket it learnt from (batch seq, start), so a
    redelivered batch teaches no series twice. Stored (version 1) as ``{kind: [seq, at, held]}``, no wrapper
    per series; the layout before it (``key#kind`` values, each decoded through its own migrations) is taken
    in by :meth:`adopt`.

    >>> from streams.state.codec import decode, encode
    >>> k = KeyMonitors({"children": ChildrenState(3, 60.0, ChildBaselines())})
    >>> again = decode(encode(k))
    >>> list(again.series), again.series["children"].seq
    (['children'], 3)
    >>> KeyMonitors.from_state({"spend": [3, 60.0, ChildBaselines()]})
    Traceback (most recent call last):
    ...
    ValueError: series 'spend' holds a ChildBaselines, not a SeriesMonitor
    """

    __slots__ = ("series",)
    STATE_TAG = "key_monitors"
    STATE_VERSION = 1

    def __init__(self, series: dict[str, Any] | None = None) -> None:
        self.series: dict[str, Any] = {} if series is None else series

    @classmethod
    def adopt(cls, legacy: dict[str, Any]) -> KeyMonitors:
        """A key's per-series values of the layout before (kind -> the :data:`SERIES_KINDS` state decoded from
        ``legacy_key(key, kind)``), as one value; ``ValueError`` for a value of the wrong kind."""
        for kind, state in legacy.items():
            if SERIES_KINDS.get(kind) is not type(state):
                raise ValueError(f"series {kind!r} cannot hold a {type(state).__name__}")
        return cls(dict(legacy))

    def to_state(self) -> dict[str, list[Any]]:
        out = {}
        for kind, s in self.series.items():
            if SERIES_KINDS.get(kind) is not type(s):
                raise ValueError(f"series {kind!r} cannot hold a {type(s).__name__}")
            out[kind] = [s.seq, s.at, getattr(s, _HELD[type(s)][0])]
        return out

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> KeyMonitors:
        if type(state) is not dict:
            raise ValueError("a key's monitors are a dict of series")
        series = {}
        for kind, entry in state.items():
            kind_cls = SERIES_KINDS.get(kind) if type(kind) is str else None
            if kind_cls is None:
                raise ValueError(f"unknown series kind {str(kind)[:40]!r}")
            if type(entry) is not list or len(entry) != 3:
                raise ValueError(f"series {kind!r} is not [seq, at, state]")
            seq, at, held = entry
            if type(seq) is not int or type(at) not in (float, int):
                raise ValueError(f"series {kind!r}: seq must be an int and at a number")
            held_cls = _HELD[kind_cls][1]
            if type(held) is not held_cls:
                raise ValueError(f"series {kind!r} holds a {type(held).__name__}, not a {held_cls.__name__}")
            series[kind] = kind_cls(seq, float(at), held)
        return cls(series)


register(KeyMonitors)

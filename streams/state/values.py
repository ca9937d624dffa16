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
from streams.state.codec import PREFIX, StateDecodeError, decode, encode, plain_state, register, state_type
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
    changelog message) per key per buckets message, where one value per series took ~6. A kind
    (:data:`SERIES_KINDS`) maps to its state, each with the last bucket it learnt from (batch seq, start), so a
    redelivered batch teaches no series twice.

    Stored (version 2) as ``{kind: [seq, at, held]}``, ``held`` the series' own codec value (its tag, version
    and state) as bytes: a series is decoded when read (:meth:`get`, checked then like any table value) and
    encoded again only if it was, so a bucket scoring one of a key's series costs one series, not all of them.
    Version 1 nested the held objects themselves; the layout before (``key#kind`` values, each decoded through
    its own migrations) is taken in by :meth:`adopt`.

    >>> from streams.state.codec import decode, encode
    >>> k = decode(encode(KeyMonitors({"children": ChildrenState(3, 60.0, ChildBaselines())})))
    >>> k.kinds(), k.get("children").seq, k.get("spend")
    (['children'], 3, None)
    >>> KeyMonitors.from_state({"spend": [3, 60.0, "not bytes"]})
    Traceback (most recent call last):
    ...
    ValueError: series 'spend' is not [seq, at, bytes]
    """

    __slots__ = ("series", "packed")
    STATE_TAG = "key_monitors"
    STATE_VERSION = 2

    def __init__(self, series: dict[str, Any] | None = None, packed: dict[str, list[Any]] | None = None) -> None:
        #: kind -> its state, decoded (read or set since this value was decoded)
        self.series: dict[str, Any] = {} if series is None else series
        #: kind -> ``[seq, at, held bytes]`` as stored, not decoded
        self.packed: dict[str, list[Any]] = {} if packed is None else packed

    @classmethod
    def adopt(cls, legacy: dict[str, Any]) -> KeyMonitors:
        """A key's per-series values of the layout before (kind -> the :data:`SERIES_KINDS` state decoded from
        ``legacy_key(key, kind)``), as one value; ``ValueError`` for a value of the wrong kind."""
        for kind, state in legacy.items():
            _check_kind(kind, state)
        return cls(dict(legacy))

    def kinds(self) -> list[str]:
        return list({**dict.fromkeys(self.packed), **dict.fromkeys(self.series)})

    def get(self, kind: str) -> Any:
        """The state of series ``kind`` (``None``: none yet); :class:`StateDecodeError` if its bytes are not a
        value of its kind."""
        state = self.series.get(kind)
        if state is not None or kind not in self.packed:
            return state
        seq, at, held = self.packed[kind]
        kind_cls = SERIES_KINDS[kind]
        value = decode(PREFIX + held)
        if type(value) is not _HELD[kind_cls][1]:
            raise StateDecodeError(f"series {kind!r} holds a {type(value).__name__}, not a "
                                   f"{_HELD[kind_cls][1].__name__}")
        state = self.series[kind] = kind_cls(seq, at, value)
        return state

    def set(self, kind: str, state: Any) -> None:
        _check_kind(kind, state)
        self.series[kind] = state

    def items(self) -> list[tuple[str, Any]]:
        """Every series, decoded (tools and tests)."""
        return [(kind, self.get(kind)) for kind in self.kinds()]

    def to_state(self) -> dict[str, list[Any]]:
        out = {}
        for kind in self.kinds():
            s = self.series.get(kind)
            out[kind] = self.packed[kind] if s is None else [s.seq, s.at, _held_bytes(getattr(s, _HELD[type(s)][0]))]
        return out

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> KeyMonitors:
        if type(state) is not dict:
            raise ValueError("a key's monitors are a dict of series")
        for kind, entry in state.items():
            if type(kind) is not str or kind not in SERIES_KINDS:
                raise ValueError(f"unknown series kind {str(kind)[:40]!r}")
            if type(entry) is not list or len(entry) != 3 or type(entry[2]) is not bytes or not entry[2]:
                raise ValueError(f"series {kind!r} is not [seq, at, bytes]")
            if type(entry[0]) is not int or type(entry[1]) not in (float, int):
                raise ValueError(f"series {kind!r}: seq must be an int and at a number")
            entry[1] = float(entry[1])
        return cls(packed=state)


def _held_bytes(held: Any) -> bytes:
    """A series' held object as its own codec value, without the format prefix (the key's value has it)."""
    return encode(held)[len(PREFIX):]


def _check_kind(kind: str, state: Any) -> None:
    if SERIES_KINDS.get(kind) is not type(state):
        raise ValueError(f"series {kind!r} cannot hold a {type(state).__name__}")


def _key_monitors_v2(state: Any) -> dict[str, list[Any]]:
    """v1 ``{kind: [seq, at, held object]}`` -> v2 ``{kind: [seq, at, held bytes]}``."""
    if type(state) is not dict:
        raise ValueError("a key's monitors are a dict of series")
    out = {}
    for kind, entry in state.items():
        kind_cls = SERIES_KINDS.get(kind) if type(kind) is str else None
        if kind_cls is None or type(entry) is not list or len(entry) != 3:
            raise ValueError(f"series {str(kind)[:40]!r} is not a known kind's [seq, at, state]")
        if type(entry[2]) is not _HELD[kind_cls][1]:
            raise ValueError(f"series {kind!r} holds a {type(entry[2]).__name__}, "
                             f"not a {_HELD[kind_cls][1].__name__}")
        out[kind] = [entry[0], entry[1], _held_bytes(entry[2])]
    return out


register(KeyMonitors, migrations={1: _key_monitors_v2})
plain_state(KeyMonitors)  # its state is numbers and bytes: written without walking it

"""SeasonalZ's table state: the declared fields in a fixed order, checked field by field when read back.

:class:`~detectors.seasonal_z.SeasonalZ` stores its ``__dict__`` through ``streams.state.codec`` as a
list in the order of :data:`STATE_TYPES` (version 2: positional, no field names, ~570 B less per series
than version 1's dict, which :func:`migrate_v1` turns into it); all-zero arrays (warm-up, before seasonal
learning starts) are stored as their length. :func:`from_state` refuses a value the detector could not
work with (a wrong length or type, an array of the wrong length, an unknown transform, a twin of another
class).

>>> from detectors.seasonal_z import SeasonalZ
>>> d = SeasonalZ()
>>> state = to_state(d)
>>> state[ORDER.index("daily")], type(from_state(SeasonalZ, state)) is SeasonalZ
(24, True)
>>> from_state(SeasonalZ, migrate_v1({**as_dict(state), "transform": "cube"}))
Traceback (most recent call last):
...
ValueError: unknown transform
>>> from_state(SeasonalZ, state[:-1])
Traceback (most recent call last):
...
ValueError: state is not a list of the 48 fields
"""

from __future__ import annotations

from array import array
from typing import Any

from detectors.statecheck import NUM, Spec, fields, floats

#: float32 arrays and their lengths
ARRAYS = {"daily": 24, "weekly": 168, "hourly_ms": 24}
_ARR = (array, int)
STATE_TYPES = Spec({
    "_alt": object, "_bc": (list, type(None)), "raw_margin": NUM, "qd99": NUM, "qd999": NUM, "transform": str,
    "use_log": bool, "shift_k": NUM, "shift": NUM, "_pre": (list, type(None)), "two_sided": bool,
    "level_alpha": NUM, "season_alpha": NUM, "scale_alpha": NUM, "tail_alpha": NUM, "clip": NUM, "scale_clip": NUM,
    "min_rel_scale": NUM, "warmup": int, "min_obs": int, "warmup_s": NUM, "seasonal": bool, "per_minute": bool,
    "burst": bool, "hold": NUM, "lg_mean": NUM, "lg_fast": NUM, "lg_var": NUM, "short_alpha": NUM, "zs": NUM,
    "zs_ms": NUM, "weekly_alpha": NUM, "hourly_scale": bool, "hourly_alpha": NUM, "hourly_floor": NUM,
    "hourly_ms": _ARR, "level": NUM, "hour": int, "rms": NUM, "q99": NUM, "q999": NUM, "daily": _ARR,
    "weekly": _ARR, "n": int, "t_first": NUM, "t_last": NUM, "_warm": bool, "name": (str, type(None))})


#: the fields' order in a version-2 state
ORDER = STATE_TYPES.order
_ARRAY_AT = tuple(ORDER.index(k) for k in ARRAYS)


def _pack(v: object) -> object:
    return len(v) if isinstance(v, array) and not any(v) else v


def to_state(d: Any) -> list[object]:
    """The detector's fields in :data:`ORDER` (``name`` None but for a renamed variant), all-zero arrays
    as their length."""
    f = d.__dict__
    state = [f.get(k) for k in ORDER]  # (only "name" may be absent: the class's)
    for i in _ARRAY_AT:
        state[i] = _pack(state[i])
    return state


def as_dict(state: list[object]) -> dict[str, object]:
    """A version-2 (positional) state by field name (a version-1 state)."""
    if type(state) is not list or len(state) != len(ORDER):
        raise ValueError(f"state is not a list of the {len(ORDER)} fields")
    return dict(zip(ORDER, state))


def migrate_v1(state: dict[str, object]) -> list[object]:
    """Version 1 (a dict by field name) -> version 2 (positional); ``ValueError`` if its fields differ."""
    fields(state, STATE_TYPES)
    return [state[k] for k in ORDER]


def from_state(cls: type, positional: list[object]) -> Any:
    """A ``cls`` (SeasonalZ) rebuilt from :func:`to_state`'s output, without ``__init__``; ``ValueError``
    for a state it could not work with."""
    state = as_dict(positional)
    fields(state, STATE_TYPES)
    for k, n in ARRAYS.items():
        v = state[k]
        if (len(v) if isinstance(v, array) else v) != n or (isinstance(v, array) and v.typecode != "f"):
            raise ValueError(f"field {k!r} must be {n} float32 values")
    if state["_bc"] is not None:
        floats(state["_bc"], "_bc", length=5)
    if state["_pre"] is not None:
        floats(state["_pre"], "_pre", length=3)
    if state["transform"] not in ("raw", "log", "auto", "shift"):
        raise ValueError("unknown transform")
    if state["_alt"] is not None and type(state["_alt"]) is not cls:
        raise ValueError("the raw-space twin must be a SeasonalZ")
    d = cls.__new__(cls)
    d.__dict__.update(state)
    for k, n in ARRAYS.items():
        if type(state[k]) is int:
            setattr(d, k, array("f", bytes(4 * n)))
    if state["name"] is None:
        del d.__dict__["name"]  # the class's name
    return d

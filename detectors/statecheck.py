"""Checks for a decoded state dict before a class rebuilds itself from it (``from_state``).

A state class's ``to_state()`` returns a dict of plain data and its ``from_state(state)``
classmethod rebuilds the object without running ``__init__`` on decoded arguments; the table
codec (:mod:`streams.state.codec`) calls them. :func:`fields` refuses a state whose field names or
types differ from what the class writes, so a forged value fails at decode (and is quarantined)
instead of failing later, or looping or allocating on lengths it chose.

>>> fields({"n": 3, "mean": 1.5}, {"n": int, "mean": NUM})
{'n': 3, 'mean': 1.5}
>>> fields({"n": "3", "mean": 1.5}, {"n": int, "mean": NUM})
Traceback (most recent call last):
...
ValueError: field 'n' is str, expected int
>>> floats([1.0, 2], "level", max_len=2)
[1.0, 2]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: A number field (an int written where a float is usual compares and computes the same).
NUM = (int, float)
OPT_NUM = (int, float, type(None))


class Spec:
    """Field names and their allowed *exact* types (``object``: anything), compiled once per class."""

    __slots__ = ("order", "names", "checks")

    def __init__(self, types: Mapping[str, type | tuple[type, ...]]) -> None:
        self.order = tuple(types)  # the order to_state() writes them in (deterministic bytes)
        self.names = frozenset(types)
        self.checks = tuple((name, None if t is object else frozenset(t if isinstance(t, tuple) else (t,)))
                            for name, t in types.items())


def fields(state: Mapping[str, Any], spec: Spec | Mapping[str, type | tuple[type, ...]]) -> Mapping[str, Any]:
    """``state`` itself if it has exactly the fields of ``spec``, each of its exact type(s) (so a ``bool``
    is not an ``int``); else ValueError."""
    if not isinstance(spec, Spec):
        spec = Spec(spec)
    if state.keys() != spec.names:
        missing, extra = sorted(spec.names - state.keys()), sorted(map(str, state.keys() - spec.names))
        raise ValueError(f"fields differ (missing {missing}, unexpected {extra})")
    for name, allowed in spec.checks:
        if allowed is not None and type(state[name]) not in allowed:
            names = "/".join(sorted(t.__name__ for t in allowed))
            raise ValueError(f"field {name!r} is {type(state[name]).__name__}, expected {names}")
    return state


def floats(v: Any, name: str, max_len: int | None = None, length: int | None = None) -> list[Any]:
    """``v`` if it is a list of numbers (of ``length``, or at most ``max_len``); else ValueError."""
    if type(v) is not list or (length is not None and len(v) != length) or (max_len is not None and len(v) > max_len):
        raise ValueError(f"field {name!r} is not a list of {length or max_len or 'any number of'} numbers")
    if not all(type(x) is float or type(x) is int for x in v):
        raise ValueError(f"field {name!r} holds a non-number")
    return v


def mapping(v: Any, name: str, key: type, value: type | tuple[type, ...]) -> dict[Any, Any]:
    """``v`` if it is a dict of ``key`` -> ``value`` items (exact types); else ValueError."""
    if type(v) is not dict:
        raise ValueError(f"field {name!r} is {type(v).__name__}, expected dict")
    allowed = value if isinstance(value, tuple) else (value,)
    for k, x in v.items():
        if type(k) is not key or type(x) not in allowed:
            raise ValueError(f"field {name!r} holds {type(k).__name__} -> {type(x).__name__}")
    return v

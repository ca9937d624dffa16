"""Durations as written in policy files: ``90s``, ``30m``, ``4h``, ``1d``, ``2w``, ``1h30m``, or seconds.

>>> parse_duration("4h"), parse_duration("1h30m"), parse_duration(90)
(datetime.timedelta(seconds=14400), datetime.timedelta(seconds=5400), datetime.timedelta(seconds=90))
>>> format_duration(parse_duration("1d2h")), format_duration(timedelta(seconds=90))
('1d2h', '1m30s')
>>> parse_duration("soon")
Traceback (most recent call last):
...
ValueError: 'soon' is not a duration; write e.g. 90s, 30m, 4h, 1d, 2w or 1h30m
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?[smhdw])+$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(v: Any) -> timedelta:
    """A positive duration from ``4h``-style text, a number of seconds or a ``timedelta``."""
    if isinstance(v, timedelta):
        td = v
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        td = timedelta(seconds=v)
    elif isinstance(v, str) and _WHOLE.match(v.strip()):
        td = timedelta(seconds=sum(float(n) * _UNIT_S[u] for n, u in _PART.findall(v.strip())))
    else:
        raise ValueError(f"{v!r} is not a duration; write e.g. 90s, 30m, 4h, 1d, 2w or 1h30m")
    if td <= timedelta(0):
        raise ValueError("a duration must be positive")
    return td


def format_duration(td: timedelta) -> str:
    """The shortest ``1d2h``-style text for ``td`` (whole seconds)."""
    s = int(td.total_seconds())
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if s >= size:
            out.append(f"{s // size}{unit}")
            s %= size
    return "".join(out) or "0s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]

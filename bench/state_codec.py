"""``python -m bench.state_codec``: size and speed of the table-state codec on typical values.

Values: a SeriesMonitor for each registered detector after 1,000 one-minute points (and
seasonal_z in warm-up, with its raw-space twin), and a roll-up key's KeyWindows with 3 open
minutes of 50 children each. For the wire library it also compares msgpack (msgspec) with
JSON (orjson) on the same plain tree (the state dicts, arrays as lists of numbers), so the choice
of library is measured rather than assumed.
"""

from __future__ import annotations

import math
import random
import timeit
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import orjson

from detectors.monitor import SeriesMonitor
from detectors.registry import DETECTORS, make_detector
from streams.state import codec, values  # noqa: F401 - values registers KeyWindows
from streams.state.windows import KeyWindows

T0 = datetime(2026, 11, 16, tzinfo=timezone.utc)


def monitor(name: str, points: int) -> SeriesMonitor:
    rng = random.Random(3)
    m = SeriesMonitor(make_detector(name))
    for i in range(points):
        m.observe(T0 + timedelta(minutes=i), 1.0 + 0.3 * math.sin(i / 60) + 0.05 * rng.gauss(0, 1))
    return m


def key_windows() -> KeyWindows:
    kw = KeyWindows("team=a", 60)
    t = T0.timestamp()
    for minute in range(3):
        for c in range(50):
            kw.add({"ts": t + 60 * minute + c, "cost_usd": 0.01 * c, "requests": 1, "input_tokens": 120,
                    "output_tokens": 80, "child": f"feature=f{c}|model=m"})
    kw.see_clock("usage.llm/0|gw", t + 150)
    return kw


def _us(fn: Any, n: int) -> float:
    return min(timeit.repeat(fn, number=n, repeat=3)) / n * 1e6


def plain_tree(v: Any) -> Any:
    """The registered objects as their state dicts (arrays as lists): what a JSON codec would write."""
    registered = {cls for cls, _ in codec.registered().values()}
    if type(v) in registered:
        tag, version, state = codec.state_of(v)
        return [tag, version, plain_tree(state)]
    if isinstance(v, dict):
        return {str(k): plain_tree(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain_tree(x) for x in v]
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, datetime):
        return v.isoformat()
    return v


def main() -> None:
    values = {f"monitor/{n}": monitor(n, 1000) for n in sorted(DETECTORS)}
    values["monitor/seasonal_z (warm-up, twin)"] = monitor("seasonal_z", 50)
    values["key_windows (3 open minutes x 50 children)"] = key_windows()
    print(f"{'value':44} {'bytes':>6} {'encode us':>10} {'decode us':>10}")
    for label, v in values.items():
        data = codec.encode(v)
        n = 2000
        print(f"{label:44} {len(data):6d} {_us(lambda: codec.encode(v), n):10.1f} "
              f"{_us(lambda: codec.decode(data), n):10.1f}")
    print("\nwire library on the plain tree of the same value (no object building):")
    print(f"{'value':44} {'msgpack B':>9} {'enc us':>7} {'dec us':>7} {'json B':>7} {'enc us':>7} {'dec us':>7}")
    enc, dec = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder()
    for label in ("monitor/seasonal_z", "key_windows (3 open minutes x 50 children)"):
        tree = plain_tree(values[label])
        mp, js = enc.encode(tree), orjson.dumps(tree)
        n = 5000
        print(f"{label:44} {len(mp):9d} {_us(lambda: enc.encode(tree), n):7.2f} {_us(lambda: dec.decode(mp), n):7.2f} "
              f"{len(js):7d} {_us(lambda: orjson.dumps(tree), n):7.2f} {_us(lambda: orjson.loads(js), n):7.2f}")


if __name__ == "__main__":
    main()

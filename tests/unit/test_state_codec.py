"""Every detector's state survives the table codec (a worker restart) with identical behaviour."""

from __future__ import annotations

import math
import pickle
import random
from datetime import datetime, timedelta, timezone

import pytest

from detectors.child_baselines import ChildBaselines
from detectors.monitor import SeriesMonitor
from detectors.registry import DETECTORS, make_detector
from streams import state_codec
from streams.windows import OpenBuckets

T0 = datetime(2026, 11, 16, tzinfo=timezone.utc)


def series(n: int, seed: int = 3) -> list[tuple[datetime, float]]:
    rng = random.Random(seed)
    return [(T0 + timedelta(minutes=i), 1.0 + 0.3 * math.sin(i / 60) + 0.05 * rng.gauss(0, 1)) for i in range(n)]


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_monitor_round_trips_through_the_codec_and_behaves_identically(name: str) -> None:
    monitor = SeriesMonitor(make_detector(name))
    points = series(400)
    for t, x in points[:300]:
        monitor.observe(t, x)
    restored = state_codec.loads(state_codec.dumps(monitor))
    tail = points[300:] + [(points[-1][0] + timedelta(minutes=1), 8.0)]
    got = [(restored.observe(t, x), restored.detector.score_one(x, t)) for t, x in tail]
    want = [(monitor.observe(t, x), monitor.detector.score_one(x, t)) for t, x in tail]
    assert got == want


def test_windows_and_child_baselines_round_trip() -> None:
    ob = OpenBuckets("k", 60, partition=2)
    ob.add({"ts": T0.timestamp(), "cost_usd": 1.5, "requests": 1, "child": "feature=a"})
    cb = ChildBaselines()
    cb.learn({"feature=a": 2.0})
    ob2, cb2 = state_codec.loads(state_codec.dumps(ob)), state_codec.loads(state_codec.dumps(cb))
    assert [b.model_dump() for b in ob2.close_all()] == [b.model_dump() for b in ob.close_all()]
    assert cb2.means == cb.means


def test_codec_refuses_code_execution() -> None:
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        state_codec.loads(pickle.dumps(Evil()))


@pytest.mark.parametrize("module,name", [
    ("numpy._core._methods", "os.system"),          # dotted name through an allowed package
    ("numpy._core.numeric", "builtins.eval"),
    ("numpy.testing._private.utils", "runstring"),  # a function inside an allowed package
    ("river.utils", "inspect"),                     # a module attribute, not a class
    ("streams.app", "app"),                         # our code, but not a state class
    ("builtins", "eval"),
])
def test_codec_refuses_globals_outside_the_allow_list(module: str, name: str) -> None:
    payload = b"\x80\x04c" + module.encode() + b"\n" + name.encode() + b"\n."  # protocol 0 GLOBAL opcode
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        state_codec.loads(payload)

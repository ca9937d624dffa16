"""The table-state codec: exact round trips of every stored class, and hostile values refused cheaply."""

from __future__ import annotations

import math
import pickle
import random
import time
import tracemalloc
from array import array
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.child_baselines import ChildBaselines
from detectors.ew_zscore import EwZScore
from detectors.gpu_tracker import GpuTracker
from detectors.monitor import SeriesMonitor
from detectors import seasonal_z_state
from detectors.pinned_model import ModelActivity, ServingStatus
from detectors.registry import DETECTORS, make_detector
from detectors.zombie_gpu import ZombieRules
from guardrails.burn_rate import DEFAULT_RULES
from guardrails.burn_tracker import BurnTracker
from streams.state.codec import (PREFIX, Limits, StateDecodeError, StateEncodeError, decode, encode, register,
                                 registered, state_type)

T0 = datetime(2026, 11, 16, tzinfo=timezone.utc)
MB = 1 << 20


def series(n: int, seed: int = 3) -> list[tuple[datetime, float]]:
    """A daily shape with noise, a spike at 1,400 and a level shift from 1,700 (incidents open and resolve)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        x = 1.0 + 0.3 * math.sin(i / 60) + 0.05 * rng.gauss(0, 1)
        x *= 6.0 if 1400 <= i < 1404 else (2.0 if i >= 1700 else 1.0)
        out.append((T0 + timedelta(minutes=i), x))
    return out


def raw(tag: str, version: int, state: dict | list) -> bytes:
    """Hand-written table bytes of one object (what a forged changelog record would hold): any tag and
    version around a state dict whose values are written as the codec writes them."""
    enc = msgspec.msgpack.Encoder()
    body = b"\x93" + enc.encode(tag) + enc.encode(version) + encode(state)[len(PREFIX):]
    return PREFIX + enc.encode(msgspec.msgpack.Ext(2, body))


def peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def refused(data: bytes, match: str | None = None, **kw) -> StateDecodeError:
    with pytest.raises(StateDecodeError, match=match) as err:
        decode(data, **kw)
    return err.value


# ------------------------------------------------------------------------------ round trips

@pytest.mark.parametrize("split", [50, 1000])  # in warm-up (seasonal_z's raw twin present) and after it
@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_monitor_encoded_midway_scores_exactly_like_one_never_encoded(name: str, split: int) -> None:
    points = series(2000)
    kept, restored = SeriesMonitor(make_detector(name)), SeriesMonitor(make_detector(name))
    for t, x in points[:split]:
        kept.observe(t, x)
        restored.observe(t, x)
    restored = decode(encode(restored), expect=SeriesMonitor)
    assert type(restored.detector) is type(kept.detector) and restored.detector.name == kept.detector.name
    got, want = [], []
    for t, x in points[split:]:
        got.append((restored.observe(t, x), restored.last_score, restored.detector.score_one(x, t),
                    restored.detector.expected()))
        want.append((kept.observe(t, x), kept.last_score, kept.detector.score_one(x, t), kept.detector.expected()))
    assert got == want
    if name.startswith("seasonal_z"):  # the series has incidents: the comparison covers them
        assert any(g[0] is not None and g[0].status == "resolved" for g in got)
    assert encode(restored) == encode(kept)  # and the whole state is the same afterwards


def attributes(obj: object) -> dict:
    if hasattr(obj, "__dict__"):
        return dict(vars(obj))
    return {s: getattr(obj, s) for c in type(obj).__mro__ for s in getattr(c, "__slots__", ())}


def stored_values() -> dict[str, object]:
    """One of each state class the service stores, with non-trivial contents."""
    cb = ChildBaselines()
    cb.learn({"feature=a": 2.0, "feature=b": 0.5})
    tr = BurnTracker("team-a", 3000.0, "month", DEFAULT_RULES)
    for m in range(40):
        tr.observe(T0 + timedelta(minutes=m), 2.6)  # opens the fast-burn incident
    gpu = GpuTracker("jupyter-a/nb-0", "notebook")
    for m in range(90):
        gpu.observe(T0 + timedelta(minutes=m), "GPU-1", 0.7 if m < 20 else 0.0, 2.5 / 60, 60)
    ma = ModelActivity("llama", ZombieRules(pinned_idle_min=30.0))
    ma.add_requests([(T0.timestamp(), 3)])
    ma.update_server(ServingStatus("serving/vllm-0", T0.timestamp() + 7200, 0.0, T0.timestamp(), 2, 4.0))
    assert tr.active and gpu.firing and ma.firing  # incidents open in each
    return {"child_baselines": cb, "burn_tracker": tr, "gpu_tracker": gpu, "model_activity": ma}


@pytest.mark.parametrize("name", ["child_baselines", "burn_tracker", "gpu_tracker", "model_activity"])
def test_every_stored_class_round_trips_with_all_its_attributes(name: str) -> None:
    value = stored_values()[name]
    back = decode(encode(value), expect=type(value))
    assert attributes(back).keys() == attributes(value).keys()
    assert encode(back) == encode(value)


def test_trackers_behave_identically_after_a_round_trip() -> None:
    values = stored_values()
    tr, gpu, ma = values["burn_tracker"], values["gpu_tracker"], values["model_activity"]
    tr2, gpu2, ma2 = (decode(encode(v)) for v in (tr, gpu, ma))
    later = T0 + timedelta(minutes=41)
    assert tr2.observe(later, 0.1) == tr.observe(later, 0.1)
    assert tr2.advance(later + timedelta(minutes=30)) == tr.advance(later + timedelta(minutes=30))
    assert tr2 == tr
    assert gpu2.observe(later + timedelta(hours=1), "GPU-1", 0.9, 0.04, 60) == \
        gpu.observe(later + timedelta(hours=1), "GPU-1", 0.9, 0.04, 60)
    assert ma2.add_requests([(T0.timestamp() + 7300, 1)]) == ma.add_requests([(T0.timestamp() + 7300, 1)])
    assert encode(gpu2) == encode(gpu) and encode(ma2) == encode(ma)


def test_ew_zscore_keeps_rivers_ew_mean_and_variance_bit_for_bit() -> None:
    from river import stats

    rng = random.Random(5)
    d, mean, var = EwZScore(fading_factor=0.05), stats.EWMean(0.05), stats.EWVar(0.05)
    for i in range(5000):
        x = rng.lognormvariate(0, 2) if i % 7 else rng.choice([0.0, 1e-300, 1e12])
        d.learn_one(x, T0)
        lx = math.log(max(x, 1e-12))
        mean.update(lx)
        var.update(lx)
        assert (d.m, d.sq - d.m * d.m) == (mean.get(), var.get())


def test_plain_values_round_trip_with_their_exact_types() -> None:
    value = (
        None, True, -(2 ** 63), 2 ** 64 - 1, 1.5, math.inf, "é", b"\x00\xff", [1, [2.0, (3, "x")]],
        {"a": 1, 7: (None,)}, (), datetime(2026, 11, 20, 9, 30), datetime(2026, 11, 20, 9, tzinfo=timezone.utc),
        datetime(2026, 11, 20, 9, 30, 0, 12, tzinfo=timezone(timedelta(hours=-5))), array("f", [1.0, 2.5]),
        array("H", [0, 65535]), np.arange(6, dtype="<f4").reshape(2, 3), np.array([True, False]),
        np.zeros((0, 3), dtype="<i8"), ZombieRules(), ServingStatus("r", 1.0, 0.5, None, 2, 3.0),
    )
    back = decode(encode(value))
    assert [type(v) for v in back] == [type(v) for v in value]
    for a, b in zip(value, back):
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and a.shape == b.shape and (a == b).all() and b.flags.writeable
        else:
            assert a == b
    assert back[13].hour == 9 and back[13].utcoffset() == timedelta(hours=-5)  # wall time and offset kept


@state_type("test_point", 2, migrations={1: lambda s: {"x": s["x"], "y": s["x"] * 2}})
@dataclass(slots=True)
class Point:
    x: float
    y: float


def test_registered_dataclass_round_trips_and_an_old_version_is_migrated() -> None:
    assert decode(encode(Point(1.0, 3.0))) == Point(1.0, 3.0)
    assert decode(raw("test_point", 1, {"x": 2.0})) == Point(2.0, 4.0)  # version 1 had no y
    refused(raw("test_point", 2, {"x": "one", "y": 1.0}), "test_point version 2: Expected `float`")
    refused(raw("test_point", 3, {"x": 1.0, "y": 1.0}), "test_point version 3, this code reads up to 2")
    assert registered()["test_point"] == (Point, 2)


def test_a_tag_belongs_to_one_class() -> None:
    class Other:
        __slots__ = ("x",)

    with pytest.raises(ValueError, match="taken"):
        register(Other, "test_point", 1)


def test_encode_refuses_what_it_could_not_read_back() -> None:
    class Unregistered:
        pass

    for bad in (Unregistered(), {(1, 2): 3}, np.array(["a"]), np.float64(1.0), {1.5: 1}, 2 ** 64, [1, {"a": 2 ** 70}]):
        with pytest.raises(StateEncodeError):
            encode(bad)
    with pytest.raises(StateEncodeError, match="over the 100-byte limit"):
        encode("x" * 200, Limits(max_bytes=100))
    nested: object = 1
    for _ in range(40):
        nested = (nested,)
    with pytest.raises(StateEncodeError, match="deeper than 32"):
        encode(nested)


# ------------------------------------------------------------------------------ hostile values

#: pickle for bytearray(50_000_000): the restricted unpickler this codec replaces built it (47 MB traced)
THE_OLD_BOMB = b"\x80\x04cbuiltins\nbytearray\nJ\x80\xf0\xfa\x02\x85R."


def test_the_old_pickle_bomb_is_refused_within_bounded_memory() -> None:
    assert len(THE_OLD_BOMB) == 30 and pickle.loads(THE_OLD_BOMB) == bytearray(50_000_000)  # what it is
    assert peak_bytes(lambda: refused(THE_OLD_BOMB, "a pickle")) < MB


def forged() -> dict[str, tuple[bytes, str]]:
    mon = SeriesMonitor(make_detector("seasonal_z")).to_state()
    mon_v1 = dict(zip(SeriesMonitor.STATE_FIELDS, mon))  # version 1: the same fields by name
    sz = make_detector("seasonal_z").to_state()
    sz_v1 = dict(zip(seasonal_z_state.ORDER, sz))
    weekly_at = seasonal_z_state.ORDER.index("weekly")
    enc = msgspec.msgpack.Encoder()
    ext = msgspec.msgpack.Ext
    deep_tuple = enc.encode(None)
    for _ in range(1000):
        deep_tuple = enc.encode(ext(1, deep_tuple))
    return {
        "oversized": (PREFIX + b"\xc4" + b"x" * (2 * MB), "over the 1048576-byte limit"),
        "wrong version": (raw("child_baselines", 99, ChildBaselines().to_state()),
                          "version 99, this code reads up to 1"),
        "version 0": (raw("child_baselines", 0, ChildBaselines().to_state()), "version 0"),
        "wrong type tag": (raw("seasonal_z", 1, ChildBaselines().to_state()),
                           "seasonal_z migration from version 1: fields differ"),
        "positional seasonal_z short": (raw("seasonal_z", 2, sz[:-1]), "not a list of the 48 fields"),
        "version-2 seasonal_z as a dict": (raw("seasonal_z", 2, sz_v1), "not a list of the 48 fields"),
        "unregistered tag": (raw("os.system", 1, {}), "unregistered type tag 'os.system'"),
        "positional fields short": (raw("serving_status", 1, ["srv", 1.0]), "not a list of the 6 fields"),
        "positional field mistyped": (raw("zombie_rules", 1, ["x"] * 7), "Expected `float`, got `str`"),
        "deep tuples": (PREFIX + deep_tuple, "nested deeper than 32"),
        "deep lists": (PREFIX + b"\x91" * 200_000 + b"\xc0", "nested too deeply"),
        "a MiB of empty lists": (PREFIX + b"\xdd\x00\x0f\xff\xf0" + b"\x90" * 0xFFFF0, "possible lists/dicts"),
        "ndarray claims 8 GB": (PREFIX + enc.encode(ext(3, enc.encode(["<f8", [1 << 30], b"\x00" * 8]))),
                                "needs 8589934592 bytes, 8 present"),
        "ndarray of objects": (PREFIX + enc.encode(ext(3, enc.encode(["|O", [1], b"\x00" * 8]))), "not allowed"),
        "ext claims 4 GB": (PREFIX + b"\xc9\xff\xff\xff\xff\x04", "truncated"),
        "array of a partial item": (PREFIX + enc.encode(ext(4, b"d" + b"\x00" * 7)), "not a whole number of items"),
        "array of unicode": (PREFIX + enc.encode(ext(4, b"u" + b"\x00" * 4)), "an allowed typecode"),
        "msgpack claims 4G items": (PREFIX + b"\xdd\xff\xff\xff\xff", "truncated"),
        "monitor bitmask of 2**40 buckets": (raw("series_monitor", 1, {**mon_v1, "confirm_window": 1 << 40}),
                                             "confirm_window must be 1..64"),
        "v2 monitor bitmask of 2**40 buckets": (
            raw("series_monitor", 2, [1 << 40 if n == "confirm_window" else v
                                      for n, v in zip(SeriesMonitor.STATE_FIELDS, mon)]),
            "confirm_window must be 1..64"),
        "seasonal array of 10**9 zeros": (raw("seasonal_z", 1, {**sz_v1, "weekly": 10 ** 9}), "'weekly' must be 168"),
        "v2 seasonal array of 10**9 zeros": (raw("seasonal_z", 2, sz[:weekly_at] + [10 ** 9] + sz[weekly_at + 1:]),
                                             "'weekly' must be 168"),
        "river window of 10**9": (raw("river_gaussian", 1, {**make_detector("river_gaussian").to_state(),
                                                             "window_size": 10 ** 9}), "window_size must be"),
        "burn rings off the rules": (raw("burn_tracker", 1, {**BurnTracker("b", 1.0).to_state(), "_k": 0}),
                                     "do not match the rules' geometry"),
        "datetime out of range": (PREFIX + enc.encode(ext(5, enc.encode([1 << 62, None]))), "out of range"),
        "unknown extension": (PREFIX + enc.encode(ext(9, b"")), "unknown extension type 9"),
        "not our prefix": (b"\x93\x01\x02\x03", "unknown format prefix"),
        "empty": (b"", "unknown format prefix"),
    }


@pytest.mark.parametrize("case", sorted(forged()))
def test_forged_changelog_values_are_refused_within_bounded_memory(case: str) -> None:
    data, reason = forged()[case]
    t = time.perf_counter()
    peak = peak_bytes(lambda: refused(data, reason, table="monitors", key="k#spend"))
    assert peak < 2 * MB and time.perf_counter() - t < 1.0


def test_a_mib_of_short_values_decodes_within_twenty_times_its_size() -> None:
    """The worst the limits allow: many small objects (2-char strings: 3 bytes in, ~59 bytes of memory)."""
    data = PREFIX + b"\xdd\x00\x05\x55\x50" + b"\xa2ab" * 0x55550
    assert len(data) < MB and peak_bytes(lambda: decode(data)) < 21 * len(data)


def test_the_error_names_table_key_and_reason() -> None:
    err = refused(raw("os.system", 1, {}), table="monitors", key="team=a#spend")
    assert (err.table, err.key, err.reason) == ("monitors", "team=a#spend", "unregistered type tag 'os.system'")
    assert isinstance(err, ValueError) and str(err) == "monitors:team=a#spend: unregistered type tag 'os.system'"
    refused(encode(ChildBaselines()), "expected SeriesMonitor, got ChildBaselines", expect=SeriesMonitor)


def test_a_pickled_detector_is_refused() -> None:
    refused(pickle.dumps(SeriesMonitor()), "a pickle")


# ------------------------------------------------------------------------------ fuzzing

def _value_bytes() -> st.SearchStrategy[bytes]:
    enc = msgspec.msgpack.Encoder()
    tags = st.sampled_from(sorted(registered()) + ["nope"])
    leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 63), 2 ** 63 - 1), st.floats(),
                       st.text(max_size=8), st.binary(max_size=16))

    def extend(children: st.SearchStrategy) -> st.SearchStrategy:
        plain = st.one_of(st.lists(children, max_size=4),
                          st.dictionaries(st.one_of(st.text(max_size=6), st.integers(0, 9)), children, max_size=4))
        ext = st.builds(lambda code, v: msgspec.msgpack.Ext(code, enc.encode(v)), st.integers(0, 6), plain)
        obj = st.builds(lambda tag, version, state: msgspec.msgpack.Ext(2, enc.encode([tag, version, state])),
                        tags, st.integers(0, 3), st.dictionaries(st.text(max_size=12), children, max_size=6))
        return st.one_of(plain, ext, obj)

    tree = st.recursive(leaves, extend, max_leaves=30)
    return st.builds(lambda v: PREFIX + enc.encode(v), tree)


@settings(max_examples=400, deadline=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=2048), st.binary(max_size=2048).map(PREFIX.__add__), _value_bytes()))
def test_arbitrary_bytes_raise_only_state_decode_error_in_bounded_memory(data: bytes) -> None:
    tracemalloc.start()
    try:
        decode(data)
    except StateDecodeError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 32 * len(data) + 256 * 1024

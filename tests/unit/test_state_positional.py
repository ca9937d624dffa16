"""Version 2 of the per-series states (seasonal_z, series_monitor, series): positional fields, no names.

The fixtures are real version-1 values (dicts by field name), encoded by the codec before version 2
(``tests/fixtures/state/series_v1_*.bin``: a monitor trained on 2,000 minutes, and one in warm-up with its
raw-space twin). Expected fields come from reading those bytes with a plain msgpack decoder, not from
the code under test.
"""

from __future__ import annotations

from array import array
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

from detectors.monitor import SeriesMonitor
from detectors.seasonal_z import SeasonalZ
from streams.state.codec import PREFIX, Limits, StateDecodeError, decode, encode
from streams.state.values import SeriesState

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "state"
CASES = ("trained", "warmup")


def plain(data: bytes) -> Any:
    """The value as msgpack holds it: objects as (tag, version, state), arrays as (typecode, bytes)."""
    def hook(code: int, payload: memoryview) -> Any:
        if code == 2:
            tag, version, state = msgspec.msgpack.decode(payload, ext_hook=hook)
            return (tag, version, state)
        if code == 4:
            return (bytes(payload[:1]).decode(), bytes(payload[1:]))
        raise AssertionError(f"unexpected extension {code}")
    assert data[:2] == PREFIX
    return msgspec.msgpack.decode(data[2:], ext_hook=hook)


def as_plain(v: Any) -> Any:
    return (v.typecode, v.tobytes()) if isinstance(v, array) else v


def check_detector(d: SeasonalZ, state: dict[str, Any]) -> None:
    for name, want in state.items():
        if name == "_alt":
            if want is None:
                assert d._alt is None
            else:
                assert want[:2] == ("seasonal_z", 1)
                check_detector(d._alt, want[2])
        elif name == "name":
            assert want is None and d.name == "seasonal_z"
        elif isinstance(want, int) and name in ("daily", "weekly", "hourly_ms"):
            assert getattr(d, name) == array("f", bytes(4 * want))  # all zeros, stored as the length
        else:
            assert as_plain(getattr(d, name)) == want, name


@pytest.mark.parametrize("case", CASES)
def test_version_1_series_states_migrate_field_for_field(case: str) -> None:
    old = (FIXTURES / f"series_v1_{case}.bin").read_bytes()
    tag, version, series = plain(old)
    assert (tag, version) == ("series", 1) and series["monitor"][:2] == ("series_monitor", 1)
    monitor = series["monitor"][2]
    assert monitor["detector"][:2] == ("seasonal_z", 1)
    value = decode(old)
    assert type(value) is SeriesState and (value.seq, value.at) == (series["seq"], series["at"])
    for name, want in monitor.items():
        if name != "detector":
            assert getattr(value.monitor, name) == want, name
    check_detector(value.monitor.detector, monitor["detector"][2])
    if case == "warmup":
        assert value.monitor.detector._alt is not None  # the twin was migrated as well


@pytest.mark.parametrize("case", CASES)
def test_migrated_states_are_written_as_version_2_smaller_and_score_the_same(case: str) -> None:
    old = (FIXTURES / f"series_v1_{case}.bin").read_bytes()
    new = encode(decode(old))
    tag, version, series = plain(new)
    assert (tag, version) == ("series", 2) and type(series) is list and len(series) == 3
    assert series[2][:2] == ("series_monitor", 2) and series[2][2][0][:2] == ("seasonal_z", 2)
    assert len(new) < len(old) - 500  # the field names (~30 % of a trained series) are gone
    a, b = decode(old), decode(new)
    t = datetime.fromtimestamp(a.at, tz=timezone.utc) + timedelta(minutes=1)
    for x in (1.0, 1.3, 5.0):
        assert a.monitor.observe(t, x) == b.monitor.observe(t, x)
        t += timedelta(minutes=1)
    assert encode(a) == encode(b)


def test_a_version_2_state_round_trips() -> None:
    m = SeriesMonitor(SeasonalZ())
    t0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
    for i in range(300):
        m.observe(t0 + timedelta(minutes=i), 1.0 + 0.01 * (i % 7))
    s = SeriesState(seq=300, at=(t0 + timedelta(minutes=299)).timestamp(), monitor=m)
    data = encode(s)
    again = decode(data)
    assert encode(again) == data and again.monitor.detector.__dict__.keys() == m.detector.__dict__.keys()


def test_size_limit_still_applies_to_version_2_values() -> None:
    data = (FIXTURES / "series_v1_trained.bin").read_bytes()
    new = encode(decode(data))
    with pytest.raises(StateDecodeError, match="over the"):
        decode(new, limits=Limits(max_bytes=len(new) - 1))
    with pytest.raises(StateDecodeError, match="over the"):
        decode(data, limits=Limits(max_bytes=len(data) - 1))  # a version-1 value too


def test_a_version_1_state_with_a_missing_field_is_refused() -> None:
    old = (FIXTURES / "series_v1_trained.bin").read_bytes()
    enc = msgspec.msgpack.Encoder()
    tag, version, series = plain(old)
    mon = dict(series["monitor"][2])
    del mon["quiet"]
    det = series["monitor"][2]["detector"]

    def obj(t: str, v: int, state: Any) -> msgspec.msgpack.Ext:
        return msgspec.msgpack.Ext(2, enc.encode([t, v, state]))

    def arr(v: Any) -> Any:
        return msgspec.msgpack.Ext(4, v[0].encode() + v[1]) if isinstance(v, tuple) else v

    detector = obj("seasonal_z", 1, {k: arr(v) for k, v in det[2].items()})
    forged = PREFIX + enc.encode(obj("series", 1, {"seq": 1, "at": 0.0,
                                                  "monitor": obj("series_monitor", 1, {**mon, "detector": detector})}))
    with pytest.raises(StateDecodeError, match="series_monitor migration from version 1: fields differ"):
        decode(forged)

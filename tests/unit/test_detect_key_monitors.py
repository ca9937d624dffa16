"""detect keeps a key's series in one ``monitors`` value (:class:`KeyMonitors`, one write per key per message);
its alerts, scores and learnt states are the same as the layout before (one value per series, ``key#kind``).

The expectations are what the detect agent of 5a4173d (per-series layout) sent and stored on the same messages
(``tests/fixtures/state/detect_v2_scenario.msgpack``, written by ``make_detect_v2_scenario.py`` in a checkout of
that commit): its alerts as JSON, its table at the migration cut and at the end (real encoded old values), and
on the version-1 fixtures of ``series_v1_*.bin``. A learnt state is compared by its encoding as the old
per-series value: equal bytes, every field and array the same.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from detectors.child_baselines import ChildBaselines
from detectors.sibling_prior import SiblingPrior
from streams.agents.detect import Detect
from streams.scoring import BucketScorer
from streams.settings import Settings
from streams.state.codec import PREFIX, Limits, StateDecodeError, decode, encode
from streams.state.tables import StateQuarantined
from streams.state.values import ChildrenState, KeyMonitors, SeriesState, SiblingsState, legacy_key
from tests.support import detect_scenario as sc

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "state"
OLD = msgspec.msgpack.decode((FIXTURES / "detect_v2_scenario.msgpack").read_bytes())


class Counting(dict):
    """A dict table counting writes and deletes (each one a changelog message in the worker)."""

    writes = 0

    def __setitem__(self, key: str, value: bytes) -> None:
        self.writes += 1
        super().__setitem__(key, value)

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self.writes += 1
        return super().pop(key, *default)


def detect(table: Any, send: Any) -> Detect:
    return Detect(table, BucketScorer(Settings(_env_file=None)), send)


def alerts(sent: list[tuple[int, str]] | list[list[Any]], offset: int = 0) -> list[tuple[int, dict[str, Any]]]:
    return [(i + offset, json.loads(a)) for i, a in sent]


def as_per_series(table: dict[str, bytes]) -> dict[str, bytes]:
    """The table in the layout before: each series' state encoded as its own value under ``key#kind``."""
    out = {}
    for key, data in table.items():
        value = decode(data)
        assert type(value) is KeyMonitors, key
        out.update({legacy_key(key, kind): encode(state) for kind, state in value.items()})
    return out


def test_alerts_and_learnt_states_are_the_per_series_layouts() -> None:
    table = Counting()
    sent = sc.run(detect, table, sc.messages())
    assert len(OLD["alerts"]) == 20  # fires and resolves: spikes, a price rise, a roll-up with contributors, a leak
    assert alerts(sent) == alerts(OLD["alerts"])
    assert as_per_series(table) == OLD["final"]  # every series' state, byte for byte
    assert sorted(table) == sorted({sc.FULL, sc.OTHER, sc.TEAM})  # one value per key
    # one write per key per message, none for the redelivered ones (minute 90): 594 messages taught something
    assert table.writes == len(sc.messages()) - 3


def test_a_table_of_real_per_series_values_migrates_on_the_next_bucket_and_scores_the_same() -> None:
    msgs = sc.messages()
    cut = OLD["cut"]
    assert msgs[cut - 1].minute < sc.CUT_MINUTE <= msgs[cut].minute
    table = Counting(OLD["snapshot"])  # the old detect's values, as its changelog holds them
    assert len(table) == 20 and all("#" in k for k in table)
    sent = sc.run(detect, table, msgs[cut:])
    assert alerts(sent, cut) == [a for a in alerts(OLD["alerts"]) if a[0] >= cut]
    assert sorted(table) == sorted({sc.FULL, sc.OTHER, sc.TEAM})  # the per-series values are gone
    assert as_per_series(table) == OLD["final"]


@pytest.mark.parametrize("case", ["trained", "warmup"])
def test_a_version_1_series_value_is_read_through_the_registry_migrations(case: str) -> None:
    old = (FIXTURES / f"series_v1_{case}.bin").read_bytes()
    assert msgspec.msgpack.decode(old[2:], ext_hook=lambda code, data: msgspec.msgpack.decode(data))[:2] == \
        ["series", 1]  # a real version-1 value (read without the codec)
    state = decode(old)
    table = {legacy_key(sc.V1_KEY, "spend"): old}
    sent = sc.run(detect, table, sc.v1_batches(state.at, state.seq))
    expected = OLD["v1"][case]
    assert alerts(sent) == alerts(expected["alerts"])
    assert list(table) == [sc.V1_KEY]
    assert as_per_series(table) == expected["final"]


def test_a_redelivered_batch_changes_nothing_and_writes_nothing() -> None:
    table, msgs = Counting(), sc.messages()
    first = sc.run(detect, table, msgs[:300])
    before, writes = dict(table), table.writes
    again = sc.run(detect, table, msgs[297:300])  # the last minute's three batches again
    assert again == [] and table == before and table.writes == writes
    assert first == [] or all(i < 300 for i, _ in first)


def test_alerts_are_sent_before_the_state_is_saved() -> None:
    """A send that fails leaves the key's value as it was; the batch again sends the same alerts, once."""
    msgs = sc.messages()
    i = next(k for k, _ in OLD["alerts"])  # the first message that alerts
    table: dict[str, bytes] = {}
    sc.run(detect, table, msgs[:i])
    before = dict(table)

    async def failing(alert: Any) -> None:
        raise ConnectionError("broker gone")

    with pytest.raises(ConnectionError):
        asyncio.run(detect(table, failing).handle(msgs[i].value))
    assert table == before
    sent = sc.run(detect, table, [msgs[i], msgs[i]])
    assert alerts(sent, i) == [a for a in alerts(OLD["alerts"]) if a[0] == i]


def test_forget_drops_the_key_and_any_per_series_values_it_still_has() -> None:
    table = {sc.FULL: b"x", legacy_key(sc.FULL, "spend"): b"y", legacy_key(sc.FULL, "children"): b"z",
             sc.OTHER: b"kept", legacy_key(sc.OTHER, "spend"): b"kept too"}
    sc.run(detect, table, [sc.Message(sc.FULL, 9, 0, sc.dump_batch(sc.FULL, 9, [], forget=True))])
    assert table == {sc.OTHER: b"kept", legacy_key(sc.OTHER, "spend"): b"kept too"}


def _value(version: int, kinds: dict[str, tuple[Any, Any, Any]]) -> bytes:
    """A key_monitors value written by hand, ``[tag, version, {kind: [seq, at, held]}]``: version 2 holds each
    series' codec value as bytes, version 1 the value itself (``held``: an object, or already bytes)."""
    enc = msgspec.msgpack.Encoder()

    def held(obj: Any) -> Any:
        if not hasattr(obj, "STATE_TAG"):
            return obj
        return encode(obj)[2:] if version == 2 else msgspec.Raw(encode(obj)[2:])
    state = {k: [seq, at, held(h)] for k, (seq, at, h) in kinds.items()}
    return PREFIX + enc.encode(msgspec.msgpack.Ext(2, enc.encode(["key_monitors", version, state])))


def test_a_hand_written_value_decodes_and_forged_ones_are_refused() -> None:
    good = _value(2, {"children": (3, 60, ChildBaselines())})
    value = decode(good)
    assert type(value) is KeyMonitors and value.kinds() == ["children"]
    children = value.get("children")
    assert type(children) is ChildrenState and (children.seq, children.at) == (3, 60.0)
    ext = msgspec.msgpack.decode(encode(value)[2:])  # written in the same shape
    tag, version, state = msgspec.msgpack.decode(ext.data)
    assert (ext.code, tag, version, list(state)) == (2, "key_monitors", 2, ["children"])
    assert state["children"][:2] == [3, 60.0] and state["children"][2] == encode(ChildBaselines())[2:]
    for forged, reason in [
            ({"os.system": (3, 60.0, ChildBaselines())}, "unknown series kind 'os.system'"),
            ({"children": (3, 60.0, "not bytes")}, "is not \\[seq, at, bytes\\]"),
            ({"children": (True, 60.0, ChildBaselines())}, "seq must be an int"),
            ({"children": (3, "60", ChildBaselines())}, "seq must be an int and at a number")]:
        with pytest.raises(StateDecodeError, match=reason):
            decode(_value(2, forged))
    with pytest.raises(StateDecodeError, match="over the"):
        decode(good, limits=Limits(max_bytes=len(good) - 1))
    # a series' bytes are checked when it is read: of another kind, or not a codec value
    wrong = decode(_value(2, {"spend": (3, 60.0, ChildBaselines())}))
    with pytest.raises(StateDecodeError, match="holds a ChildBaselines, not a SeriesMonitor"):
        wrong.get("spend")
    os_system = msgspec.msgpack.encode(msgspec.msgpack.Ext(2, msgspec.msgpack.encode(["os.system", 1, {}])))
    for blob, reason in ((os_system, "unregistered type tag 'os.system'"),
                         (encode(ChildBaselines())[2:-3], "not valid msgpack")):
        with pytest.raises(StateDecodeError, match=reason):
            decode(_value(2, {"children": (3, 60.0, blob)})).get("children")


def test_a_version_1_value_migrates_through_the_registry() -> None:
    """Version 1 (edfbfc8) nested each series' object; read as version 2, the same series."""
    old = _value(1, {"children": (3, 60.0, ChildBaselines()), "siblings": (4, 120.0, SiblingPrior(max_children=200))})
    value = decode(old)
    assert value.kinds() == ["children", "siblings"]
    assert (value.get("children").seq, value.get("siblings").at) == (3, 120.0)
    assert encode(value.get("siblings").prior) == encode(SiblingPrior(max_children=200))
    with pytest.raises(StateDecodeError, match="key_monitors migration from version 1: series 'spend' holds a "
                                               "ChildBaselines, not a SeriesMonitor"):
        decode(_value(1, {"spend": (3, 60.0, ChildBaselines())}))


def test_a_bucket_scoring_some_series_decodes_and_rewrites_only_those() -> None:
    """Minutes 60-69: the second key's buckets have 2 calls, so spend alone is scored; its other series are
    written back as they were read, not decoded and encoded again (a version-1 monitor stays version 1)."""
    msgs = sc.messages()
    i = next(k for k, m in enumerate(msgs) if m.key == sc.OTHER and m.minute == 65)
    table: dict[str, bytes] = {}
    sc.run(detect, table, msgs[:i])
    v1 = msgspec.msgpack.decode((FIXTURES / "series_v1_trained.bin").read_bytes()[2:])
    tag, version, series = msgspec.msgpack.decode(v1.data)
    assert (tag, version) == ("series", 1)
    old_monitor = msgspec.msgpack.encode(series["monitor"])  # a real version-1 series_monitor value
    value = decode(table[sc.OTHER])
    value.packed["cost_per_inference"][2] = old_monitor
    table[sc.OTHER] = encode(value)
    before = decode(table[sc.OTHER]).packed
    sc.run(detect, table, msgs[i:i + 1])
    after = decode(table[sc.OTHER]).packed
    assert list(before) == list(after) and len(before) == 6
    assert [k for k in before if before[k] != after[k]] == ["spend"]
    assert after["cost_per_inference"][2] == old_monitor
    assert decode(table[sc.OTHER]).get("cost_per_inference").monitor.detector.n == 2000  # still readable


def test_a_forged_value_quarantines_the_key_and_leaves_it_as_it_is() -> None:
    msgs = sc.messages()
    cases = {sc.FULL: _value(2, {"spend": (3, 60.0, ChildBaselines())}),  # read when spend is scored
             legacy_key(sc.FULL, "spend"): encode(ChildrenState(1, 0.0, ChildBaselines())),  # the layout before
             }
    for key, forged in cases.items():
        table = {key: forged}
        with pytest.raises(StateQuarantined) as err:
            sc.run(detect, table, msgs[:1])
        assert err.value.key == key and table == {key: forged}
        assert "SeriesState" in err.value.reason or "SeriesMonitor" in err.value.reason


def test_every_kind_has_its_state_class() -> None:
    table: dict[str, bytes] = {}
    sc.run(detect, table, sc.messages()[:9])
    team = dict(decode(table[sc.TEAM]).items())
    assert {k: type(v) for k, v in team.items() if k in ("spend", "children", "siblings")} == {
        "spend": SeriesState, "children": ChildrenState, "siblings": SiblingsState}
    assert team["spend"].at == (sc.T0 + timedelta(minutes=2)).timestamp() and team["spend"].seq == 3

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
        out.update({legacy_key(key, kind): encode(state) for kind, state in value.series.items()})
    return out


def test_alerts_and_learnt_states_are_the_per_series_layouts() -> None:
    table = Counting()
    sent = sc.run(detect, table, sc.messages())
    assert len(OLD["alerts"]) == 22  # fires and resolves: spikes, a price rise, a roll-up with contributors, a leak
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


def _series(kinds: dict[str, Any]) -> bytes:
    """A key_monitors value written by hand: [tag, version, {kind: [seq, at, held]}] (held: a codec value)."""
    enc = msgspec.msgpack.Encoder()
    state = {k: [seq, at, msgspec.Raw(encode(held)[2:])] for k, (seq, at, held) in kinds.items()}
    return PREFIX + enc.encode(msgspec.msgpack.Ext(2, enc.encode(["key_monitors", 1, state])))


def test_a_hand_written_value_decodes_and_forged_ones_are_refused() -> None:
    good = _series({"children": (3, 60, ChildBaselines())})
    value = decode(good)
    assert type(value) is KeyMonitors and list(value.series) == ["children"]
    children = value.series["children"]
    assert type(children) is ChildrenState and (children.seq, children.at) == (3, 60.0)
    ext = msgspec.msgpack.decode(encode(value)[2:])  # written in the same shape
    assert ext.code == 2 and msgspec.msgpack.decode(ext.data, ext_hook=lambda c, d: c)[:2] == ["key_monitors", 1]
    for forged, reason in [
            ({"spend": (3, 60.0, ChildBaselines())}, "holds a ChildBaselines, not a SeriesMonitor"),
            ({"os.system": (3, 60.0, ChildBaselines())}, "unknown series kind 'os.system'"),
            ({"children": (True, 60.0, ChildBaselines())}, "seq must be an int"),
            ({"children": (3, "60", ChildBaselines())}, "seq must be an int and at a number")]:
        with pytest.raises(StateDecodeError, match=reason):
            decode(_series(forged))
    with pytest.raises(StateDecodeError, match="over the"):
        decode(good, limits=Limits(max_bytes=len(good) - 1))


def test_a_forged_value_quarantines_the_key_and_leaves_it_as_it_is() -> None:
    msgs = sc.messages()
    forged = _series({"spend": (3, 60.0, ChildBaselines())})
    for key in (sc.FULL, legacy_key(sc.FULL, "spend")):  # the value per key, or one of the layout before
        table = {key: forged}
        with pytest.raises(StateQuarantined) as err:
            sc.run(detect, table, msgs[:1])
        assert err.value.key == key and table == {key: forged}
    table = {legacy_key(sc.FULL, "spend"): encode(ChildrenState(1, 0.0, ChildBaselines()))}  # the wrong kind
    with pytest.raises(StateQuarantined, match="expected SeriesState, found ChildrenState"):
        sc.run(detect, table, msgs[:1])


def test_every_kind_has_its_state_class() -> None:
    table: dict[str, bytes] = {}
    sc.run(detect, table, sc.messages()[:9])
    team = decode(table[sc.TEAM]).series
    assert {k: type(v) for k, v in team.items() if k in ("spend", "children", "siblings")} == {
        "spend": SeriesState, "children": ChildrenState, "siblings": SiblingsState}
    assert team["spend"].at == (sc.T0 + timedelta(minutes=2)).timestamp() and team["spend"].seq == 3

"""A key fed by producers on two usage partitions closes once both have gone idle (found by tests/e2e/test_faults.py).

Each worker's punctuation speaks only for the usage partitions it owns. A scan that idled one clock
but closed nothing was not saved, so the next worker's scan (idling the other clock) started from
the stored state, in which the first clock was active again: the key's last minutes never closed.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from schemas.bucket import load_batch
from streams.agents.aggregate import Aggregate
from streams.agents.normalize import PUNCT
from streams.settings import Settings
from streams.state.clocks import PartitionClocks, Punctuation
from streams.state.tables import TypedTable
from streams.state.windows import KeyWindows
from tests.support.costs_messages import costs

T0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc).timestamp()
SETTINGS = Settings(_env_file=None, allowed_lateness_seconds=0, bucket_seconds=60)
EU, US = "usage.llm/2:gateway-eu", "usage.llm/3:gateway-us"


def _idle(clock: str, newest: float, wall: float) -> bytes:
    """A scan punctuation from the worker owning ``clock``'s partition (and only that one): it is idle."""
    part = PartitionClocks(idle_ok=True, clocks={clock: [newest, True]})
    return Punctuation(wall=wall, scan=True, parts={clock.split(":")[0]: part}).model_dump_json().encode()


def _run(table: dict[str, bytes], messages: list[tuple[str, bytes]]) -> list[tuple[float, float]]:
    sent: list[bytes] = []

    async def send(key: str, value: bytes) -> None:
        sent.append(value)

    handler = Aggregate(TypedTable(table, "open_buckets", KeyWindows), send, SETTINGS)
    for key, value in messages:
        asyncio.run(handler.handle(key, value, 2, T0 + 10_000))
    return [(b.start.timestamp(), round(b.spend_usd, 9)) for v in sent for b in load_batch(v).buckets]


def test_a_key_fed_from_two_workers_partitions_closes_when_both_clocks_idle() -> None:
    feed = [("k", costs(EU, 1, T0 + 10, 1.0)), ("k", costs(US, 1, T0 + 20, 2.0)),
            ("k", costs(EU, 2, T0 + 70, 4.0)), ("k", costs(US, 2, T0 + 75, 8.0))]  # minute 0 closes
    idles = [(PUNCT, _idle(EU, T0 + 70, T0 + 500)), (PUNCT, _idle(US, T0 + 75, T0 + 501))]
    assert _run({}, feed) == [(T0, 3.0)]
    for order in (idles, idles[::-1]):  # whichever worker's scan comes first
        table: dict[str, bytes] = {}
        assert _run(table, feed + order) == [(T0, 3.0), (T0 + 60, 12.0)]
        kw = TypedTable(table, "open_buckets", KeyWindows).get("k")
        assert kw is not None and not kw.pending


def test_a_scan_that_changes_only_clocks_is_saved() -> None:
    table: dict[str, bytes] = {}
    _run(table, [("k", costs(EU, 1, T0 + 10, 1.0)), ("k", costs(US, 1, T0 + 20, 2.0)),
                 (PUNCT, _idle(EU, T0 + 10, T0 + 500))])
    kw = TypedTable(table, "open_buckets", KeyWindows).get("k")
    # EU idle, its idleness confirmed up to what US (active) had shown: T0 + 20
    assert kw is not None and kw.clocks[EU] == [T0 + 10, T0 + 20] and kw.clocks[US] == [T0 + 20, None]


def test_a_producer_resuming_with_the_others_keeps_its_minutes_open_while_its_owner_is_stalled() -> None:
    """The late buckets of tests/e2e/test_faults.py (kill, rebalance, stall): every producer went quiet (the
    traffic waited on the rebalance) and was confirmed idle; traffic resumed, and the worker owning US's
    partition was stopped at once. EU's records alone moved the key on: with US still read as idle, minute 2
    closed before US's records for it came, and they became a late correction."""
    m = lambda minute, s=0: T0 + 60 * minute + s  # noqa: E731
    feed = [("k", costs(EU, 1, m(0, 10), 1.0)), ("k", costs(US, 1, m(0, 20), 2.0)),
            ("k", costs(EU, 2, m(1, 50), 4.0)), ("k", costs(US, 2, m(1, 55), 8.0))]
    quiet = [(PUNCT, _idle(EU, m(1, 50), T0 + 500)), (PUNCT, _idle(US, m(1, 55), T0 + 501))]
    resumed = [("k", costs(EU, 3, m(2, 30), 16.0)), ("k", costs(EU, 4, m(3, 30), 32.0)),
               ("k", costs(EU, 5, m(4, 30), 64.0))]  # US's owner is stopped: its minute-2 records wait
    late_us = [("k", costs(US, 3, m(2, 40), 128.0)), ("k", costs(US, 4, m(4, 40), 256.0))]
    got = _run({}, feed + quiet + resumed + late_us)
    # minute 0 closes on both clocks, minute 1 once both are idle; minutes 2 and 3 wait for US, whole
    assert got == [(m(0), 3.0), (m(1), 12.0), (m(2), 144.0), (m(3), 32.0)]
    kw_late = [b for b in got if b[0] == m(2)]
    assert kw_late == [(m(2), 144.0)]  # one on-time bucket with both producers' spend, no late correction


def test_an_idle_clock_lets_the_key_close_only_up_to_where_its_idleness_was_confirmed() -> None:
    m = lambda minute, s=0: T0 + 60 * minute + s  # noqa: E731
    feed = [("k", costs(EU, 1, m(0, 10), 1.0)), ("k", costs(US, 1, m(0, 20), 2.0)),
            (PUNCT, _idle(US, m(0, 20), T0 + 500)),  # US quiet; EU had shown 0:10 when it was confirmed
            ("k", costs(EU, 2, m(1, 10), 4.0)), ("k", costs(EU, 3, m(2, 10), 8.0))]
    assert _run({}, feed) == []  # nothing past 0:10 is confirmed for US
    again = feed + [(PUNCT, _idle(US, m(0, 20), T0 + 505))]  # confirmed again: EU has shown 2:10
    assert _run({}, again) == [(m(0), 3.0), (m(1), 4.0)]


def test_a_v2_state_migrates_its_idle_flags_to_bounds() -> None:
    """v2 stored ``[newest, idle]``; v3 ``[newest, bound]``: an idle v2 clock held nothing back (unbounded)."""
    import math

    import streams.state.values  # noqa: F401 - registers the table value classes
    from streams.state.registry import by_tag

    entry = by_tag("key_windows")
    assert entry is not None and entry.version == 3
    kw = KeyWindows("k", 60)
    state = entry.to_state(kw)
    state["clocks"] = {EU: [T0 + 10, True], US: [T0 + 20, False]}
    migrated = entry.from_state(entry.migrations[2](state))
    assert migrated.clocks == {EU: [T0 + 10, math.inf], US: [T0 + 20, None]}
    migrated.check()
    assert migrated.watermark(0) == T0 + 20  # as v2 computed it: the one active clock

"""A key fed by producers on two usage partitions closes once both have gone idle (found by tests/e2e/test_faults.py).

Each worker's punctuation speaks only for the usage partitions it owns. A scan that idled one clock
but closed nothing was not saved, so the next worker's scan (idling the other clock) started from
the stored state, in which the first clock was active again: the key's last minutes never closed.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import orjson

from schemas.bucket import load_batch
from streams.agents.aggregate import Aggregate
from streams.agents.normalize import PUNCT
from streams.settings import Settings
from streams.state.clocks import PartitionClocks, Punctuation
from streams.state.tables import TypedTable
from streams.state.windows import KeyWindows

T0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc).timestamp()
SETTINGS = Settings(_env_file=None, allowed_lateness_seconds=0, bucket_seconds=60)
EU, US = "usage.llm/2:gateway-eu", "usage.llm/3:gateway-us"


def _costs(clock: str, offset: int, ts: float, usd: float) -> bytes:
    return orjson.dumps({"o": [clock.split(":")[0], offset], "clk": [clock, ts],
                         "records": [{"ts": ts, "cost_usd": usd, "requests": 1}]})


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
    feed = [("k", _costs(EU, 1, T0 + 10, 1.0)), ("k", _costs(US, 1, T0 + 20, 2.0)),
            ("k", _costs(EU, 2, T0 + 70, 4.0)), ("k", _costs(US, 2, T0 + 75, 8.0))]  # minute 0 closes
    idles = [(PUNCT, _idle(EU, T0 + 70, T0 + 500)), (PUNCT, _idle(US, T0 + 75, T0 + 501))]
    assert _run({}, feed) == [(T0, 3.0)]
    for order in (idles, idles[::-1]):  # whichever worker's scan comes first
        table: dict[str, bytes] = {}
        assert _run(table, feed + order) == [(T0, 3.0), (T0 + 60, 12.0)]
        kw = TypedTable(table, "open_buckets", KeyWindows).get("k")
        assert kw is not None and not kw.pending


def test_a_scan_that_changes_only_clocks_is_saved() -> None:
    table: dict[str, bytes] = {}
    _run(table, [("k", _costs(EU, 1, T0 + 10, 1.0)), ("k", _costs(US, 1, T0 + 20, 2.0)),
                 (PUNCT, _idle(EU, T0 + 10, T0 + 500))])
    kw = TypedTable(table, "open_buckets", KeyWindows).get("k")
    assert kw is not None and kw.clocks[EU] == [T0 + 10, True] and kw.clocks[US] == [T0 + 20, False]

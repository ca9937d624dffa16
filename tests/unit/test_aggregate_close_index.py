"""Punctuations between scans close the keys their clocks let close (issue 13: processing latency).

Hand-worked cases on the aggregate handler with a dict table, minutes of 60 s and no lateness: a quiet key's
minute closes at the first punctuation whose reading of the key's slowest clock passes the minute's end, not
at the next scan (up to ``SCAN_EVERY`` later) or the key's next record. The selection depends only on the
states and the punctuation: a handler started afresh on the same table (a worker after a crash) closes the
same buckets under the same sequence numbers.
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
GW, EU = "usage.llm/0:gw", "usage.llm/1:eu"


def reading(newest: dict[str, float], wall: float, scan: bool = False) -> bytes:
    """A punctuation reading each clock in ``newest`` as active at that event time."""
    parts: dict[str, PartitionClocks] = {}
    for clock, t in newest.items():
        parts.setdefault(clock.split(":")[0], PartitionClocks(idle_ok=False, clocks={})).clocks[clock] = [t, False]
    return Punctuation(wall=wall, scan=scan, parts=parts).model_dump_json().encode()


class Run:
    def __init__(self, table: dict[str, bytes]) -> None:
        self.sent: list[bytes] = []

        async def send(key: str, value: bytes) -> None:
            self.sent.append(value)

        self.handler = Aggregate(TypedTable(table, "open_buckets", KeyWindows), send, SETTINGS)
        self.offset = 0

    def feed(self, *messages: tuple[str, bytes]) -> list[tuple[str, int, float, float]]:
        """Apply messages (consecutive offsets of costs partition 0); the (key, seq, start, spend) emitted."""
        before = len(self.sent)
        for key, value in messages:
            self.offset += 1
            asyncio.run(self.handler.handle(key, value, 0, T0 + 10_000, offset=self.offset))
        return [(b.key, load_batch(v).seq, b.start.timestamp(), b.spend_usd)
                for v in self.sent[before:] for b in load_batch(v).buckets]


def test_a_quiet_key_closes_at_the_punctuation_that_reads_its_clock_past_the_minute() -> None:
    run = Run({})
    assert run.feed(("quiet", costs(GW, 1, T0 + 10, 1.0)), ("busy", costs(GW, 2, T0 + 20, 2.0))) == []
    # the producer moved on (other keys' records): its clock reads T0 + 59, then T0 + 61
    assert run.feed((PUNCT, reading({GW: T0 + 59}, T0 + 100))) == []
    assert sorted(run.feed((PUNCT, reading({GW: T0 + 61}, T0 + 101)))) == [
        ("busy", 1, T0, 2.0), ("quiet", 1, T0, 1.0)]


def test_a_key_waits_for_its_slowest_clock() -> None:
    run = Run({})
    run.feed(("k", costs(GW, 1, T0 + 10, 1.0)), ("k", costs(EU, 2, T0 + 15, 2.0)))
    assert run.feed((PUNCT, reading({GW: T0 + 200}, T0 + 100))) == []  # EU still at T0 + 15
    assert run.feed((PUNCT, reading({EU: T0 + 70}, T0 + 101))) == [("k", 1, T0, 3.0)]


def test_a_new_handler_on_the_same_table_closes_the_same_buckets() -> None:
    """After a crash the next worker starts with an empty index: it files the table's keys before the first
    message, so the punctuation closes what the first worker's did, under the same sequence number."""
    table: dict[str, bytes] = {}
    first = Run(table)
    first.feed(("a", costs(GW, 1, T0 + 10, 1.0)), ("b", costs(GW, 2, T0 + 30, 4.0)))
    second = Run(dict(table))  # the changelog as the first worker left it
    second.offset = first.offset
    punct = (PUNCT, reading({GW: T0 + 65}, T0 + 100))
    assert sorted(second.feed(punct)) == sorted(first.feed(punct)) == [("a", 1, T0, 1.0), ("b", 1, T0, 4.0)]


def test_a_revoked_partition_is_filed_afresh() -> None:
    table: dict[str, bytes] = {}
    run = Run(table)
    run.feed(("a", costs(GW, 1, T0 + 10, 1.0)))
    run.handler.forget_partitions([0])
    # meanwhile another worker wrote a key of partition 0 to the table
    other = KeyWindows("b", 60, 0)
    other.add({"ts": T0 + 20, "cost_usd": 2.0, "requests": 1})
    other.see_clock(GW, T0 + 20)
    TypedTable(table, "open_buckets", KeyWindows).put("b", other)
    assert sorted(run.feed((PUNCT, reading({GW: T0 + 61}, T0 + 100)))) == [("a", 1, T0, 1.0), ("b", 1, T0, 2.0)]

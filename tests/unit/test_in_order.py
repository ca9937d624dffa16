"""Stream records reach the agents in offset order from where their partition starts (streams.in_order,
streams.transport.WorkerConsumer.in_order_records).

The case behind it (seen in a kill run of tests/e2e/test_faults.py): after a rebalance Faust resumed a costs
partition before seeking it, and the fetcher returned it from offset 45 where the reading had to start at 0;
applied first, such a record makes the records before it look applied. Here the Kafka boundary is faked: the records of each fetch, the committed
offsets and the seeks asked of the consumer thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.in_order import InOrder
from streams.transport import WorkerConsumer

COSTS0, COSTS1 = TP("costs", 0), TP("costs", 1)
CHANGELOG = TP("bg-open_buckets-changelog", 0)


def test_a_record_ahead_of_the_start_is_held_back_until_the_records_before_it_came() -> None:
    guard = InOrder()
    guard.start(COSTS0, 27)
    assert guard.check(COSTS0, 40, fetch=1) == "seek"  # the stale fetch position's first record
    guard.sought(COSTS0, fetch=1)
    assert [guard.check(COSTS0, o, fetch=1) for o in (41, 42)] == ["hold", "hold"]
    assert [guard.check(COSTS0, o, fetch=2) for o in range(27, 43)] == ["deliver"] * 16
    assert guard.due(COSTS0) == 43 and guard.gaps == 0


def test_a_gap_is_accepted_only_when_a_fetch_after_the_seek_still_begins_beyond_it() -> None:
    guard = InOrder()
    guard.start(COSTS0, 5)
    assert guard.check(COSTS0, 9, fetch=1) == "seek"
    guard.sought(COSTS0, fetch=1)
    assert guard.check(COSTS0, 9, fetch=1) == "hold"  # same fetch: not evidence of a gap
    assert guard.check(COSTS0, 9, fetch=2) == "gap"  # the fetch from offset 5 began at 9: 5..8 do not exist
    assert guard.gaps == 1 and guard.due(COSTS0) == 10
    assert guard.check(COSTS0, 10, fetch=2) == "deliver"


def test_a_failed_seek_is_not_mistaken_for_a_gap() -> None:
    guard = InOrder()
    guard.start(COSTS0, 5)
    assert guard.check(COSTS0, 9, fetch=1) == "seek"  # the caller's seek failed: it does not report it
    assert guard.check(COSTS0, 9, fetch=2) == "seek"  # asked again, never taken as a gap


def test_re_reads_after_a_seek_back_are_handed_on_and_partitions_start_afresh_once_revoked() -> None:
    guard = InOrder()
    guard.start(COSTS0, 0)
    assert [guard.check(COSTS0, o, fetch=1) for o in range(4)] == ["deliver"] * 4
    assert guard.check(COSTS0, 1, fetch=2) == "deliver"  # a seek back to the committed 1: a re-read
    assert guard.due(COSTS0) == 2
    guard.forget([COSTS0])
    assert not guard.knows(COSTS0) and guard.knows(COSTS1) is False


class Thread:
    """The consumer thread's seek, as the consumer calls it."""

    def __init__(self, earliest: dict[TP, int]) -> None:
        self.earliest = earliest
        self.seeks: list[dict[TP, int]] = []

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.earliest[tp] for tp in tps}

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks.append(dict(partitions))


class Consumer(WorkerConsumer):
    """A WorkerConsumer without app or broker: committed offsets from a dict (an exception: unreachable)."""

    def __init__(self, committed: dict[TP, Any], earliest: dict[TP, int]) -> None:  # noqa: D107 - no super()
        self.app = SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset="earliest"))
        self._thread = Thread(earliest)
        self.committed = committed
        self.in_order, self._fetches, self._changelog = InOrder(), 0, {}

    async def committed_offset(self, tp: Any) -> int | None:
        answer = self.committed[tp]
        if isinstance(answer, Exception):
            raise answer
        return answer


def fetch(consumer: Consumer, records: list[tuple[TP, int]]) -> list[tuple[str, int, int]]:
    async def source() -> AsyncIterator[tuple[TP, Any]]:
        for tp, offset in records:
            yield tp, SimpleNamespace(offset=offset)

    async def run() -> list[tuple[str, int, int]]:
        return [(tp.topic, tp.partition, m.offset) async for tp, m in consumer.in_order_records(source())]

    return asyncio.run(run())


def test_the_consumer_holds_back_a_stale_fetch_and_seeks_to_the_committed_offset() -> None:
    c = Consumer({COSTS0: 27}, {COSTS0: 0})
    # a fetch from a stale position: 40, 41 (and a changelog record, recovery's, handed on)
    assert fetch(c, [(COSTS0, 40), (CHANGELOG, 3), (COSTS0, 41)]) == [(CHANGELOG.topic, 0, 3)]
    assert c._thread.seeks == [{COSTS0: 27}]
    # the fetch after the seek: 27..41 in order, all handed on
    assert fetch(c, [(COSTS0, o) for o in range(27, 42)]) == [("costs", 0, o) for o in range(27, 42)]
    assert c._thread.seeks == [{COSTS0: 27}]


def test_a_partition_nobody_committed_starts_at_its_first_offset() -> None:
    c = Consumer({COSTS1: None}, {COSTS1: 3})
    assert fetch(c, [(COSTS1, 3), (COSTS1, 4)]) == [("costs", 1, 3), ("costs", 1, 4)]
    assert fetch(c, [(COSTS1, 9)]) == [] and c._thread.seeks == [{COSTS1: 5}]


def test_an_unreachable_broker_starts_the_partition_where_the_fetcher_stands() -> None:
    c = Consumer({COSTS0: ConnectionError("broker away")}, {})
    assert fetch(c, [(COSTS0, 12), (COSTS0, 13)]) == [("costs", 0, 12), ("costs", 0, 13)]
    assert c._thread.seeks == []


def test_start_offsets_are_the_committed_else_the_first_offsets_and_what_latest_leaves_unknown() -> None:
    c = Consumer({COSTS0: 27, COSTS1: None}, {COSTS0: 0, COSTS1: 3})
    assert asyncio.run(c.start_offsets(COSTS0, COSTS1)) == {COSTS0: 27, COSTS1: 3}
    c.app.conf.consumer_auto_offset_reset = "latest"
    assert asyncio.run(c.start_offsets(COSTS0, COSTS1)) == {COSTS0: 27}  # costs/1: only the fetcher knows

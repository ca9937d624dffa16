"""streams.transport.WorkerConsumer: a stream partition nobody committed is read from its beginning.

aiokafka's ``seek_to_committed`` moves only partitions with a committed offset; the others stay where the
fetcher stood, which lost every earlier message of a partition taken over after ``kill -9`` within the
first commit interval (tests/e2e/test_faults.py). The Kafka boundary is faked here: what the consumer
thread is asked to do is recorded.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.transport import WorkerConsumer


class Thread:
    """The parts of Faust's consumer thread the seek uses."""

    def __init__(self, committed: dict[TP, int | None], earliest: dict[TP, int]) -> None:
        self.committed, self.earliest = committed, earliest
        self.seeks: list[dict[TP, int]] = []

    async def seek_to_committed(self) -> dict[TP, int | None]:
        return dict(self.committed)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.earliest[tp] for tp in tps}

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks.append(dict(partitions))


def consumer(thread: Thread, reset: str = "earliest") -> Any:
    c = object.__new__(WorkerConsumer)  # no app or broker: only the seek is exercised
    c.app = SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset=reset))
    c._thread = thread
    return c


USAGE0, USAGE1, COSTS0 = TP("usage.llm", 0), TP("usage.llm", 1), TP("costs", 0)
CHANGELOG = TP("bg-open_buckets-changelog", 0)


def test_partitions_without_a_committed_offset_are_sought_to_their_earliest() -> None:
    thread = Thread({USAGE0: 47, USAGE1: None, COSTS0: None, CHANGELOG: None},
                    {USAGE0: 0, USAGE1: 3, COSTS0: 0, CHANGELOG: 0})
    committed = asyncio.run(consumer(thread).seek_to_committed())
    assert committed == {USAGE0: 47, USAGE1: None, COSTS0: None, CHANGELOG: None}  # Faust's answer, unchanged
    # usage.llm/1 from its first offset (3: the log was truncated before), costs/0 from 0; usage.llm/0 stays
    # at its committed 47; a changelog is recovery's to position, never the stream seek's
    assert thread.seeks == [{USAGE1: 3, COSTS0: 0}]


def test_everything_committed_means_no_extra_seek() -> None:
    thread = Thread({USAGE0: 5, USAGE1: 9}, {USAGE0: 0, USAGE1: 0})
    asyncio.run(consumer(thread).seek_to_committed())
    assert thread.seeks == []


def test_a_latest_reset_policy_is_left_to_kafka() -> None:
    thread = Thread({USAGE0: None}, {USAGE0: 0})
    asyncio.run(consumer(thread, reset="latest").seek_to_committed())
    assert thread.seeks == []

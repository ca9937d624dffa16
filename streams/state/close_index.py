"""Which keys a punctuation may let close: per ``costs`` partition, the keys with open buckets, filed under the
clock that holds their oldest bucket back and the event time that clock must reach.

Without it, a key's buckets close only when a record of the key arrives or when a *scan* punctuation (every
``SCAN_EVERY`` seconds) visits every key of its partition: a quiet key waits up to a scan interval after its
minute became closable. With it, every punctuation visits, besides, exactly the keys it can move: those whose
holding clock it reads as past their due time (or as idle, whose bound it may raise).

The index is worker-local and not state, but what it selects is a function of the keys' states and the
punctuation alone, as every decision of the aggregate must be (a worker replaying messages after a crash must
re-emit the same batches): it is complete (every key with an open bucket is filed under its current holder,
built from the table before the partition's first message is applied), and each selected key is checked against
its state when it is visited. Entries left behind by a key that changed are skipped when they surface.

>>> idx = CloseIndex()
>>> idx.start(0)                  # partition 0 is filed from here on
>>> idx.file(0, "k1", ("usage.llm/0:gw", 160.0))
>>> idx.file(0, "k2", ("usage.llm/0:gw", 220.0))
>>> idx.file(0, "k3", ("usage.llm/1:eu", 160.0))
>>> reading = {"usage.llm/0:gw": (200.0, False), "usage.llm/1:eu": (100.0, True)}.get
>>> idx.due(0, reading)          # gw has passed k1's due time, not k2's; eu is idle: its keys may move
['k1', 'k3']
>>> idx.due(0, reading)          # taken: filed again only when visited
[]
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

#: A key's holder: the clock that holds its oldest open bucket back, and the event time it must reach.
Holder = tuple[str, float]
#: A punctuation's reading of a clock: (newest event time, idle), or ``None`` where it does not speak for it.
Reading = Callable[[str], "tuple[float, bool] | None"]


class _Partition:
    __slots__ = ("filed", "heaps")

    def __init__(self) -> None:
        self.filed: dict[str, Holder] = {}  # key -> its current holder
        self.heaps: dict[str, list[tuple[float, str]]] = {}  # clock -> (due, key), lazily cleaned


class CloseIndex:
    """Keys with open buckets by holding clock, per partition (see the module docstring)."""

    def __init__(self) -> None:
        self._parts: dict[int, _Partition] = {}

    def covers(self, partition: int) -> bool:
        """True once the partition's keys were filed (:meth:`start`) since it was last forgotten."""
        return partition in self._parts

    def start(self, partition: int) -> None:
        """Begin filing ``partition`` (then file every key of it that has a holder)."""
        self._parts[partition] = _Partition()

    def forget(self, partition: int) -> None:
        """The partition went away (a rebalance): its keys are filed afresh when it comes back."""
        self._parts.pop(partition, None)

    def clear(self) -> None:
        self._parts.clear()

    def file(self, partition: int, key: str, holder: Holder | None) -> None:
        """File ``key`` under ``holder`` (``None``: nothing open, or nothing holds it back: unfiled)."""
        part = self._parts.get(partition)
        if part is None:
            return  # not covered: filed when the partition is started
        if holder is None:
            part.filed.pop(key, None)
            return
        if part.filed.get(key) == holder:
            return
        part.filed[key] = holder
        clock, due = holder
        heapq.heappush(part.heaps.setdefault(clock, []), (due, key))

    def due(self, partition: int, reading: Reading) -> list[str]:
        """Take the keys a punctuation with ``reading`` may move: filed under a clock it reads past their due
        time, or as idle. They are unfiled; visiting one files it again."""
        part = self._parts.get(partition)
        if part is None:
            return []
        out: list[str] = []
        for clock in list(part.heaps):
            r = reading(clock)
            if r is None:
                continue
            newest, idle = r
            heap = part.heaps[clock]
            while heap and (idle or heap[0][0] <= newest):
                due, key = heapq.heappop(heap)
                if part.filed.get(key) == (clock, due):
                    del part.filed[key]
                    out.append(key)
            if not heap:
                del part.heaps[clock]
        return out

    def __len__(self) -> int:
        return sum(len(p.filed) for p in self._parts.values())

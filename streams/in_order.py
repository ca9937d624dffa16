"""Stream records handed to the agents in offset order, from the partition's starting position on.

Each agent dedupes by offset (a key's state remembers the newest offset applied to it), which is exact only
if a partition's records reach it in order, starting where the group left off. Faust does not guarantee that
around a rebalance: it resumes the stream partitions just before it seeks them to their committed offsets,
and forgets what it had read (its read offsets) at every revocation, so a record fetched from wherever the
fetcher stood in that window is handed over first (seen: a replacement's ``costs/1`` from offset 45 where its
reading had to start at 0). Applied first, its offset then makes the earlier records look applied: lost.

:class:`InOrder` decides, record by record, what the consumer (:class:`streams.transport.WorkerConsumer`)
hands on. It knows, per partition, the next offset due: set where the partition starts (its committed offset,
or its first if nobody committed), then one past each record handed on.

- A record at or below the next offset due is handed on: the next one, or a re-read after a seek back
  (already applied: the agents skip it by offset, correctly, since everything before it was applied in order).
- A record beyond it is **ahead**: held back, and the caller seeks the partition to the offset due, so the
  fetcher reads the missing records and then this one again.
- If a fetch started after that seek still begins beyond the offset due, the log has a gap there (records
  deleted by retention, or a broker that numbers so): the gap is accepted, counted and logged.

>>> guard = InOrder()
>>> guard.start("costs/0", 10)
>>> guard.check("costs/0", 10, fetch=1), guard.check("costs/0", 11, fetch=1)
('deliver', 'deliver')
>>> guard.check("costs/0", 15, fetch=1), guard.due("costs/0")  # ahead: seek to 12, hold it back
('seek', 12)
>>> guard.sought("costs/0", fetch=1)  # the caller's seek went through
>>> guard.check("costs/0", 13, fetch=1)  # the rest of the same fetch: still ahead, already sought
'hold'
>>> guard.check("costs/0", 12, fetch=2), guard.check("costs/0", 13, fetch=2)
('deliver', 'deliver')
>>> guard.check("costs/0", 9, fetch=3)  # a seek back (a re-read): handed on
'deliver'
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Literal

Verdict = Literal["deliver", "seek", "hold", "gap"]


class InOrder:
    """Per partition: the next offset due and where a seek for it was asked (see the module)."""

    def __init__(self) -> None:
        self._due: dict[Hashable, int] = {}
        # partition -> (offset sought, fetch number the seek was made in)
        self._sought: dict[Hashable, tuple[int, int]] = {}
        self.gaps = 0

    def knows(self, tp: Hashable) -> bool:
        """Whether ``tp`` has a starting position (since it was last assigned)."""
        return tp in self._due

    def start(self, tp: Hashable, offset: int) -> None:
        """``tp`` (newly assigned) starts at ``offset``: its committed offset, or its first."""
        self._due[tp] = offset
        self._sought.pop(tp, None)

    def forget(self, tps: Iterable[Hashable]) -> None:
        """Partitions revoked (or assigned anew): their positions are learnt again."""
        for tp in tps:
            self._due.pop(tp, None)
            self._sought.pop(tp, None)

    def due(self, tp: Hashable) -> int:
        """The next offset due on ``tp``."""
        return self._due[tp]

    def check(self, tp: Hashable, offset: int, fetch: int) -> Verdict:
        """What to do with the record at ``offset`` of ``tp``, returned by fetch number ``fetch`` (a count the
        caller raises once per fetch): ``deliver`` it, ``seek`` the partition to :meth:`due` and hold it back,
        ``hold`` it back (a seek was made in this fetch already), or ``gap``: deliver it, the offsets between
        do not exist. After a ``seek`` the caller seeks and then reports it with :meth:`sought`."""
        due = self._due[tp]
        if offset <= due:
            self._due[tp] = offset + 1
            self._sought.pop(tp, None)
            return "deliver"
        sought = self._sought.get(tp)
        if sought is not None and sought[0] == due:
            if fetch <= sought[1]:
                return "hold"
            self._due[tp] = offset + 1
            del self._sought[tp]
            self.gaps += 1
            return "gap"
        return "seek"

    def sought(self, tp: Hashable, fetch: int) -> None:
        """The caller sought ``tp`` to :meth:`due` during fetch number ``fetch``."""
        self._sought[tp] = (self._due[tp], fetch)

"""Source clocks: each producer's event time, and whether it is idle, as the normalize agent sees it.

A *source clock* is one producer on one usage partition (``usage.llm/0:gateway-eu``): its events
arrive in order, so its newest event time is a watermark of its own. The worker that owns a usage
partition knows two more things no downstream agent can: whether records are *waiting* (its
consumer has not caught up with the partition's end), and when each producer last sent. It turns
those into :class:`Punctuation` messages for every ``costs`` and ``budget.spend`` partition, so a
key's buckets close on the clocks of its own producers, and only close early (a producer gone
quiet) once nothing from that partition is waiting. A stall, a paused broker or a slow rebalance
leaves a backlog, so it idles nothing. "Nothing waiting" must hold on two readings in a row, and the
producer must have been quiet since the first of them: everything the partition held at the first
reading has then been processed (a broker that reports an end offset short by its last batch, as the
embedded one does, or a reading taken just as the consumer resumes, cannot idle a producer whose
records sit in that batch). And quiet time only counts while the worker was watching: readings further
apart than a few intervals (the worker was stopped, or the broker paused and the end-offset request
waited for it) restart the count, so after a stall or an outage every producer gets the whole idle time
to deliver what it held back before any of its minutes can close.

>>> p = SourceProgress(idle_after=120.0)
>>> p.assigned("usage.llm/0", wall=100_000.0)
>>> p.processed("usage.llm/0", offset=4, clock="usage.llm/0:gw", newest=50_000.0, wall=100_001.0)
50000.0
>>> punct = p.punctuation({"usage.llm/0": 5}, wall=100_010.0)       # caught up, gw sent 9 s ago
>>> punct.parts["usage.llm/0"].clocks, punct.parts["usage.llm/0"].idle_ok
({'usage.llm/0:gw': [50000.0, False]}, False)
>>> for wall in range(100_011, 100_130):  # a reading every second, nothing new
...     punct = p.punctuation({"usage.llm/0": 5}, wall=float(wall))
>>> punct.parts["usage.llm/0"].clocks   # at 100_129: quiet for 119 s of watching
{'usage.llm/0:gw': [50000.0, False]}
>>> p.punctuation({"usage.llm/0": 5}, wall=100_130.0).parts["usage.llm/0"].clocks   # 120 s
{'usage.llm/0:gw': [50000.0, True]}
>>> p.went_idle     # what this reading found newly idle (the worker logs it)
['usage.llm/0:gw']
>>> p.punctuation({"usage.llm/0": 9}, wall=100_131.0).parts["usage.llm/0"].clocks   # 4 records waiting
{'usage.llm/0:gw': [50000.0, False]}
"""

from __future__ import annotations

import math

from pydantic import BaseModel

#: Producers remembered per usage partition (a producer inventing keys cannot grow this without bound).
MAX_PRODUCERS = 1024
#: A sender asks keys to scan for quiet buckets at least this often (seconds of wall time).
SCAN_EVERY = 30.0
#: Readings further apart than this many reading intervals do not settle a partition (a stall in between).
MAX_READING_GAP = 3.0


#: Longest time between two punctuations: a quiet key's minute closes within about this much of becoming
#: closable (each punctuation closes the keys it can move: streams.state.close_index).
MAX_READING_INTERVAL = 5.0


def reading_interval(idle_after: float) -> float:
    """Seconds between two punctuations (readings) for an idle time of ``idle_after`` seconds.

    >>> reading_interval(120.0), reading_interval(3.0), reading_interval(0.1)
    (5.0, 1.5, 0.5)
    """
    return max(0.5, min(idle_after / 2, MAX_READING_INTERVAL))


def source_of(clock: str) -> str:
    """The usage partition of a source clock: ``usage.llm/0:gw`` -> ``usage.llm/0``."""
    return clock.split(":", 1)[0]


class PartitionClocks(BaseModel):
    """What a punctuation says about one usage partition."""

    #: caught up and owned for longer than the idle time: a clock of this partition that is not listed is idle
    idle_ok: bool
    #: clock -> [newest event time, idle]
    clocks: dict[str, list[float | bool]]


class Punctuation(BaseModel):
    """The periodic message a worker sends to every ``costs`` and ``budget.spend`` partition."""

    wall: float
    scan: bool = False  # keys should look for buckets their clocks let close (a clock went idle, or it is time)
    parts: dict[str, PartitionClocks]

    def reading(self, clock: str) -> tuple[float, bool] | None:
        """(newest, idle) of ``clock`` if this punctuation speaks for its partition, else ``None``."""
        part = self.parts.get(source_of(clock))
        if part is None:
            return None
        seen = part.clocks.get(clock)
        if seen is not None:
            return float(seen[0]), bool(seen[1])
        return (-math.inf, True) if part.idle_ok else None


class _Partition:
    __slots__ = ("assigned_at", "offset", "producers", "idle", "caught_up_at", "start_known")

    def __init__(self, wall: float) -> None:
        self.assigned_at = wall
        self.caught_up_at: float | None = None  # wall time of the last reading, if it found nothing waiting
        self.offset = -1  # newest offset processed here
        self.start_known = False  # where this worker's reading of the partition started is known (resumed())
        self.producers: dict[str, list[float]] = {}  # clock -> [newest event time, wall time of its last record]
        self.idle: set[str] = set()


class SourceProgress:
    """Worker-local: the usage partitions this worker owns, the producers on each, how far it has read."""

    def __init__(self, idle_after: float) -> None:
        self.idle_after = idle_after
        self.max_gap = MAX_READING_GAP * reading_interval(idle_after)
        self._parts: dict[str, _Partition] = {}
        self._last_scan = -math.inf
        self._last_reading = -math.inf
        self._watching_since = math.inf  # wall time of the first reading after the last gap
        #: clocks the last :meth:`punctuation` found idle that were active before (for the worker's log)
        self.went_idle: list[str] = []
        #: seconds the last reading's answer took, when so long it counted as a stall (else None; logged)
        self.late_answer: float | None = None

    def assigned(self, source: str, wall: float) -> None:
        self._parts.setdefault(source, _Partition(wall))

    def unread(self) -> list[str]:
        """Partitions this worker owns but has processed nothing of since it was assigned them: where their
        reading starts (the group's committed offset) must come from the broker (:meth:`resumed`)."""
        return [source for source, part in self._parts.items() if part.offset < 0 and not part.start_known]

    def resumed(self, source: str, committed: int) -> None:
        """The group's committed offset of ``source`` (the next offset to be processed here; the partition's
        first offset if the group never committed one), for a partition this worker has processed nothing of
        yet; asked once per assignment. Without it a partition handed over already drained (its
        previous owner processed and committed everything, then crashed or left) would never count as caught
        up, and no key fed from it could close again.

        >>> p = SourceProgress(idle_after=3.0)
        >>> p.assigned("usage.llm/0", wall=100.0)
        >>> [p.punctuation({"usage.llm/0": 40}, wall=w).parts["usage.llm/0"].idle_ok for w in (101.0, 102.5, 104.0)]
        [False, False, False]
        >>> p.unread()
        ['usage.llm/0']
        >>> p.resumed("usage.llm/0", committed=40)   # the previous owner had processed offsets 0..39
        >>> [p.punctuation({"usage.llm/0": 40}, wall=w).parts["usage.llm/0"].idle_ok for w in (105.5, 107.0)]
        [False, True]
        >>> p.unread()
        []
        """
        part = self._parts.get(source)
        if part is not None and part.offset < 0:
            part.offset, part.start_known = committed - 1, True

    def revoked(self, source: str) -> None:
        self._parts.pop(source, None)

    @property
    def sources(self) -> list[str]:
        return list(self._parts)

    def clock_after(self, source: str, clock: str, newest: float, wall: float) -> float:
        """What :meth:`processed` will record as ``clock``'s newest event time, without recording it: a message's
        outputs carry it, and the message counts as processed (its clock readable by punctuations) only once
        they are sent, or a punctuation could overtake them and close minutes they still hold.

        >>> p = SourceProgress(idle_after=120.0)
        >>> p.clock_after("usage.llm/0", "usage.llm/0:gw", 50.0, wall=100.0), p.sources
        (50.0, [])
        """
        part = self._parts.get(source)
        seen = part.producers.get(clock) if part is not None else None
        newest = min(newest, wall)
        return newest if seen is None else max(seen[0], newest)

    def processed(self, source: str, offset: int, clock: str, newest: float, wall: float) -> float:
        """Record one message of ``source`` from ``clock`` with events up to ``newest``; returns the clock's
        newest event time (never moving back, never ahead of ``wall``: a producer whose clock runs fast
        must not drag event time into the future)."""
        part = self._parts.get(source)
        if part is None:
            part = self._parts[source] = _Partition(wall)
        part.offset = max(part.offset, offset)
        seen = part.producers.get(clock)
        newest = min(newest, wall)
        if seen is None:
            if len(part.producers) >= MAX_PRODUCERS:
                del part.producers[min(part.producers, key=lambda c: part.producers[c][1])]
            seen = part.producers[clock] = [newest, wall]
        seen[0], seen[1] = max(seen[0], newest), wall
        part.idle.discard(clock)
        return seen[0]

    def punctuation(self, ends: dict[str, int], wall: float, asked: float | None = None) -> Punctuation:
        """A punctuation for the partitions in ``ends`` (source -> end offset, the next offset to be written),
        asked for at ``asked`` and come back at ``wall`` (default: at once).

        A stall between two readings restarts the quiet count: the worker asked only long after the last
        answer (it was stopped, or its event loop starved), or the request itself waited long (the broker
        paused). Each is measured on its own: a slow but steady answer (the consumer's fetch long-poll holds
        the request on its connection for up to 1.5 s) must not add up with the interval into a "stall" at
        every reading, or no producer could ever go idle on a busy machine.

        >>> p = SourceProgress(idle_after=3.0)   # readings every 1.5 s, a stall is a gap of over 4.5 s
        >>> p.processed("usage.llm/0", 0, "usage.llm/0:gw", 50.0, wall=100.0)
        50.0
        >>> t, idle = 100.0, False
        >>> while not idle and t < 200:   # each answer takes 3.2 s, asked 1.5 s after the one before
        ...     asked, t = t + 1.5, t + 4.7
        ...     idle = p.punctuation({"usage.llm/0": 1}, wall=t, asked=asked).reading("usage.llm/0:gw")[1]
        >>> idle, t, p.late_answer
        (True, 109.4, None)
        >>> _ = p.punctuation({"usage.llm/0": 1}, wall=t + 21.0, asked=t + 1.5)  # a paused broker held it 19.5 s
        >>> p.late_answer
        19.5
        """
        asked = wall if asked is None else asked
        parts: dict[str, PartitionClocks] = {}
        self.went_idle = []
        scan = wall - self._last_scan >= SCAN_EVERY
        # no stall since the last reading: asked soon after it, and answered soon after asking
        self.late_answer = wall - asked if wall - asked > self.max_gap else None
        recent = asked - self._last_reading <= self.max_gap and self.late_answer is None
        if not recent:
            self._watching_since = wall
        self._last_reading = wall
        for source, end in ends.items():
            part = self._parts.get(source)
            if part is None:
                continue
            caught_up = part.offset + 1 >= end
            before, part.caught_up_at = (part.caught_up_at if recent else None), (wall if caught_up else None)
            settled = caught_up and before is not None  # nothing waiting at this reading and the one before
            clocks: dict[str, list[float | bool]] = {}
            for clock, (newest, last) in part.producers.items():
                quiet_since = max(last, self._watching_since)  # quiet time counts only while watching
                idle = settled and last < before and wall - quiet_since >= self.idle_after  # type: ignore[operator]
                if idle and clock not in part.idle:
                    part.idle.add(clock)
                    self.went_idle.append(clock)
                    scan = True  # a clock went idle: its keys' buckets may close now
                clocks[clock] = [newest, idle]
            owned_since = max(part.assigned_at, self._watching_since)
            parts[source] = PartitionClocks(idle_ok=settled and wall - owned_since >= self.idle_after,
                                            clocks=clocks)
        if scan:
            self._last_scan = wall
        return Punctuation(wall=wall, scan=scan, parts=parts)


class EventClock:
    """Event time "now" for the budgets on one partition, merged from every sender's punctuations: the
    slowest active producer's newest event; once every producer is idle, the newest event plus the wall
    time since they all went quiet (a surge that stops completely must still resolve, whatever else runs
    on this worker).

    >>> c = EventClock()
    >>> c.apply(Punctuation(wall=5000.0, parts={"usage.llm/0": PartitionClocks(idle_ok=True, clocks={
    ...     "usage.llm/0:a": [900.0, False], "usage.llm/0:b": [600.0, False]})}))
    600.0
    >>> c.apply(Punctuation(wall=5010.0, parts={"usage.llm/0": PartitionClocks(idle_ok=True, clocks={
    ...     "usage.llm/0:a": [960.0, True], "usage.llm/0:b": [600.0, True]})}))
    960.0
    >>> c.apply(Punctuation(wall=5310.0, parts={"usage.llm/0": PartitionClocks(idle_ok=True, clocks={
    ...     "usage.llm/0:a": [960.0, True], "usage.llm/0:b": [600.0, True]})}))
    1260.0
    """

    __slots__ = ("parts", "idle_since", "now")

    def __init__(self) -> None:
        self.parts: dict[str, dict[str, list[float | bool]]] = {}
        self.idle_since: float | None = None  # wall time at which every clock was idle
        self.now: float | None = None

    def check(self) -> None:
        """Raise ``ValueError`` for a decoded value this class cannot work with (a forged changelog record)."""
        if not isinstance(self.parts, dict) or any(
                not isinstance(part, dict) or any(not isinstance(r, list) or len(r) != 2 for r in part.values())
                for part in self.parts.values()):
            raise ValueError("parts must map sources to clock readings [newest, idle]")
        if self.now is not None and not isinstance(self.now, (int, float)):
            raise ValueError("now must be a number")

    def apply(self, punct: Punctuation) -> float | None:
        for source, part in punct.parts.items():
            self.parts[source] = dict(part.clocks)
        readings = [r for part in self.parts.values() for r in part.values()]
        if not readings:
            return self.now
        active = [float(newest) for newest, idle in readings if not idle]
        if active:
            self.idle_since, now = None, min(active)
        else:
            if self.idle_since is None:
                self.idle_since = punct.wall
            now = max(float(newest) for newest, _ in readings) + (punct.wall - self.idle_since)
        self.now = now if self.now is None else max(self.now, now)
        return self.now

"""Event-time tumbling buckets for one allocation key, closed by the watermarks of the sources feeding it.

Each producer ("source clock": a usage partition and the producer's message key) has its own
event-time clock. A key remembers the clocks that fed it; its watermark is the slowest of them
that is not idle, minus the allowed lateness (every one idle: everything may close). So a gateway
an hour behind another producer closes its own minutes on its own clock, and a roll-up fed by both
waits for the slower one, or for it to go idle. A record later than that is not lost: it is summed
into a correction bucket (``late=True``) emitted at the next close, so spend still counts it while
detection, which has already scored that minute, skips it.

Every decision here is a function of the key's own state and the message being applied (records
carry their source's clock, punctuations carry clocks and idleness), so a worker that re-reads
messages after a crash re-emits exactly the same buckets under the same sequence numbers, and
consumers drop the repeats by ``(key, seq)``. That holds only if each message is applied to a key
once: a recovered state may be *ahead* of the committed offset (its changelog write landed, the
offset commit did not), and an old punctuation applied again on top of it would mark a clock idle
that a later record had woken, closing a half-filled minute under a sequence number consumers
already hold with other contents. So a key remembers the offset of the last ``costs`` message it
applied (:meth:`KeyWindows.first_time`), and every message at or below it is skipped.

An idle clock does not hold a key back for ever, nor let it run ahead without limit: it carries a
*bound*, the event time up to which its idleness was confirmed. A punctuation from the worker owning
its partition (the only one that can see whether its records are waiting) sets the bound to what the
key's active clocks had shown by then; the key closes up to the slowest of its active clocks and of
those bounds. Between two confirmations the active clocks may run ahead, but nothing past the bound
closes, so a producer that resumes together with the others (or whose partition's owner is stalled
while its records wait) still has its minutes open when its records come. Once every clock is
confirmed idle, nothing holds anything back (a surge that stops must close); the first clock to wake
again brings the others' bounds back to the newest event time seen.

>>> from datetime import datetime, timezone
>>> kw = KeyWindows(key="k", seconds=60)
>>> t = lambda m, s=0: datetime(2026, 11, 20, 9, m, s, tzinfo=timezone.utc).timestamp()
>>> kw.add({"ts": t(0, 5), "cost_usd": 1.0, "requests": 1}), kw.add({"ts": t(0, 50), "cost_usd": 2.0})
(True, True)
>>> kw.see_clock("gw", t(1, 30))
>>> [(b.start.minute, b.spend_usd, b.requests) for b in kw.close_due(lateness=30)]
[(0, 3.0, 1)]
>>> kw.add({"ts": t(0, 59), "cost_usd": 9.0, "requests": 1})  # too late: bucket closed
False
>>> [(b.start.minute, b.spend_usd, b.late) for b in kw.close_due(lateness=30)], kw.emitted
([(0, 9.0, True)], 2)
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from collections.abc import Callable
from typing import Any

from schemas.bucket import Bucket
from schemas.cost import CostRecord
from streams.state.codec import plain_state

#: Sums a bucket keeps, in order; a record carries the non-zero ones by name.
SUMS: tuple[str, ...] = ("cost_usd", "requests", "input_tokens", "output_tokens", "cache_read_tokens",
                         "cache_write_tokens", "gpu_seconds", "idle_gpu_seconds", "idle_cost_usd", "failed_requests",
                         "cache_hit_requests", "credit_usd")  # credit_usd last: it is not a CostRecord field
_N = len(SUMS)
_SUMMED = frozenset(SUMS)
#: Sums a charge period is spread over pro rata (money and GPU time); counts stay on its first piece.
_SPREAD = ("cost_usd", "gpu_seconds", "idle_gpu_seconds", "idle_cost_usd", "credit_usd")
_UNPRICED, _RECORDS = _N, _N + 1
#: A billing row's charge period is spread over at most this many pieces (a month of minutes would
#: otherwise open 43,200 buckets for one row).
MAX_SPREAD = 1440


def window_record(rec: CostRecord, child: str | None = None) -> dict[str, Any]:
    """The compact form of a cost record on the ``costs`` topic: event time, what buckets sum, the charge
    period's end for a billing row, and, for a roll-up key, which child it came from."""
    d: dict[str, Any] = {"ts": rec.ts.timestamp()}
    if child is not None:
        d["child"] = child
    for name in SUMS[:-1]:
        v = getattr(rec, name)
        if v:
            d[name] = v
    if rec.cost_usd < 0:  # a credit or refund (FOCUS): counted, netted by budgets, never scored as spend
        d["credit_usd"] = d.pop("cost_usd")
    if not rec.priced:
        d["priced"] = False
    if rec.period_end is not None and rec.period_end > rec.ts:
        d["end"] = rec.period_end.timestamp()
    return d


class PartialSums:
    """The compact records of one message, summed per (key, bucket): one *partial* per key and bucket instead
    of one record per event (``n`` records; ``kids``: spend per child of a roll-up key; ``unpriced``: requests of
    unpriced records). A record whose charge period spans buckets (``end``) is kept alone. Applying a key's
    partials gives the same bucket as applying its records one by one (sums in another order).

    >>> acc = PartialSums(60)
    >>> acc.add("k", {"ts": 5.0, "cost_usd": 1.0, "requests": 1}, "a")
    >>> acc.add("k", {"ts": 50.0, "cost_usd": 2.0, "requests": 1, "priced": False}, "a")
    >>> acc.add("k", {"ts": 65.0, "cost_usd": 4.0, "requests": 1}, "b")
    >>> acc.by_key["k"]
    [{'ts': 5.0, 'n': 2, 'cost_usd': 3.0, 'requests': 2, 'kids': {'a': 3.0}, 'unpriced': 1}, \
{'ts': 65.0, 'n': 1, 'cost_usd': 4.0, 'requests': 1, 'kids': {'b': 4.0}}]
    """

    __slots__ = ("seconds", "by_key", "_open")

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self.by_key: dict[str, list[dict[str, Any]]] = {}
        self._open: dict[tuple[str, int], dict[str, Any]] = {}

    def add(self, key: str, rec: dict[str, Any], child: str | None = None) -> None:
        """Add one compact record (:func:`window_record` without its child) to ``key``'s partial of its bucket."""
        if "end" in rec:
            self.by_key.setdefault(key, []).append(rec if child is None else {**rec, "child": child})
            return
        slot = (key, int(rec["ts"] // self.seconds))
        p = self._open.get(slot)
        if p is None:
            p = self._open[slot] = {"ts": rec["ts"], "n": 0}
            self.by_key.setdefault(key, []).append(p)
        p["n"] += 1
        for name, v in rec.items():
            if name in _SUMMED:
                p[name] = p.get(name, 0) + v
        if rec.get("priced") is False:
            p["unpriced"] = p.get("unpriced", 0) + (rec.get("requests") or 0)
        if child is not None:
            kids = p.get("kids")
            if kids is None:
                kids = p["kids"] = {}
            kids[child] = kids.get(child, 0.0) + (rec.get("cost_usd") or 0.0)


def spread(rec: dict[str, Any], seconds: int) -> list[dict[str, Any]]:
    """A record whose charge period spans several buckets, split pro rata (money and GPU time; counts
    stay on the first piece, so no request or token is split); others as they are.

    >>> [(p["ts"] % 3600, p["cost_usd"]) for p in spread({"ts": 0.0, "end": 180.0, "cost_usd": 3.0}, 60)]
    [(0.0, 1.0), (60.0, 1.0), (120.0, 1.0)]
    """
    end = rec.get("end")
    ts = float(rec["ts"])
    if end is None or end - ts <= seconds and int(ts // seconds) == int((end - 1e-9) // seconds):
        return [rec]
    first, last = int(ts // seconds), int(math.ceil(end / seconds))
    step = max(1, -(-(last - first) // MAX_SPREAD))  # buckets per piece
    pieces = []
    for b in range(first, last, step):
        lo, hi = max(ts, float(b * seconds)), min(end, float((b + step) * seconds))
        if hi <= lo:
            continue
        share = (hi - lo) / (end - ts)
        piece = {k: v for k, v in rec.items() if k != "end"}
        piece["ts"] = lo
        for name in _SPREAD:
            if name in rec:
                piece[name] = rec[name] * share
        if pieces:
            piece["cont"] = True  # a continuation: the record and its counts are on the first piece
            for name in SUMS:
                if name not in _SPREAD:
                    piece.pop(name, None)
        pieces.append(piece)
    return pieces


@plain_state  # written once per key per costs message: encoded without walking it
class KeyWindows:
    """Open buckets of one key, the source clocks that feed it, and what it already applied."""

    __slots__ = ("key", "seconds", "partition", "sums", "late_sums", "children", "closed_until", "late",
                 "applied", "clocks", "emitted", "touched", "input_offset")

    #: children tracked per bucket of a roll-up key; the rest are summed as "other"
    MAX_CHILDREN = 50
    #: source clocks a key follows; beyond it the stalest is dropped (bounds a hostile producer's keys)
    MAX_CLOCKS = 64

    def __init__(self, key: str, seconds: int = 60, partition: int = 0) -> None:
        self.key = key
        self.seconds = seconds
        self.partition = partition  # the Kafka partition this key's records (and state) live on
        self.sums: dict[int, list[float]] = {}
        self.late_sums: dict[int, list[float]] = {}
        self.children: dict[int, dict[str, float]] = {}  # roll-up keys: spend per child per bucket
        self.closed_until = 0.0  # epoch seconds: buckets ending at or before this are closed
        self.late = 0
        self.applied: dict[str, int] = {}  # usage topic/partition -> newest source offset applied
        # source clock -> [newest event time, bound]: bound None while active; idle: the event time its
        # idleness was confirmed up to (inf: every clock was idle)
        self.clocks: dict[str, list[Any]] = {}
        self.emitted = 0  # bucket messages emitted: the sequence number consumers deduplicate by
        self.touched = 0.0  # message time of the last records applied (expiry)
        self.input_offset = -1  # offset (on this key's costs partition) of the last message applied

    def first_time(self, offset: int | None) -> bool:
        """True the first time the ``costs`` message at ``offset`` reaches this key (and remember it); False
        for a message at or below the last one applied (re-read after a crash or a rebalance). ``None``:
        no offset (offline replay), always applied.

        >>> kw = KeyWindows("k")
        >>> kw.first_time(5), kw.first_time(5), kw.first_time(4), kw.first_time(6)
        (True, False, False, True)
        """
        if offset is None:
            return True
        if offset <= self.input_offset:
            return False
        self.input_offset = offset
        return True

    # ------------------------------------------------------------------ input

    def add(self, rec: dict[str, Any]) -> bool:
        """Add one cost record (``ts`` in epoch seconds); False if it (or a piece of it) came too late."""
        on_time = True
        for piece in spread(rec, self.seconds):
            on_time &= self._add_piece(piece)
        return on_time

    def _add_piece(self, rec: dict[str, Any]) -> bool:
        ts = float(rec["ts"])
        start = int(ts // self.seconds) * self.seconds
        on_time = start + self.seconds > self.closed_until
        sums = self.sums if on_time else self.late_sums
        n = rec.get("n")  # a partial (PartialSums) of n records; else one record
        if not on_time:
            self.late += 1 if n is None else n
        row = sums.get(start)
        if row is None:
            row = sums[start] = [0.0] * (_N + 2)
        for i, name in enumerate(SUMS):
            v = rec.get(name)
            if v:
                row[i] += v
        if n is not None:
            row[_UNPRICED] += rec.get("unpriced", 0)
            row[_RECORDS] += n
            kids = rec.get("kids")
            if kids and on_time:
                for child, usd in kids.items():
                    self._add_child(start, child, usd)
            return on_time
        if not rec.get("priced", True):
            row[_UNPRICED] += rec.get("requests", 0) or 0
        if not rec.get("cont"):
            row[_RECORDS] += 1
        child = rec.get("child")
        if child is not None and on_time:
            self._add_child(start, child, rec.get("cost_usd") or 0.0)
        return on_time

    def _add_child(self, start: int, child: str, usd: float) -> None:
        kids = self.children.setdefault(start, {})
        if child not in kids and len(kids) >= self.MAX_CHILDREN:
            child = "other"
        kids[child] = kids.get(child, 0.0) + usd

    def see_clock(self, clock: str, newest: float) -> None:
        """A source clock read from one of its records: its newest event time (never moves back); it is active.
        The first clock to wake after every clock was idle bounds the others at the newest event time seen.

        >>> kw = KeyWindows("k")
        >>> kw.clocks = {"eu": [100.0, math.inf], "us": [90.0, math.inf]}   # both idle: nothing held back
        >>> kw.see_clock("eu", 160.0)
        >>> kw.clocks, kw.watermark(lateness=0)
        ({'eu': [160.0, None], 'us': [90.0, 100.0]}, 100.0)
        """
        seen = self.clocks.get(clock)
        if seen is not None and seen[1] is None:
            seen[0] = max(seen[0], newest)
            return
        if self._none_active(besides=(clock,)):
            top = max((n for n, _ in self.clocks.values()), default=-math.inf)  # all closable up to it
            for c, row in self.clocks.items():
                if c != clock and row[1] == math.inf:
                    row[1] = top
        if seen is None:
            if len(self.clocks) >= self.MAX_CLOCKS:
                del self.clocks[min(self.clocks, key=lambda c: self.clocks[c][0])]
            self.clocks[clock] = [newest, None]
        else:
            seen[0], seen[1] = max(seen[0], newest), None

    def punctuate(self, reading: Callable[[str], tuple[float, bool] | None]) -> bool:
        """Apply a punctuation's readings (``clock -> (newest, idle)`` or ``None`` where it does not
        speak for that clock) to the clocks this key follows; True if any clock changed (the state must
        then be saved even if nothing closed: another worker's punctuation speaks for the other clocks).
        A clock read as idle is bounded at the slowest active clock's newest event time; with none active,
        every idle clock is unbounded.

        >>> kw = KeyWindows("k")
        >>> kw.see_clock("eu", 200.0); kw.see_clock("us", 150.0)
        >>> kw.punctuate(lambda c: (150.0, True) if c == "us" else None), kw.clocks["us"], kw.watermark(0)
        (True, [150.0, 200.0], 200.0)
        >>> kw.see_clock("eu", 260.0)  # eu runs on: us' idleness was confirmed only up to 200
        >>> kw.watermark(0)
        200.0
        >>> kw.punctuate(lambda c: (260.0, True) if c == "eu" else None), kw.watermark(0)
        (True, inf)
        """
        changed = False
        idled = []
        for clock, seen in self.clocks.items():
            r = reading(clock)
            if r is None:
                continue
            if r[0] > seen[0]:
                seen[0], changed = r[0], True
            if r[1]:
                idled.append(clock)
            elif seen[1] is not None:
                seen[1], changed = None, True
        if not idled:
            return changed
        if self._none_active(besides=idled):
            bounds = {c: math.inf for c in self.clocks}  # every clock idle: nothing holds anything back
        else:
            slowest = min(n for c, (n, b) in self.clocks.items() if b is None and c not in idled)
            bounds = {c: slowest for c in idled}
        for clock, bound in bounds.items():
            row = self.clocks[clock]
            if row[1] != bound:
                row[1], changed = bound, True
        return changed

    def _none_active(self, besides: tuple[str, ...] | list[str]) -> bool:
        """No clock other than ``besides`` is active (every other one idle, or there is none)."""
        return not any(bound is None for c, (_, bound) in self.clocks.items() if c not in besides)

    # ------------------------------------------------------------------ output

    def watermark(self, lateness: float) -> float:
        """Event time up to which this key's buckets may close: the slowest of its active clocks and of its
        idle clocks' bounds, minus the lateness; +inf when every clock it follows is idle."""
        held = [newest if bound is None else bound for newest, bound in self.clocks.values()]
        low = min(held, default=math.inf)
        return math.inf if low == math.inf else low - lateness

    def holder(self, lateness: float) -> tuple[str, float] | None:
        """The clock holding this key's oldest open bucket back (the slowest, by its newest event time or
        its idle bound) and the event time it must reach for that bucket to close; ``None`` with nothing
        open, or nothing holding it (every clock idle: it closes at once). What ``CloseIndex`` files.

        >>> kw = KeyWindows("k", 60)
        >>> kw.add({"ts": 125.0, "cost_usd": 1.0}); kw.see_clock("eu", 150.0); kw.see_clock("us", 130.0)
        True
        >>> kw.holder(lateness=30)        # the bucket [120, 180) closes once us reaches 210
        ('us', 210.0)
        """
        if not self.sums or not self.clocks:
            return None
        low, clock = min((newest if bound is None else bound, c) for c, (newest, bound) in self.clocks.items())
        if low == math.inf:
            return None
        return clock, float(min(self.sums) + self.seconds + lateness)

    @property
    def pending(self) -> bool:
        return bool(self.sums or self.late_sums)

    def close_due(self, lateness: float) -> list[Bucket]:
        """Close and return (oldest first) every bucket the watermark has passed, then pending late corrections;
        counts one emission when anything closed."""
        out = self.close_until(self.watermark(lateness))
        if out:
            self.emitted += 1
        return out

    def close_until(self, watermark: float) -> list[Bucket]:
        due = sorted(s for s in self.sums if s + self.seconds <= watermark)
        out = [self._bucket(s, self.sums.pop(s), children=self.children.pop(s, None)) for s in due]
        if self.late_sums:
            out += [self._bucket(s, row, late=True) for s, row in sorted(self.late_sums.items())]
            self.late_sums.clear()
        if due:
            self.closed_until = max(self.closed_until, due[-1] + self.seconds)
        return out

    def check(self) -> None:
        """Raise ``ValueError`` for a decoded value this class cannot work with (a forged changelog record)."""
        if not isinstance(self.key, str) or not isinstance(self.seconds, int) or self.seconds < 1:
            raise ValueError("key must be text and seconds a whole number >= 1")
        if not isinstance(self.partition, int) or not isinstance(self.emitted, int) or self.emitted < 0:
            raise ValueError("partition and emitted must be whole numbers")
        for sums in (self.sums, self.late_sums):
            if not isinstance(sums, dict) or any(
                    not isinstance(k, int) or not isinstance(row, list) or len(row) != _N + 2 for k, row in sums.items()):
                raise ValueError(f"bucket sums must be rows of {_N + 2} numbers keyed by bucket start")
        if not isinstance(self.children, dict) or not all(isinstance(v, dict) for v in self.children.values()):
            raise ValueError("children must map bucket start to spend per child")
        if not isinstance(self.clocks, dict) or len(self.clocks) > self.MAX_CLOCKS or any(
                not isinstance(v, list) or len(v) != 2 or not isinstance(v[0], (int, float))
                or isinstance(v[1], bool) or not (v[1] is None or isinstance(v[1], (int, float)))
                for v in self.clocks.values()):
            raise ValueError(f"clocks must be at most {self.MAX_CLOCKS} [newest, bound or null] pairs")
        if not isinstance(self.applied, dict) or not all(isinstance(v, int) for v in self.applied.values()):
            raise ValueError("applied must map sources to offsets")
        if not isinstance(self.input_offset, int):
            raise ValueError("input_offset must be a whole number")

    def open_bucket(self, start: int) -> Bucket:
        """The open bucket at ``start`` as it stands (its sums so far, its children): what early firing scores.

        >>> kw = KeyWindows("k", 60)
        >>> kw.add({"ts": 125.0, "cost_usd": 1.5, "requests": 2})
        True
        >>> b = kw.open_bucket(120)
        >>> b.spend_usd, b.requests, b.late, kw.sums[120][0]
        (1.5, 2, False, 1.5)
        """
        kids = self.children.get(start)
        return self._bucket(start, self.sums[start], children=dict(kids) if kids else None)

    def close_all(self) -> list[Bucket]:
        """Every bucket, open or late (offline replay: the input has ended)."""
        return self.close_until(math.inf)

    def expired(self, now: float, ttl: float) -> bool:
        """Nothing open and no records for ``ttl`` seconds of message time: the state can go."""
        return not self.pending and now - self.touched >= ttl

    def _bucket(self, start: int, row: list[float], late: bool = False,
                children: dict[str, float] | None = None) -> Bucket:
        return Bucket(
            key=self.key, start=datetime.fromtimestamp(start, tz=timezone.utc), seconds=self.seconds,
            spend_usd=row[0], requests=int(row[1]), input_tokens=int(row[2]), output_tokens=int(row[3]),
            cache_read_tokens=int(row[4]), cache_write_tokens=int(row[5]), gpu_seconds=row[6],
            idle_gpu_seconds=row[7], idle_cost_usd=row[8], failed_requests=int(row[9]),
            cache_hit_requests=int(row[10]), credit_usd=row[11], unpriced_requests=int(row[_UNPRICED]),
            records=int(row[_RECORDS]), late=late, children=children or {},
        )

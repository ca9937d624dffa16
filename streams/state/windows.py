"""Event-time tumbling buckets for one allocation key (pure; its state lives in a Faust table).

A bucket closes once the watermark (latest event time seen, minus the allowed
lateness) passes its end. A record later than that is not lost: it is summed into a
correction bucket (``late=True``) emitted at the next close, so spend still counts it
while detection, which has already scored that minute, skips it.

>>> from datetime import datetime, timezone
>>> ob = OpenBuckets(key="k", seconds=60)
>>> t = lambda m, s=0: datetime(2026, 11, 20, 9, m, s, tzinfo=timezone.utc).timestamp()
>>> ob.add({"ts": t(0, 5), "cost_usd": 1.0, "requests": 1})
True
>>> ob.add({"ts": t(0, 50), "cost_usd": 2.0, "requests": 1})
True
>>> [(b.start.minute, b.spend_usd, b.requests) for b in ob.close_until(t(1, 30))]
[(0, 3.0, 2)]
>>> ob.add({"ts": t(0, 59), "cost_usd": 9.0, "requests": 1})  # too late: bucket closed
False
>>> [(b.start.minute, b.spend_usd, b.late) for b in ob.close_until(t(1, 30))]
[(0, 9.0, True)]
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from schemas.bucket import Bucket
from schemas.cost import CostRecord
from streams.delivery import already_applied


def window_record(rec: CostRecord, child: str | None = None) -> dict[str, Any]:
    """The compact form of a cost record on the ``costs`` topic: event time and what buckets sum
    (and, for a roll-up key, which child it came from)."""
    d: dict[str, Any] = {"ts": rec.ts.timestamp()}
    if child is not None:
        d["child"] = child
    for name in _SUMS:
        v = getattr(rec, name)
        if v:
            d[name] = v
    if not rec.priced:
        d["priced"] = False
    return d


_SUMS = ("cost_usd", "requests", "input_tokens", "output_tokens", "cache_read_tokens",
         "cache_write_tokens", "gpu_seconds", "idle_gpu_seconds", "idle_cost_usd", "failed_requests",
         "cache_hit_requests")
_N = len(_SUMS)
_UNPRICED, _RECORDS = _N, _N + 1


class OpenBuckets:
    """Running sums per bucket start (epoch seconds) for one key; small and picklable."""

    __slots__ = ("key", "seconds", "sums", "late_sums", "children", "closed_until", "late", "partition",
                 "last_offset", "sources")

    #: children tracked per bucket of a roll-up key; the rest are summed as "other"
    MAX_CHILDREN = 50

    def __init__(self, key: str, seconds: int = 60, partition: int = 0) -> None:
        self.key = key
        self.partition = partition  # the Kafka partition this key's records (and state) live on
        self.last_offset = -1  # of the last costs message applied: a redelivered one is skipped
        self.sources: dict[str, int] = {}  # usage topic/partition -> newest source offset applied
        self.seconds = seconds
        self.sums: dict[int, list[float]] = {}
        self.late_sums: dict[int, list[float]] = {}
        self.children: dict[int, dict[str, float]] = {}  # roll-up keys: spend per child per bucket
        self.closed_until = 0.0  # epoch seconds: buckets ending at or before this are closed
        self.late = 0

    def add(self, rec: dict[str, Any]) -> bool:
        """Add one cost record (a dict with ``ts`` in epoch seconds); False if it came too late."""
        ts = float(rec["ts"])
        start = int(ts // self.seconds) * self.seconds
        on_time = start + self.seconds > self.closed_until
        sums = self.sums if on_time else self.late_sums
        if not on_time:
            self.late += 1
        row = sums.get(start)
        if row is None:
            row = sums[start] = [0.0] * (_N + 2)
        for i, name in enumerate(_SUMS):
            v = rec.get(name)
            if v:
                row[i] += v
        if not rec.get("priced", True):
            row[_UNPRICED] += rec.get("requests", 0) or 0
        row[_RECORDS] += 1
        child = rec.get("child")
        if child is not None and on_time:
            kids = self.children.setdefault(start, {})
            if child not in kids and len(kids) >= self.MAX_CHILDREN:
                child = "other"
            kids[child] = kids.get(child, 0.0) + (rec.get("cost_usd") or 0.0)
        return on_time

    def seen(self, source: str, offset: int) -> bool:
        """True if records from ``source`` at ``offset`` were applied already (normalize redelivered them);
        else remember the offset. Records of one source partition reach a key in offset order."""
        return already_applied(self.sources, source, offset)

    @property
    def oldest_end(self) -> float | None:
        return min(self.sums) + self.seconds if self.sums else None

    def close_until(self, watermark: float) -> list[Bucket]:
        """Close and return (oldest first) every bucket whose end is at or before ``watermark``,
        then any pending late corrections."""
        due = sorted(s for s in self.sums if s + self.seconds <= watermark)
        out = [self._bucket(s, self.sums.pop(s), children=self.children.pop(s, None)) for s in due]
        if self.late_sums:
            out += [self._bucket(s, row, late=True) for s, row in sorted(self.late_sums.items())]
            self.late_sums.clear()
        if due:
            self.closed_until = max(self.closed_until, due[-1] + self.seconds)
        return out

    def close_all(self) -> list[Bucket]:
        return self.close_until(float("inf"))

    def _bucket(self, start: int, row: list[float], late: bool = False,
                children: dict[str, float] | None = None) -> Bucket:
        return Bucket(
            key=self.key, start=datetime.fromtimestamp(start, tz=timezone.utc), seconds=self.seconds,
            spend_usd=row[0], requests=int(row[1]), input_tokens=int(row[2]), output_tokens=int(row[3]),
            cache_read_tokens=int(row[4]), cache_write_tokens=int(row[5]), gpu_seconds=row[6],
            idle_gpu_seconds=row[7], idle_cost_usd=row[8], failed_requests=int(row[9]),
            cache_hit_requests=int(row[10]), unpriced_requests=int(row[_UNPRICED]),
            records=int(row[_RECORDS]), late=late, children=children or {},
        )

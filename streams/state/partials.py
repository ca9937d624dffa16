"""Which open buckets the aggregate agent sends to detect before they close (early firing): worker-local, never stored.

A key's open bucket is worth scoring early only when its spend so far is already well above what the key's recent
closed buckets spent: ``min_ratio`` times its *reference* (the materiality an incident needs anyway,
``alert_min_ratio``); after that, again each time its spend has grown ``growth`` times since it was last sent. The
reference is a peak envelope of its closed on-time buckets' spend (each closed bucket: the larger of its spend and
the reference times ``decay``), so a key whose minutes are noisy (a few calls each) compares with its recent peaks,
not with its last minute, and rarely sends. A key spending as usual sends nothing, and a spiking key-minute sends a
handful of partials (log(peak / first) / log(growth)), however many events it gets: the number is bounded at any
event rate. After a spike the reference decays back (about 20 closed minutes from 10x), so a second spike within
that time waits for its minute to close.

What it remembers is per key on this worker: the reference and, for its open buckets already sent, the spend sent
last. It is lost on a restart or a rebalance: the key's
partials resume after its next close (meanwhile its buckets still alert when they close). It decides only what
is *sent*: never a bucket, a sequence number or any spend.

>>> gate = PartialGate(min_ratio=1.5, growth=2.0)
>>> gate.due("k", {120: [9.0]})                       # no closed bucket yet: no reference, nothing to send
[]
>>> gate.closed("k", [(60, 1.0, False)])             # minute 60 closed with $1
>>> gate.due("k", {120: [1.2]}), gate.due("k", {120: [1.6]}), gate.due("k", {120: [2.0]})
([], [120], [])
>>> gate.due("k", {120: [3.2]}), gate.due("k", {120: [3.2]})   # grown 2x since sent: once
([120], [])
>>> gate.closed("k", [(120, 4.0, False)]); gate.sent, gate.reference
({}, {'k': 4.0})
>>> gate.closed("k", [(180, 1.0, False), (240, 1.0, False)]); gate.reference   # decays back: 4 x 0.9 x 0.9
{'k': 3.24}
>>> gate.forget("k"); gate.reference
{}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

#: An open bucket already sent is sent again once its spend has grown this many times.
GROWTH = 1.5
#: Per closed bucket, the reference falls to at most this share of itself (the peak envelope's decay).
DECAY = 0.9


class PartialGate:
    """Per key, the reference spend (peak envelope of its closed on-time buckets) and the spend last sent per open
    bucket."""

    __slots__ = ("min_ratio", "growth", "decay", "reference", "sent")

    def __init__(self, min_ratio: float, growth: float = GROWTH, decay: float = DECAY) -> None:
        if min_ratio < 1.0 or growth <= 1.0 or not 0.0 <= decay < 1.0:
            raise ValueError("min_ratio must be >= 1, growth > 1 and decay in [0, 1)")
        self.min_ratio, self.growth, self.decay = min_ratio, growth, decay
        self.reference: dict[str, float] = {}
        self.sent: dict[str, dict[int, float]] = {}

    def closed(self, key: str, buckets: Iterable[tuple[int, float, bool]]) -> None:
        """``key`` closed ``buckets`` (start, spend, late), oldest first: each on-time one moves the reference
        (its spend, or the reference decayed if that is larger); what was sent of the closed ones is forgotten."""
        newest = None
        ref = self.reference.get(key)
        for start, spend, late in buckets:
            if not late:
                newest = start
                ref = spend if ref is None else max(spend, ref * self.decay)
        if ref is not None:
            self.reference[key] = ref
        sent = self.sent.get(key)
        if newest is not None and sent is not None:
            for start in [s for s in sent if s <= newest]:
                del sent[start]
            if not sent:
                del self.sent[key]

    def due(self, key: str, sums: Mapping[int, Sequence[float]]) -> list[int]:
        """Starts of ``key``'s open buckets (``sums``: start -> row, spend first) to send now, remembered as sent."""
        ref = self.reference.get(key)
        if ref is None or ref <= 0.0:
            return []  # no closed bucket seen here yet, or one without spend: nothing to compare with
        sent = self.sent.get(key)
        out = []
        for start, row in sums.items():
            spend = row[0]
            last = None if sent is None else sent.get(start)
            if spend >= (ref * self.min_ratio if last is None else last * self.growth):
                if sent is None:
                    sent = self.sent[key] = {}
                sent[start] = spend
                out.append(start)
        return out

    def forget(self, key: str) -> None:
        """``key``'s state is gone (expired): so is what is remembered of it."""
        self.reference.pop(key, None)
        self.sent.pop(key, None)

"""What normalize makes of one usage message before sending anything: the per-message work, two ways.

:func:`reference_work` is the definition: ``Normalizer.parse`` (a pydantic model and a ``CostRecord`` per event),
cardinality limits per record, then the partial sums per (key, bucket) (``PartialSums``), spend per budget
(``spend_by_budget``), GPU samples and requests per served model. :class:`MessageWork` gives the same
:class:`Work` faster for envelopes of native events and of LiteLLM payloads (failed calls and cache hits
included: counted per event, from their combination): msgspec decoding into columns
(:mod:`schemas.fast_native`, :mod:`schemas.fast_litellm`), everything that depends only on the key resolved once
per distinct key (allocation, limits, roll-up keys, budgets, served-model key), and the partial sums added per
event in event order, so every sum is the reference's to the last bit. A message it does not handle goes to the
reference path whole (bad events get the reference's reasons). ``tests/unit/test_normalize_fast.py`` and
``tests/unit/test_litellm_fast.py`` check both give equal work.

>>> from guardrails.budget_book import BudgetBook
>>> from schemas.cardinality import CardinalityLimiter
>>> from schemas.ingest import Normalizer
>>> msg = b'[{"timestamp": "2026-01-05T10:00:05Z", "model": "gpt-4o", "cost_usd": 0.5, "tags": {"team": "a"}}]'
>>> w = MessageWork(Normalizer(), BudgetBook.load(), CardinalityLimiter(), 60, (("team", "environment"),))
>>> work = w.run("llm", msg, now=1767607200.0)
>>> work.fast, work.records, sorted(work.by_key)[0], work.spend["org"]
(True, 1, 'team=a|feature=*|customer=*|model=*|environment=production', [[1767607200, 0.5]])
>>> ref = reference_work(Normalizer(), BudgetBook.load(), CardinalityLimiter(), 60, (("team", "environment"),),
...                      "llm", msg)
>>> (ref.by_key, ref.spend, ref.requests, ref.newest) == (work.by_key, work.spend, work.requests, work.newest)
True
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from detectors.pinned_model import MINUTE_S, model_key
from guardrails.budget_book import BudgetBook
from guardrails.spend_routing import spend_by_budget
from schemas.cardinality import CardinalityLimiter
from schemas.cost import KEY_FIELDS, CostRecord, key_string
from schemas.deadletter import Rejection
from schemas.fast_litellm import LiteLlmResolver, decode_litellm
from schemas.fast_native import NativeBatch, Resolver, decode_native
from schemas.ingest import Normalizer
from streams.gpu import gpu_samples_by_resource, requests_by_model
from streams.rollups import rollup_keys
from streams.state.windows import PartialSums, window_record

__all__ = ["MessageWork", "Work", "partials", "reference_work"]

Levels = tuple[tuple[str, ...], ...]


@dataclass(slots=True)
class Work:
    """One message's outputs: partial sums per key, spend per budget, GPU samples per resource, requests per
    served model, the newest event time (epoch s; ``-inf`` without records), the rejections."""

    by_key: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    spend: dict[str, list[list[float]]] = field(default_factory=dict)
    gpu: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: dict[str, list[list[int]]] = field(default_factory=dict)
    newest: float = -math.inf
    rejects: list[Rejection] = field(default_factory=list)
    records: int = 0
    fast: bool = False


@lru_cache(maxsize=1 << 16)
def _rollups(values: tuple[str, ...], levels: Levels) -> list[tuple[str, str]]:
    """(roll-up key, child) per level for a record with these key field values (cached: few distinct ones)."""
    return rollup_keys(SimpleNamespace(**dict(zip(KEY_FIELDS, values))), levels)  # type: ignore[arg-type]


def partials(records: list[CostRecord], seconds: int, levels: Levels) -> dict[str, list[dict[str, Any]]]:
    """The records per key (allocation and roll-up keys), one partial sum per key and bucket."""
    acc = PartialSums(seconds)
    for rec in records:
        w = window_record(rec)
        acc.add(rec.allocation_key, w)
        for key, child in _rollups(tuple(getattr(rec, f) for f in KEY_FIELDS), levels):
            acc.add(key, w, child)
    return acc.by_key


def reference_work(normalizer: Normalizer, book: BudgetBook, limiter: CardinalityLimiter, seconds: int,
                   levels: Levels, source: str, raw: Any) -> Work:
    """The message's work from one ``CostRecord`` per event (the definition :class:`MessageWork` must match)."""
    records, rejects = normalizer.parse(source, raw)
    records = [limiter.admit(r) for r in records]
    return Work(by_key=partials(records, seconds, levels), spend=spend_by_budget(records, book),
                gpu=gpu_samples_by_resource(records) if source == "gpu" else {},
                requests=requests_by_model(records) if source == "llm" else {},
                newest=max((r.ts.timestamp() for r in records), default=-math.inf), rejects=rejects,
                records=len(records))


@dataclass(slots=True)
class _Keyed:
    """What an admitted key (values and tier) leads to: its allocation key, its roll-ups (key, child), the ids of
    the llm budgets it counts towards, its served-model join key."""

    key: str
    rollups: tuple[tuple[str, str], ...]
    budgets: tuple[str, ...]
    model: str | None


# A slot: one (allocation key, bucket) of a message. Its fields, by index:
_TS, _N, _COST, _IN, _OUT, _CR, _CW, _UNPRICED, _ROLL, _SPEND, _KEYED, _BUCKET, _FAILED, _HITS = range(14)


class MessageWork:
    """The per-message work of normalize, fast for native and LiteLLM envelopes (see the module docstring)."""

    MAX_KEYS = 1 << 17

    def __init__(self, normalizer: Normalizer, book: BudgetBook, limiter: CardinalityLimiter, seconds: int,
                 levels: Levels, *, fast: bool = True) -> None:
        self.normalizer, self.book, self.limiter = normalizer, book, limiter
        self.seconds, self.levels, self.fast = seconds, tuple(tuple(level) for level in levels), fast
        self.resolver = Resolver(normalizer.catalog, normalizer.rules)
        self.litellm = LiteLlmResolver(normalizer.catalog, normalizer.rules)
        self._keyed: dict[tuple[tuple[str, ...], str], _Keyed] = {}

    def run(self, source: str, raw: Any, *, now: float | None = None) -> Work:
        """The work of one message from ``usage.<source>`` (``now``: epoch seconds, for the future-skew check)."""
        n = self.normalizer
        if self.fast and source == "llm" and type(raw) is bytes and len(raw) <= n.max_message_bytes:
            # No cyclic garbage collection inside one message: its thousands of short-lived containers would
            # otherwise trigger collections that walk every long-lived object of the process (the caches, the
            # tables), each time; reference counting frees them all the same (they hold no cycles).
            paused = gc.isenabled()
            if paused:
                gc.disable()
            try:
                at, skew = time.time() if now is None else now, n.max_future_skew.total_seconds()
                batch, fmt = decode_native(raw, self.resolver, now=at, max_future_skew_s=skew), "native"
                if batch is None:  # LiteLLM payloads (each has a startTime: never native)
                    batch, fmt = decode_litellm(raw, self.litellm, now=at, max_future_skew_s=skew), "litellm"
                work = self._from_batch(batch, fmt) if batch is not None else None
            finally:
                if paused:
                    gc.enable()
            if work is not None:
                return work
        return reference_work(n, self.book, self.limiter, self.seconds, self.levels, source, raw)

    def _key(self, values: tuple[str, ...], tier: str) -> _Keyed:
        got = self._keyed.get((values, tier))
        if got is None:
            alloc = key_string(values)
            # the key's own values, not its string parsed back (the same values: escaping round-trips)
            budgets = tuple(s.id for s in self.book.matching(dict(zip(KEY_FIELDS, values)), tier=tier)
                            if "llm" in s.sources)
            if len(self._keyed) >= self.MAX_KEYS:
                self._keyed.clear()
            got = self._keyed[(values, tier)] = _Keyed(alloc, tuple(_rollups(values, self.levels)), budgets,
                                                       model_key(values[3]))
        return got

    def _from_batch(self, b: NativeBatch, fmt: str = "native") -> Work | None:
        """The work of a decoded batch; ``None`` in the one case its shortcuts would not be exact (two keys of a
        roll-up bucket with the same child name, only possible with ``|`` or ``=`` in tag values)."""
        seconds, admission = self.seconds, self.limiter.admission
        slots: dict[tuple[str, int], list[Any]] = {}  # (allocation key, bucket) -> slot, in order of creation
        rolls: dict[tuple[str, int], list[Any]] = {}  # (roll-up key, bucket) -> [ts, cost, children's slots]
        cells: dict[tuple[str, int], list[float]] = {}  # (budget, minute) -> [spend]
        counts: dict[str, dict[int, int]] = {}  # served model -> minute -> requests
        for combo, ts, cost, priced, toks in zip(b.combos, b.ts, b.cost, b.priced, b.tokens):
            k = combo.extra
            if k is None:
                values, changed = admission(combo.values)
                k = self._key(values, combo.tier)
                if not changed:  # admitting these values again would change nothing: remember the outcome
                    combo.extra = k
            bucket = int(ts // seconds)
            slot = slots.get((k.key, bucket))
            if slot is None:
                slot = slots[(k.key, bucket)] = self._slot(k, bucket, ts, rolls, cells)
            slot[_N] += 1
            slot[_COST] += cost
            slot[_IN] += toks[0]
            slot[_OUT] += toks[1]
            slot[_CR] += toks[2]
            slot[_CW] += toks[3]
            if not priced:
                slot[_UNPRICED] += 1
            if combo.failed:
                slot[_FAILED] += 1
            if combo.cache_hit:
                slot[_HITS] += 1
            for roll in slot[_ROLL]:
                roll[1] += cost  # a roll-up's spend in event order, as the reference adds it
            if cost:
                if seconds == MINUTE_S and slot[_KEYED] is k:
                    spend_cells = slot[_SPEND]
                else:  # buckets of another width, or the slot's key seen with another tier: budgets event by event
                    spend_cells = _budget_cells(cells, k.budgets, int(ts) // MINUTE_S * MINUTE_S)
                for cell in spend_cells:
                    cell[0] += cost
            if seconds != MINUTE_S and k.model is not None:  # requests per minute event by event
                _add_requests(counts, k.model, int(ts) // MINUTE_S * MINUTE_S, 1)  # (a minute bucket's: its slot's)
        return self._finish(b, slots, rolls, cells, counts, fmt)

    def _slot(self, k: _Keyed, bucket: int, ts: float, rolls: dict[tuple[str, int], list[Any]],
              cells: dict[tuple[str, int], list[float]]) -> list[Any]:
        slot: list[Any] = [ts, 0, 0.0, 0, 0, 0, 0, 0, [], [], k, bucket, 0, 0]
        for level, (key, _child) in enumerate(k.rollups):
            roll = rolls.get((key, bucket))
            if roll is None:  # ts, spend, children's slots, key, level, written
                roll = rolls[(key, bucket)] = [ts, 0.0, [], key, level, False]
            roll[2].append(slot)
            slot[_ROLL].append(roll)
        if self.seconds == MINUTE_S:
            slot[_SPEND] = _budget_cells(cells, k.budgets, bucket * MINUTE_S)
        return slot

    def _finish(self, b: NativeBatch, slots: dict[tuple[str, int], list[Any]],
                rolls: dict[tuple[str, int], list[Any]], cells: dict[tuple[str, int], list[float]],
                counts: dict[str, dict[int, int]], fmt: str) -> Work | None:
        by_key: dict[str, list[dict[str, Any]]] = {}
        per_minute = self.seconds == MINUTE_S
        unpriced = 0
        for slot in slots.values():  # in order of creation: the reference's order of keys and buckets
            k: _Keyed = slot[_KEYED]
            by_key.setdefault(k.key, []).append(_partial(slot[_TS], slot[_N], slot[_COST], slot[_IN], slot[_OUT],
                                                         slot[_CR], slot[_CW], slot[_FAILED], slot[_HITS],
                                                         slot[_UNPRICED]))
            for roll in slot[_ROLL]:
                if not roll[5]:
                    roll[5] = True
                    p = self._roll_partial(roll)
                    if p is None:
                        return None
                    by_key.setdefault(roll[3], []).append(p)
            unpriced += slot[_UNPRICED]
            if per_minute and k.model is not None:  # a bucket is a minute: its requests are the minute's
                _add_requests(counts, k.model, slot[_BUCKET] * MINUTE_S, slot[_N])
        spend: dict[str, dict[int, float]] = {}
        for (bid, minute), cell in cells.items():
            if cell[0]:
                spend.setdefault(bid, {})[minute] = cell[0]
        n = len(b.ts)
        stats = self.normalizer.stats
        stats["format." + fmt] += n
        if unpriced:
            stats["unpriced"] += unpriced
        stats["records"] += n
        stats["rejected"] += 0
        return Work(by_key=by_key,
                    spend={bid: [[m, usd] for m, usd in sorted(per.items())] for bid, per in spend.items()},
                    requests={m: sorted([t, c] for t, c in per.items()) for m, per in counts.items()},
                    newest=max(b.ts), records=n, fast=True)

    @staticmethod
    def _roll_partial(roll: list[Any]) -> dict[str, Any] | None:
        """A roll-up bucket's partial from its children's slots (counts are exact in any order; its spend was
        summed per event; each child is one allocation key, whose own spend is its slot's)."""
        level = roll[4]
        kids: dict[str, float] = {}
        n = i = o = cr = cw = failed = hits = unpriced = 0
        for c in roll[2]:
            child = c[_KEYED].rollups[level][1]
            if child in kids:
                return None
            kids[child] = c[_COST]
            n += c[_N]
            i += c[_IN]
            o += c[_OUT]
            cr += c[_CR]
            cw += c[_CW]
            failed += c[_FAILED]
            hits += c[_HITS]
            unpriced += c[_UNPRICED]
        p = _partial(roll[0], n, roll[1], i, o, cr, cw, failed, hits, unpriced)
        p["kids"] = kids
        return p


def _budget_cells(cells: dict[tuple[str, int], list[float]], budgets: tuple[str, ...],
                  minute: int) -> list[list[float]]:
    """The spend cells of these budgets in this minute (epoch s), in budget order, new ones at 0.0."""
    got = []
    for bid in budgets:
        cell = cells.get((bid, minute))
        if cell is None:
            cell = cells[(bid, minute)] = [0.0]
        got.append(cell)
    return got


def _add_requests(counts: dict[str, dict[int, int]], model: str, minute: int, n: int) -> None:
    """Count ``n`` requests of a served model in a minute (epoch s)."""
    per = counts.setdefault(model, {})
    per[minute] = per.get(minute, 0) + n


def _partial(ts: float, n: int, cost: float, i: int, o: int, cr: int, cw: int, failed: int, hits: int,
             unpriced: int) -> dict[str, Any]:
    """A partial as ``PartialSums`` writes it (a sum only where some record had it non-zero: all are >= 0 here)."""
    p: dict[str, Any] = {"ts": ts, "n": n}
    if cost:
        p["cost_usd"] = cost
    p["requests"] = n
    if i:
        p["input_tokens"] = i
    if o:
        p["output_tokens"] = o
    if cr:
        p["cache_read_tokens"] = cr
    if cw:
        p["cache_write_tokens"] = cw
    if failed:
        p["failed_requests"] = failed
    if hits:
        p["cache_hit_requests"] = hits
    if unpriced:
        p["unpriced"] = unpriced
    return p

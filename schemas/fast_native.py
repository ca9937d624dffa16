"""A fast decoder for envelopes of native events (``schemas.events.LlmUsageEvent``), as columns.

The reference path (:class:`schemas.ingest.Normalizer`) builds a pydantic model and a ``CostRecord`` per
event. This module decodes a whole envelope with msgspec into typed structs (split into events by
:mod:`schemas.fast_envelope`, as the LiteLLM decoder's are), checks each event against the same rules, and
resolves what depends only on the event's (model, provider, tags) - allocation, tier, canonical model - once
per distinct combination, *with the reference code itself*: the first event of a combination is parsed by
``schemas.sources.native.parse``, so allocation rules and tag handling cannot drift.

It is deliberately narrow. :func:`decode_native` returns ``None`` - "not handled, use the reference path" -
for anything it does not accept exactly as the reference would: an unknown field (another format, or a
field the decoder does not type), a lax value pydantic would coerce (``"3"`` or ``3.0`` tokens), a timestamp
not in the plain RFC 3339 form, one within a second of the future-skew limit, a length limit, a tag that is
not text, a message over the size limit, a message orjson would not read (an envelope's other keys, which
msgspec skips unchecked, holding invalid UTF-8 or a number beyond a double: :mod:`schemas.json_screen`). So
every event it returns yields the reference's record, and every envelope with a bad event goes whole to the
reference, which gives each bad event its exact reason.

>>> from schemas.pricing import PriceCatalog
>>> from schemas.allocation import AllocationRules
>>> res = Resolver(PriceCatalog.load(), AllocationRules.load())
>>> b = decode_native(b'[{"timestamp": "2026-01-05T10:00:00Z", "model": "gpt-4o-mini", "input_tokens": 1000,'
...                   b' "tags": {"team": "search"}}]', res, now=1767607200.0)
>>> c = b.combos[0]
>>> (c.values[0], c.model, c.tier), b.ts, [round(x, 8) for x in b.cost], b.priced
(('search', 'gpt-4o-mini', 'production'), [1767607200.0], [0.00015], [True])
>>> decode_native(b'[{"timestamp": "2026-01-05T10:00:00Z", "model": "m", "input_tokens": "3"}]', res,
...               now=1767607200.0) is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import msgspec

from schemas.allocation import AllocationRules
from schemas.events import MAX_FUTURE_SKEW, UNKNOWN
from schemas.fast_envelope import EnvelopeReader
from schemas.json_screen import orjson_reads
from schemas.pricing import PriceCatalog
from schemas.sources import llm_allocation, native

__all__ = ["Combo", "NativeBatch", "Resolver", "decode_native", "latest_time"]

_Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]  # beyond: the reference (orjson reads > 2**64 - 1 as float)
_Money = Annotated[float, msgspec.Meta(ge=0.0, le=1.7976931348623157e308)]  # finite, non-negative (JSON has no NaN)


class _Event(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The fields of ``LlmUsageEvent``, strictly typed; any other field means "not handled here". Not tracked by
    the garbage collector (it holds no containers): hundreds per message would otherwise trigger collections."""

    timestamp: str
    model: str
    format: str | None = None
    provider: str = UNKNOWN
    input_tokens: _Count = 0
    output_tokens: _Count = 0
    cache_read_tokens: _Count = 0
    cache_write_tokens: _Count = 0
    cost_usd: _Money | None = None
    latency_ms: _Money | None = None
    request_id: str | None = None
    tags: msgspec.Raw = msgspec.Raw(b"{}")  # decoded once per distinct value (Resolver.combo)


#: The message's events (an envelope naming no format or "native"). The envelope's other keys are the only
#: content msgspec skipped (an event has no field it does not decode; tags are decoded whole by Resolver.combo),
#: so only there may orjson disagree: an envelope orjson would not read is not handled here.
_EVENTS = EnvelopeReader(_Event, (msgspec.UNSET, "native"), screen=orjson_reads)
_TAGS = msgspec.json.Decoder(dict[str, str])  # a tag that is not text: the reference path
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
#: RFC 3339 as producers write it, years 2000-2099 (no range edge where pydantic and datetime could differ).
_TS = re.compile(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")
#: The time the reference parses a combination at (allocation does not depend on it; each event's own time
#: is checked here, so a combination is never cached as bad because of one event's time).
_ANY_TIME = "2026-01-01T00:00:00Z"
#: The known tag fields of ``schemas.events.Tags`` and their length limits (after stripping).
_TAG_LIMITS = (("team", 128), ("feature", 128), ("customer", 128), ("environment", 64))
_NOT_NATIVE = frozenset({None, "native"})


@dataclass(slots=True)
class Combo:
    """What one (model, provider, tags) combination resolves to: the record fields that do not vary per event."""

    values: tuple[str, str, str, str, str]  # (team, feature, customer, model, environment): the key fields
    tier: str
    model: str  # the canonical model, as priced
    provider: str
    failed: bool = False  # a failed call (LiteLLM ``status``): its record counts one failed request
    cache_hit: bool = False  # a response-cache hit (LiteLLM ``cache_hit``): one cache-hit request, no tokens
    extra: Any = None  # free for the consumer to remember what it derived from this combination


#: The combination of every valid event when only validating (``Resolver(allocate=False)``).
_VALID = Combo(("", "", "", "", ""), "", "", "")


class Resolver:
    """Resolves combinations with the reference parser and remembers them (bounded). ``allocate=False``: validate
    only (``burnguard publish``): a combination the reference takes as it is resolves to a placeholder, and
    :func:`decode_native` prices nothing (a batch's costs are then 0, unpriced): only whether it is ``None`` counts."""

    MAX = 65_536

    def __init__(self, catalog: PriceCatalog, rules: AllocationRules, *, allocate: bool = True) -> None:
        self.catalog, self.rules, self.allocate = catalog, rules, allocate  # allocate=False: validate only
        self.cache: dict[tuple[Any, ...], Combo | None] = {}

    def combo(self, model: str, provider: str, tags_json: bytes) -> Combo | None:
        """The combination of an event (``None``: the reference rejects it, so the envelope is not handled here)."""
        key = (model, provider, tags_json)
        hit = self.cache.get(key, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        got = self._resolve(model, provider, tags_json)
        if len(self.cache) >= self.MAX:
            self.cache.clear()
        self.cache[key] = got
        return got

    def _resolve(self, model: str, given_provider: str, tags_json: bytes) -> Combo | None:
        try:
            tags = _TAGS.decode(tags_json)
        except _DECODE_ERRORS:
            return None
        provider = None if given_provider == UNKNOWN else given_provider
        get = tags.get
        for name, limit in _TAG_LIMITS:
            v = get(name)
            if v is not None and (len(v) > limit or v != v.strip()):
                break
        else:
            # tags the reference's Tags model keeps as they are (nothing to strip, within its lengths): then
            # what it passes on (schemas.sources.native.tags_of) is this very dict
            if not self.allocate:
                return _VALID
            canonical, prov, a = llm_allocation(model, provider, None, tags, self.catalog, self.rules)
            return Combo((a.team, a.feature, a.customer, a.model, a.environment), a.tier, canonical, prov)
        try:  # the reference parser itself (a tag to strip, or too long)
            rec = native.parse({"timestamp": _ANY_TIME, "model": model, "provider": given_provider, "tags": tags},
                               self.catalog, self.rules)
        except ValueError:  # pydantic's ValidationError is one
            return None
        canonical = self.catalog.canonical_model(model, provider, None)
        return Combo((rec.team, rec.feature, rec.customer, rec.model, rec.environment), rec.tier, canonical,
                     rec.provider)


@dataclass(slots=True)
class NativeBatch:
    """One envelope's events as columns (event order); ``combos[i]`` is event i's combination."""

    combos: list[Combo] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)  # 0.0 where unpriced
    priced: list[bool] = field(default_factory=list)
    tokens: list[tuple[int, int, int, int]] = field(default_factory=list)  # input, output, cache read, cache write


def latest_time(now: float, max_future_skew_s: float | None = None) -> float:
    """The latest event time (epoch s) a fast decoder takes at ``now``: a second short of the future-skew limit
    (``MAX_FUTURE_SKEW``, or the smaller ``max_future_skew_s``); nearer the limit the reference decides."""
    skew = MAX_FUTURE_SKEW.total_seconds()
    if max_future_skew_s is not None:
        skew = min(skew, max_future_skew_s)
    return now + skew - 1.0


def decode_native(raw: bytes, resolver: Resolver, *, now: float, max_future_skew_s: float | None = None,
                  one: bool = False) -> NativeBatch | None:
    """One ``usage.llm`` message of native events as a :class:`NativeBatch`, or ``None`` if it is not
    handled here (see the module docstring). ``now`` is epoch seconds; ``one``: only a single event (an
    object), not an envelope."""
    events = _EVENTS.events(raw, one)
    if not events:
        return None  # an empty envelope too: the reference's (no records, no rejects) is cheap
    latest = latest_time(now, max_future_skew_s)
    catalog, fromiso, match = resolver.catalog, datetime.fromisoformat, _TS.fullmatch
    out = NativeBatch()
    combos, tss, costs, priced, tokens = out.combos, out.ts, out.cost, out.priced, out.tokens
    combo_of, allocate = resolver.combo, resolver.allocate
    for ev in events:
        if ev.format not in _NOT_NATIVE or match(ev.timestamp) is None:
            return None
        rid = ev.request_id
        if not 0 < len(ev.model) <= 200 or len(ev.provider) > 64 or (rid is not None and len(rid) > 200):
            return None
        try:
            dt = fromiso(ev.timestamp)
        except ValueError:
            return None
        ts = dt.timestamp()
        if ts > latest:
            return None
        combo = combo_of(ev.model, ev.provider, bytes(ev.tags))
        if combo is None:
            return None
        cost = ev.cost_usd
        toks = (ev.input_tokens, ev.output_tokens, ev.cache_read_tokens, ev.cache_write_tokens)
        if cost is None and allocate:  # validating only: no price (it never rejects an event)
            cost = catalog.llm_cost(combo.model, dt, input_tokens=toks[0], output_tokens=toks[1],
                                    cache_read_tokens=toks[2], cache_write_tokens=toks[3])
        combos.append(combo)
        tss.append(ts)
        costs.append(cost if cost is not None else 0.0)
        priced.append(cost is not None)
        tokens.append(toks)
    return out

"""A fast decoder for envelopes of LiteLLM ``StandardLoggingPayload`` events, as columns.

The reference path (``schemas.sources.litellm.parse``) validates a pydantic model and builds a ``CostRecord`` per
event. This module decodes a whole envelope with msgspec (split into events by :mod:`schemas.fast_envelope`)
into :class:`schemas.fast_native.NativeBatch` columns (what ``streams.agents.normalize_work.MessageWork`` sums),
reading only the fields the reference reads and skipping the rest of each ~1-15 KB payload (checked as JSON, not
decoded).

What depends only on the fields that name the call's model and owner - ``model``, ``custom_llm_provider``,
``model_group``, ``end_user``, ``request_tags``, ``team_id``, ``status``, ``cache_hit`` and the key and tag fields
of ``metadata`` - is resolved once per distinct combination of their raw JSON bytes *by the reference itself*
(``LiteLlmPayload`` then ``to_usage`` then ``llm_allocation``, as ``llm_record`` does), so lenient parsing, the
key's team over request tags and the dropping of caller ``key.*`` tags cannot drift. Per event it reads the time,
cost and token fields, with strict types. A failed call or a response-cache hit (both named by the combination's
``status`` and ``cache_hit``: :attr:`Combo.failed`, :attr:`Combo.cache_hit`) is taken at LiteLLM's cost (0 if it
logged none), never the catalog's, and a cache hit with no tokens, as the reference records them.

It is deliberately narrow: :func:`decode_litellm` returns ``None`` ("use the reference path") for a message it
does not accept exactly as the reference would: a per-event field of a lax type (a number as text, a float
token count, ``metadata`` or ``usage_object`` as a JSON string), a time that is not Unix seconds of 2000-2099 or is
within a second of the future-skew limit, an id over 200 characters, a combination the reference rejects,
another format, OTLP, an empty envelope, a message orjson would not read (:func:`schemas.json_screen.orjson_reads`: what msgspec skips, it
does not check for UTF-8 or for numbers beyond a double). Every envelope with a bad event thus goes whole to
the reference, which gives each its exact reason.

:func:`check_litellm` is the same decision without the record (``burnguard publish`` validating a file): whether
the reference would take a message with no rejection, the combination judged by :class:`LiteLlmChecker` on the
two fields of it that can be rejected (:data:`CAN_REJECT`), once per distinct pair, so nothing is allocated or priced.

>>> from schemas.pricing import PriceCatalog
>>> from schemas.allocation import AllocationRules
>>> res = LiteLlmResolver(PriceCatalog.load(), AllocationRules.load())
>>> ev = (b'{"model": "openai/gpt-4o", "startTime": 1767607200.5, "response_cost": 0.25, "prompt_tokens": 10,'
...       b' "metadata": {"user_api_key_team_alias": "search"}, "request_tags": ["team:ads", "feature:chat"]}')
>>> b = decode_litellm(b"[" + ev + b"]", res, now=1767607200.0)
>>> c = b.combos[0]
>>> c.values, c.tier, b.ts, b.cost, b.tokens
(('search', 'chat', 'unknown', 'gpt-4o', 'production'), 'production', [1767607200.5], [0.25], [(10, 0, 0, 0)])
>>> decode_litellm(b'[' + ev.replace(b'10,', b'"10",') + b']', res, now=1767607200.0) is None
True
"""

from __future__ import annotations

from datetime import datetime, timezone
from operator import attrgetter
from typing import Annotated, Any, Literal

import msgspec
import orjson

from schemas.allocation import AllocationRules
from schemas.fast_envelope import EnvelopeReader
from schemas.fast_native import Combo, NativeBatch, latest_time
from schemas.json_screen import orjson_reads
from schemas.pricing import PriceCatalog
from schemas.sources import llm_allocation
from schemas.sources.litellm import LiteLlmPayload, to_usage

__all__ = ["LiteLlmChecker", "LiteLlmResolver", "check_litellm", "decode_litellm"]

_Count = Annotated[int, msgspec.Meta(ge=0, le=10**12)]  # schemas.sources._common.Count (MAX_TOKENS)
_Money = Annotated[float, msgspec.Meta(ge=0.0, le=1.7976931348623157e308)]  # finite, non-negative
#: Unix seconds of 2000-2099: what the reference reads as seconds (``_epoch``: below 1e11), far from any edge.
_Seconds = Annotated[float, msgspec.Meta(ge=946_684_800.0, lt=4_102_444_800.0)]
_Id = Annotated[str, msgspec.Meta(max_length=200)]
_ABSENT = msgspec.Raw(b"")
_NO_TOKENS = (0, 0, 0, 0)
#: The time the reference parses a combination at (allocation does not depend on it).
_ANY_TIME = 1_767_225_600.0


class _Details(msgspec.Struct, gc=False):
    cached_tokens: int | None = None


class _Usage(msgspec.Struct, gc=False):
    """``metadata.usage_object``: the cache split (an int out of range counts 0, as the reference's ``_count``)."""

    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    prompt_tokens_details: _Details | None = None


class _Meta(msgspec.Struct, gc=False):
    """``metadata``: the fields that name the key and its tags, raw (the reference interprets them), and the usage."""

    user_api_key_alias: msgspec.Raw = _ABSENT
    user_api_key_team_id: msgspec.Raw = _ABSENT
    user_api_key_team_alias: msgspec.Raw = _ABSENT
    user_api_key_user_id: msgspec.Raw = _ABSENT
    user_api_key_org_id: msgspec.Raw = _ABSENT
    user_api_key_end_user_id: msgspec.Raw = _ABSENT
    team_id: msgspec.Raw = _ABSENT
    team_alias: msgspec.Raw = _ABSENT
    spend_logs_metadata: msgspec.Raw = _ABSENT
    usage_object: _Usage | None = None


#: The raw fields of a combination, in key order: the payload's, then metadata's.
_TOP_KEYS = ("model", "custom_llm_provider", "model_group", "end_user", "request_tags", "team_id", "status",
             "cache_hit")
_META_KEYS = tuple(f for f in _Meta.__struct_fields__ if f != "usage_object")
_SEP = b"\0"


class _Event(msgspec.Struct, gc=False):
    """The fields of ``LiteLlmPayload`` (others ignored, as the reference does); per-event ones strictly typed."""

    startTime: _Seconds
    model: msgspec.Raw
    format: Literal["litellm"] | None = None
    id: _Id | None = None
    request_id: _Id | None = None
    response_cost: _Money | None = None
    spend: _Money | None = None
    prompt_tokens: _Count = 0
    completion_tokens: _Count = 0
    total_tokens: _Count | None = None
    endTime: _Seconds | None = None
    response_time: _Money | None = None
    response_cost_failure_debug_info: Any = None
    custom_llm_provider: msgspec.Raw = _ABSENT
    model_group: msgspec.Raw = _ABSENT
    end_user: msgspec.Raw = _ABSENT
    request_tags: msgspec.Raw = _ABSENT
    team_id: msgspec.Raw = _ABSENT
    status: msgspec.Raw = _ABSENT
    cache_hit: msgspec.Raw = _ABSENT
    metadata: _Meta | None | msgspec.UnsetType = msgspec.UNSET


class _LoneEvent(_Event, gc=False):
    """An event that is a message of its own (``check_litellm(one=True)``), with the two keys that would make such
    a message something else for the reference: an envelope (``events``) or OTLP (``resourceSpans``)."""

    events: msgspec.Raw = _ABSENT
    resourceSpans: msgspec.Raw = _ABSENT


_LONE = msgspec.json.Decoder(_LoneEvent)
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
_TOP_FIELDS = attrgetter(*_TOP_KEYS)
_META_FIELDS = attrgetter(*_META_KEYS)
#: The message's events: an envelope naming no format leaves each event's format to detection; an event ignores
#: unknown fields, so a lone object is checked for OTLP or an events array first. (orjson screens every message:
#: decode_litellm.)
_EVENTS = EnvelopeReader(_Event, (msgspec.UNSET, None, "litellm"), check_lone=True)


class LiteLlmResolver:
    """Resolves combinations with the reference parser and remembers them (bounded)."""

    MAX = 65_536
    MAX_KEY_BYTES = 2048  # so the cache holds at most ~130 MB of keys whatever producers send

    def __init__(self, catalog: PriceCatalog, rules: AllocationRules) -> None:
        self.catalog, self.rules = catalog, rules
        self.cache: dict[bytes, Combo | None] = {}

    def combo(self, ev: _Event) -> Combo | None:
        """The combination of an event (``None``: the reference rejects it, so the envelope is not handled
        here)."""
        m = ev.metadata
        # One bytes key: the raw values joined by NUL, which valid JSON never holds outside an escape (no raw
        # control character in a string); then SOH and the metadata's state and raw values.
        key = _SEP.join(_TOP_FIELDS(ev)) + (b"" if m is msgspec.UNSET else b"\1null" if m is None else
                                             b"\1{\1" + _SEP.join(_META_FIELDS(m)))
        hit = self.cache.get(key, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        got = self._resolve(key)
        if len(key) <= self.MAX_KEY_BYTES:  # a huge one (caller metadata) is resolved each time, never kept
            if len(self.cache) >= self.MAX:
                self.cache.clear()
            self.cache[key] = got
        return got

    def _resolve(self, key: bytes) -> Combo | None:
        top, *meta = key.split(b"\1")
        doc: dict[str, Any] = {"startTime": _ANY_TIME}
        try:  # the reference itself: lenient parsing, tags, key over caller tags, provider, canonical model
            doc.update((k, orjson.loads(v)) for k, v in zip(_TOP_KEYS, top.split(_SEP)) if v)
            if meta:
                doc["metadata"] = None if meta == [b"null"] else {
                    k: orjson.loads(v) for k, v in zip(_META_KEYS, meta[1].split(_SEP)) if v}
            u = to_usage(LiteLlmPayload.model_validate(doc))
        except ValueError:  # pydantic's ValidationError and orjson's JSONDecodeError are ones
            return None
        canonical, provider, a = llm_allocation(u.model, u.provider, u.model_group, u.tags, self.catalog, self.rules)
        return Combo((a.team, a.feature, a.customer, a.model, a.environment), a.tier, canonical, provider,
                     failed=u.failed, cache_hit=u.cache_hit)


def _cache_split(u: _Usage | None) -> tuple[int, int]:
    """(cache read, cache write) tokens, as ``schemas.sources.litellm`` reads them (out of range: 0)."""
    if u is None:
        return 0, 0
    read = u.cache_read_input_tokens
    read = read if read is not None and 0 <= read <= 10**12 else 0
    if not read and u.prompt_tokens_details is not None:
        read = u.prompt_tokens_details.cached_tokens
        read = read if read is not None and 0 <= read <= 10**12 else 0
    write = u.cache_creation_input_tokens
    return read, write if write is not None and 0 <= write <= 10**12 else 0


def decode_litellm(raw: bytes, resolver: LiteLlmResolver, *, now: float, max_future_skew_s: float | None = None,
                   one: bool = False) -> NativeBatch | None:
    """One ``usage.llm`` message of LiteLLM payloads as a :class:`NativeBatch`, or ``None`` if it is not handled
    here (see the module docstring). ``now`` is epoch seconds; ``one``: only a single event (an object)."""
    events = _EVENTS.events(raw, one)
    if not events or not orjson_reads(raw):
        return None
    latest = latest_time(now, max_future_skew_s)  # within a second of the limit: the reference decides
    catalog, utc, fromts = resolver.catalog, timezone.utc, datetime.fromtimestamp
    out = NativeBatch()
    combos, tss, costs, priced, tokens = out.combos, out.ts, out.cost, out.priced, out.tokens
    combo_of = resolver.combo
    for ev in events:
        combo = combo_of(ev)
        if combo is None:
            return None
        dt = fromts(ev.startTime, tz=utc)
        ts = dt.timestamp()
        if ts > latest:
            return None
        cost = ev.response_cost if ev.response_cost is not None else ev.spend
        if combo.cache_hit:  # a cached answer used no provider tokens (LiteLLM logs the original call's)
            toks = _NO_TOKENS
        else:
            m = ev.metadata
            read, write = _cache_split(m.usage_object) if m else (0, 0)
            prompt, completion = ev.prompt_tokens, ev.completion_tokens
            toks = (max(prompt - read - write, 0), completion, read, write)
        if combo.failed or combo.cache_hit:
            if cost is None:  # LiteLLM's cost as it is (none: 0), never the catalog's
                cost = 0.0
        elif ev.response_cost_failure_debug_info or (cost == 0 and (prompt or completion)):
            cost = None  # LiteLLM could not price it: the catalog does (or it is unpriced)
        if cost is None:
            cost = catalog.llm_cost(combo.model, dt, input_tokens=toks[0], output_tokens=toks[1],
                                    cache_read_tokens=toks[2], cache_write_tokens=toks[3])
        combos.append(combo)
        tss.append(ts)
        costs.append(cost if cost is not None else 0.0)
        priced.append(cost is not None)
        tokens.append(toks)
    return out


#: The fields of ``LiteLlmPayload`` whose value can make the reference reject an event: the per-event ones
#: (strictly typed in :class:`_Event`, so a lax value is not taken here), and the two of a combination that
#: carry a length limit. Every other field the reference reads is lenient (``LenientText``, ``LenientList``,
#: ``LenientBool``, ``Any``, a metadata object of ``Any`` fields): whatever JSON it holds, it never rejects,
#: and allocation reads tags leniently too (``tag_value``). tests/unit/test_publish_litellm.py holds the
#: model to this list.
CAN_REJECT = frozenset({"format", "id", "request_id", "response_cost", "spend", "prompt_tokens",
                        "completion_tokens", "total_tokens", "startTime", "endTime", "response_time", "model",
                        "custom_llm_provider"})


class LiteLlmChecker:
    """Validate only (``burnguard publish``): whether the reference takes an event's ``model`` and
    ``custom_llm_provider`` (the only fields of a combination that can make it reject: :data:`CAN_REJECT`),
    asked once per distinct pair of their raw JSON bytes, of the reference itself (``LiteLlmPayload``, then
    ``to_usage`` and ``llm_allocation``, as ``llm_record`` does); bounded as :class:`LiteLlmResolver` is.
    Nothing is allocated or priced: the combination's other fields (tags, status, cache hit) only change
    what a record says, never whether there is one."""

    MAX = 65_536
    MAX_KEY_BYTES = 2048

    def __init__(self, catalog: PriceCatalog, rules: AllocationRules) -> None:
        self.catalog, self.rules = catalog, rules
        self.cache: dict[bytes, bool] = {}

    def valid(self, ev: _Event) -> bool:
        """Whether the reference takes this event's model and provider."""
        model, provider = bytes(ev.model), bytes(ev.custom_llm_provider)
        key = model + _SEP + provider
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        got = self._resolve(model, provider)
        if len(key) <= self.MAX_KEY_BYTES:
            if len(self.cache) >= self.MAX:
                self.cache.clear()
            self.cache[key] = got
        return got

    def _resolve(self, model: bytes, provider: bytes) -> bool:
        try:
            doc: dict[str, Any] = {"startTime": _ANY_TIME, "model": orjson.loads(model)}
            if provider:
                doc["custom_llm_provider"] = orjson.loads(provider)
            u = to_usage(LiteLlmPayload.model_validate(doc))
            llm_allocation(u.model, u.provider, u.model_group, u.tags, self.catalog, self.rules)
        except Exception:  # noqa: BLE001 - whatever the reason, the reference decides (and reports it)
            return False
        return True


def check_litellm(raw: bytes, checker: LiteLlmChecker, *, now: float, max_future_skew_s: float | None = None,
                  one: bool = False) -> bool:
    """Whether the reference takes every event of one message of LiteLLM payloads with no rejection, decided
    as :func:`decode_litellm` decides it (the same events, types, times and screen; the combination by
    :class:`LiteLlmChecker`): ``True`` only if it would return a batch. ``False``: ask the reference. ``one``:
    only a message that is one event object the reference reads as one (no ``events`` or ``resourceSpans`` key,
    however spelt: not an envelope, not OTLP), so that it can be re-batched as it is.

    >>> from schemas.pricing import PriceCatalog
    >>> from schemas.allocation import AllocationRules
    >>> chk = LiteLlmChecker(PriceCatalog.load(), AllocationRules.load())
    >>> ev = b'{"model": "gpt-4o", "startTime": 1767607200.5, "prompt_tokens": 10, "end_user": {"a": [1]}}'
    >>> check_litellm(ev, chk, now=1767607200.0, one=True), check_litellm(ev.replace(b"10", b"-1"), chk,
    ...     now=1767607200.0, one=True), check_litellm(ev.replace(b'"gpt-4o"', b'""'), chk, now=1767607200.0)
    (True, False, False)
    >>> env = b'{"events": [' + ev + b']}'
    >>> check_litellm(env, chk, now=1767607200.0), check_litellm(env, chk, now=1767607200.0, one=True)
    (True, False)
    >>> check_litellm(ev[:-1] + b', "\\\\u0065vents": 1}', chk, now=1767607200.0, one=True)
    False
    """
    if one:
        try:
            lone = _LONE.decode(raw)
        except _DECODE_ERRORS:
            return False
        if lone.events or lone.resourceSpans:  # an envelope or OTLP, whatever its value: the reference's
            return False
        events: list[_Event] | None = [lone]
    else:
        events = _EVENTS.events(raw)
    if not events or not orjson_reads(raw):
        return False
    latest = latest_time(now, max_future_skew_s)  # within a second of the limit: the reference decides
    utc, fromts, valid = timezone.utc, datetime.fromtimestamp, checker.valid
    for ev in events:
        if not valid(ev) or fromts(ev.startTime, tz=utc).timestamp() > latest:
            return False
    return True

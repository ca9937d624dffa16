"""Shared pieces of the input formats: field types and the one place LLM usage is priced.

>>> from datetime import datetime, timezone
>>> from pydantic import TypeAdapter
>>> TypeAdapter(EventTime).validate_python(1763888400)
datetime.datetime(2025, 11, 23, 9, 0, tzinfo=datetime.timezone.utc)
>>> TypeAdapter(EventTime).validate_python("1763888400000000000")  # OTLP nanoseconds
datetime.datetime(2025, 11, 23, 9, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator, BeforeValidator, Field

from schemas.allocation import Allocation, AllocationRules
from schemas.cost import CostRecord
from schemas.events import UNKNOWN, Money, as_utc
from schemas.pricing import PriceCatalog

#: Largest token count accepted for one event (guards against overflow and garbage).
MAX_TOKENS = 10**12

Count = Annotated[int, Field(ge=0, le=MAX_TOKENS)]


def _epoch(v: Any) -> Any:
    """Numbers (and digit strings) are Unix time in s, ms, us or ns, chosen by magnitude."""
    if isinstance(v, str) and v.isdigit():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return v
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError("timestamp must be a finite number")
    x = float(v)
    if x < 0:
        raise ValueError("timestamp must not be negative")
    for scale in (1.0, 1e3, 1e6, 1e9):  # seconds up to year ~5138, then ms, us, ns
        if x / scale < 1e11:
            try:
                return datetime.fromtimestamp(x / scale, tz=timezone.utc)
            except (OverflowError, OSError, ValueError):
                break
    raise ValueError("timestamp number out of range")


#: An event time: ISO 8601 text or Unix epoch (s/ms/us/ns); naive means UTC.
EventTime = Annotated[datetime, BeforeValidator(_epoch), AfterValidator(as_utc)]


def _lenient_text(v: Any) -> Any:
    """Optional text fields: a number is its text, anything else that is not text means "absent"."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return str(v)
    return None


def as_json_object(v: Any) -> Any:
    """Optional object fields: a JSON string that holds an object is that object; other non-objects are absent."""
    if isinstance(v, (str, bytes)):
        try:
            v = orjson.loads(v)
        except orjson.JSONDecodeError:
            return None
    return v if isinstance(v, dict) else None


def _json_list(v: Any) -> Any:
    """Optional list fields: a JSON string holding a list is that list, one plain string a list of it."""
    if isinstance(v, str):
        try:
            doc = orjson.loads(v)
        except orjson.JSONDecodeError:
            return [v]
        return doc if isinstance(doc, list) else [v]
    return v if isinstance(v, list) else None


#: Optional text, parsed leniently: one badly typed optional field must not drop an event's cost.
LenientText = Annotated[str | None, BeforeValidator(_lenient_text)]
#: Optional JSON object, parsed leniently (LiteLLM logs ``spend_logs_metadata`` as the client sent it).
LenientObject = Annotated[dict[str, Any] | None, BeforeValidator(as_json_object)]
#: Optional list, parsed leniently.
LenientList = Annotated[list[Any] | None, BeforeValidator(_json_list)]


@dataclass(slots=True)
class LlmUsage:
    """One LLM call in normalised form, before pricing and allocation.

    ``input_tokens`` is *uncached* input; cache reads and writes are counted separately.
    """

    ts: datetime
    model: str
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None
    latency_ms: float | None = None
    request_id: str | None = None
    tags: Mapping[str, Any] = field(default_factory=dict)
    model_group: str | None = None  # the gateway's name for a deployment group (LiteLLM Router/proxy)
    failed: bool = False  # the call failed: counted in failed_requests, not as an inference
    cache_hit: bool = False  # answered from a response cache: counted in cache_hit_requests


def latency_between(start: datetime | None, end: datetime | None) -> float | None:
    """Milliseconds from start to end, or ``None`` if either is missing or end is earlier."""
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds() * 1000.0


_RECORD_DEFAULTS: dict[str, Any] = {
    name: f.get_default(call_default_factory=True) for name, f in CostRecord.model_fields.items() if not f.is_required()
}


def fast_record(**values: Any) -> CostRecord:
    """A :class:`CostRecord` from values that are already valid, without validating again.

    Same result as ``CostRecord.model_construct`` (all defaults are immutable), a lot
    faster; ``tests/unit/test_ingest_formats.py`` checks it equals a validated record.
    """
    d = _RECORD_DEFAULTS.copy()
    d.update(values)
    r = CostRecord.__new__(CostRecord)
    object.__setattr__(r, "__dict__", d)
    object.__setattr__(r, "__pydantic_fields_set__", set(values))
    object.__setattr__(r, "__pydantic_extra__", None)
    object.__setattr__(r, "__pydantic_private__", None)
    return r


def llm_allocation(model: str, provider: str | None, model_group: str | None, tags: Mapping[str, Any],
                   catalog: PriceCatalog, rules: AllocationRules) -> tuple[str, str, Allocation]:
    """What an LLM call's cost record takes from its model, provider and tags (not from its tokens or time):
    (canonical model, as priced; the provider, as recorded; the allocation). Used per event by
    :func:`llm_record` and per distinct combination by :mod:`schemas.fast_native`.

    >>> from schemas.pricing import PriceCatalog
    >>> m, p, a = llm_allocation("openai/gpt-4o", None, None, {"team": "ads"}, PriceCatalog.load(), AllocationRules())
    >>> m, p, a.team, a.model
    ('gpt-4o', 'openai', 'ads', 'gpt-4o')
    """
    canonical = catalog.canonical_model(model, provider, model_group)
    return canonical, (provider or catalog.provider_of(canonical) or UNKNOWN)[:64], rules.allocate(tags, model=canonical)


def llm_record(u: LlmUsage, fmt: str, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    """Price (unless the event brought its cost) and allocate one LLM call.

    The model name is made canonical first (:meth:`PriceCatalog.canonical_model`), so pricing,
    allocation keys and budgets see one name per model. The inputs are already validated, so the
    record is built without validating again.
    """
    model, provider, a = llm_allocation(u.model, u.provider, u.model_group, u.tags, catalog, rules)
    if u.cache_hit:  # a cached answer used no provider tokens (LiteLLM logs the original call's counts)
        u.input_tokens = u.output_tokens = u.cache_read_tokens = u.cache_write_tokens = 0
    cost = u.cost_usd
    if cost is None:
        cost = catalog.llm_cost(model, u.ts, input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                                cache_read_tokens=u.cache_read_tokens,
                                cache_write_tokens=u.cache_write_tokens)
    return fast_record(
        ts=u.ts, source="llm", team=a.team, feature=a.feature, customer=a.customer, model=a.model,
        environment=a.environment, tier=a.tier, provider=provider,
        cost_usd=cost if cost is not None else 0.0, priced=cost is not None, requests=1,
        failed_requests=int(u.failed), cache_hit_requests=int(u.cache_hit),
        input_tokens=u.input_tokens, output_tokens=u.output_tokens,
        cache_read_tokens=u.cache_read_tokens, cache_write_tokens=u.cache_write_tokens,
        latency_ms=u.latency_ms, request_id=u.request_id, format=fmt)


#: Tag names reserved for what an authenticated gateway key says (``key.team_alias``, ...): only a
#: parser sets them from the gateway's own key metadata; caller-supplied ones are dropped.
KEY_TAG_PREFIX = "key."


def caller_tags(*parts: Mapping[str, Any] | None) -> dict[str, Any]:
    """Tags a caller supplied (request tags, request metadata), merged, without any ``key.*`` tag.

    >>> caller_tags({"team": "ads", "key.team_alias": "ads"}, None)
    {'team': 'ads'}
    """
    return {k: v for k, v in merged_tags(*parts).items() if not (isinstance(k, str) and k.startswith(KEY_TAG_PREFIX))}


def merged_tags(*parts: Mapping[str, Any] | None) -> dict[str, Any]:
    """Later mappings win; ``None`` parts are skipped."""
    out: dict[str, Any] = {}
    for p in parts:
        if p:
            out.update(p)
    return out


def split_kv_tags(tags: list[Any] | None) -> dict[str, str]:
    """Gateway tag lists like ``["team:search", "feature=chat"]`` as a dict (plain tags skipped).

    >>> split_kv_tags(["team:search", "feature=chat", "beta", 3])
    {'team': 'search', 'feature': 'chat'}
    """
    out: dict[str, str] = {}
    for t in tags or ():
        if not isinstance(t, str):
            continue
        for sep in ("=", ":"):
            if sep in t:
                k, v = t.split(sep, 1)
                if k.strip():
                    out[k.strip()] = v.strip()
                break
    return out


__all__ = ["Count", "EventTime", "LenientList", "LenientObject", "LenientText", "LlmUsage", "MAX_TOKENS", "Money",
           "KEY_TAG_PREFIX", "as_json_object", "caller_tags", "fast_record", "latency_between", "llm_allocation", "llm_record", "merged_tags", "split_kv_tags"]

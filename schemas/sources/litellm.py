"""LiteLLM ``StandardLoggingPayload`` (what LiteLLM callbacks log for every call).

Parsed loosely: LiteLLM versions add and rename fields, so unknown fields are ignored, most known
ones are optional, and optional ones are parsed leniently (a number where text is expected is its
text; ``spend_logs_metadata`` sent as a JSON string is that object; a malformed optional field is
treated as absent): one badly typed optional field never drops the event's cost.

Time is ``startTime`` (Unix seconds, float); latency is ``endTime - startTime``. Tokens:
``prompt_tokens`` follows the OpenAI convention (cache reads and writes inside it); the cache split
comes from ``metadata.usage_object`` when LiteLLM logged it, and uncached input = prompt - cache read
- cache write (floored at 0).

Cost is ``response_cost`` (USD; ``spend`` in LiteLLM_SpendLogs rows), except when LiteLLM could not
price the call: it then logs ``0.0`` (with ``response_cost_failure_debug_info`` "This model isn't
mapped yet", or a zero-priced model map for a Router deployment). A successful, uncached call with
tokens and a cost of 0 (or a failure debug info) is priced from burnguard's catalog instead, and
counted as unpriced if the catalog has no price either: never a silent $0. A failed call
(``status: failure``) counts in ``failed_requests`` and a response-cache hit (``cache_hit``) in
``cache_hit_requests``, both at LiteLLM's cost (0).

Allocation tags. What the authenticated virtual key says (LiteLLM proxy ``user_api_key_*`` and
``team_*`` metadata, ``team_id`` of SpendLogs rows) becomes ``key.team_alias``, ``key.team_id``,
``key.alias``, ``key.user_id``, ``key.org_id``; the shipped ``allocation.yaml`` reads the key's team
before any request tag, so a caller cannot move spend off its key's team. What the caller sends
(``request_tags`` ``"key:value"``/``"key=value"``, ``metadata.spend_logs_metadata``) is merged as
ordinary tags, and any caller tag named ``key.*`` is dropped. ``end_user`` and ``model_group`` are
tags too; the model group also names a deployment the catalog does not know
(:meth:`PriceCatalog.canonical_model`).

>>> from schemas.pricing import PriceCatalog
>>> from schemas.allocation import AllocationRules
>>> p = LiteLlmPayload.model_validate({"id": "c1", "model": "openai/gpt-4o", "response_cost": 0.0042,
...     "prompt_tokens": 1000, "completion_tokens": 170, "startTime": 1767607200.0, "endTime": 1767607201.25,
...     "metadata": {"user_api_key_team_alias": "search"}, "request_tags": ["feature:chat", "team:ads"]})
>>> r = to_cost_record(p, PriceCatalog.load(), AllocationRules.load())
>>> r.team, r.feature, r.model, r.cost_usd, r.latency_ms, r.input_tokens
('search', 'chat', 'gpt-4o', 0.0042, 1250.0, 1000)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from schemas.allocation import AllocationRules
from schemas.cost import CostRecord
from schemas.events import Money
from schemas.pricing import PriceCatalog
from schemas.sources._common import (KEY_TAG_PREFIX, Count, EventTime, LenientList, LenientObject, LenientText,
                                     LlmUsage, as_json_object, caller_tags, latency_between, llm_record,
                                     merged_tags, split_kv_tags)

FORMAT = "litellm"
_FAILED = frozenset({"failure", "failed", "error"})


def _lenient_bool(v: Any) -> Any:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, str):
        return {"true": True, "1": True, "false": False, "0": False}.get(v.strip().lower())
    return bool(v) if isinstance(v, (int, float)) else None


LenientBool = Annotated[bool | None, BeforeValidator(_lenient_bool)]


class LiteLlmMetadata(BaseModel):
    """``StandardLoggingMetadata``: key, team and user of the LiteLLM virtual key."""

    model_config = ConfigDict(extra="ignore")

    user_api_key_hash: Any = None
    user_api_key_alias: Any = None
    user_api_key_team_id: Any = None
    user_api_key_team_alias: Any = None
    user_api_key_user_id: Any = None
    user_api_key_org_id: Any = None
    user_api_key_end_user_id: Any = None
    team_id: Any = None
    team_alias: Any = None
    spend_logs_metadata: LenientObject = None
    usage_object: LenientObject = None


class LiteLlmPayload(BaseModel):
    """The fields of ``StandardLoggingPayload`` burnguard uses."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["litellm"] | None = None
    id: LenientText = Field(None, max_length=200)
    request_id: LenientText = Field(None, max_length=200, description="LiteLLM_SpendLogs name for the id")
    call_type: LenientText = None
    status: LenientText = Field(None, description="success or failure")
    response_cost: Money | None = None
    spend: Money | None = Field(None, description="LiteLLM_SpendLogs rows call the cost `spend`")
    prompt_tokens: Count = 0
    completion_tokens: Count = 0
    total_tokens: Count | None = None
    startTime: EventTime
    endTime: EventTime | None = None
    response_time: Money | None = Field(None, description="seconds; used when endTime is missing")
    model: str = Field(min_length=1, max_length=200)
    model_group: LenientText = None
    model_id: LenientText = None
    custom_llm_provider: LenientText = Field(None, max_length=64)
    metadata: Annotated[LiteLlmMetadata | None, BeforeValidator(as_json_object)] = None
    request_tags: LenientList = None
    end_user: LenientText = None
    team_id: Any = Field(None, description="LiteLLM_SpendLogs rows carry the team at top level")
    cache_hit: LenientBool = None
    response_cost_failure_debug_info: Any = Field(None, description="set when LiteLLM could not price the call")


def _count(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10**12 else 0


def _cache_split(usage: dict[str, Any] | None) -> tuple[int, int]:
    """(cache read, cache write) tokens from LiteLLM's logged usage object, 0 when absent."""
    if not usage:
        return 0, 0
    details = usage.get("prompt_tokens_details")
    read = _count(usage.get("cache_read_input_tokens"))
    if not read and isinstance(details, dict):
        read = _count(details.get("cached_tokens"))
    return read, _count(usage.get("cache_creation_input_tokens"))


def _cost(p: LiteLlmPayload, failed: bool, cache_hit: bool) -> float | None:
    """LiteLLM's cost, or ``None`` where LiteLLM could not price the call (then the catalog prices it)."""
    cost = p.response_cost if p.response_cost is not None else p.spend
    if failed or cache_hit:
        return cost if cost is not None else 0.0
    if p.response_cost_failure_debug_info or (cost == 0 and (p.prompt_tokens or p.completion_tokens)):
        return None
    return cost


def _auth_tags(p: LiteLlmPayload, m: LiteLlmMetadata) -> dict[str, Any]:
    """What the authenticated virtual key says (the LiteLLM proxy sets these, not the caller)."""
    found = {"team_alias": m.user_api_key_team_alias or m.team_alias,
             "team_id": m.user_api_key_team_id or m.team_id or p.team_id,
             "alias": m.user_api_key_alias, "user_id": m.user_api_key_user_id, "org_id": m.user_api_key_org_id}
    return {KEY_TAG_PREFIX + k: v for k, v in found.items() if v is not None}


def to_usage(p: LiteLlmPayload) -> LlmUsage:
    m = p.metadata or LiteLlmMetadata()
    read, write = _cache_split(m.usage_object)
    uncached = max(p.prompt_tokens - read - write, 0)
    latency = latency_between(p.startTime, p.endTime)
    if latency is None and p.response_time is not None:
        latency = p.response_time * 1000.0
    provider = p.custom_llm_provider or (p.model.split("/", 1)[0] if "/" in p.model else None)
    failed = (p.status or "").strip().lower() in _FAILED
    cache_hit = bool(p.cache_hit)
    end_user = p.end_user or _lenient_end_user(m.user_api_key_end_user_id)
    tags = merged_tags({"end_user": end_user, "model_group": p.model_group},
                       caller_tags(m.spend_logs_metadata, split_kv_tags(p.request_tags)), _auth_tags(p, m))
    return LlmUsage(ts=p.startTime, model=p.model, provider=provider, input_tokens=uncached,
                    output_tokens=p.completion_tokens, cache_read_tokens=read, cache_write_tokens=write,
                    cost_usd=_cost(p, failed, cache_hit), latency_ms=latency, request_id=p.id or p.request_id,
                    tags=tags, model_group=p.model_group or None, failed=failed, cache_hit=cache_hit)


def _lenient_end_user(v: Any) -> str | None:
    return str(v) if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v) else None


def to_cost_record(p: LiteLlmPayload, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    return llm_record(to_usage(p), FORMAT, catalog, rules)


def parse(item: Any, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    return to_cost_record(LiteLlmPayload.model_validate(item), catalog, rules)

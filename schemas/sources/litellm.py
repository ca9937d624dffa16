"""LiteLLM ``StandardLoggingPayload`` (what LiteLLM callbacks log for every call).

Parsed loosely: LiteLLM versions add and rename fields, so unknown fields are ignored and
most known ones are optional. ``response_cost`` (USD; ``spend`` in LiteLLM_SpendLogs rows)
is used when present; otherwise the call is priced from the catalog. Time is ``startTime`` (Unix seconds, float); latency is
``endTime - startTime``. Tokens: ``prompt_tokens`` follows the OpenAI convention (cache
reads and writes inside it); the cache split comes from ``metadata.usage_object`` when
LiteLLM logged it, and uncached input = prompt - cache read - cache write (floored at 0).

Allocation tags: ``request_tags`` entries ``"key:value"``/``"key=value"``,
``metadata.spend_logs_metadata``, team (``user_api_key_team_alias``/``_team_id``),
``api_key_alias`` (``user_api_key_alias``), ``end_user``, ``model_group``.

>>> from schemas.pricing import PriceCatalog
>>> from schemas.allocation import AllocationRules
>>> p = LiteLlmPayload.model_validate({"id": "c1", "model": "gpt-4o", "response_cost": 0.0042,
...     "prompt_tokens": 1000, "completion_tokens": 170, "startTime": 1767607200.0, "endTime": 1767607201.25,
...     "metadata": {"user_api_key_team_alias": "search"}, "request_tags": ["feature:chat"]})
>>> r = to_cost_record(p, PriceCatalog.load(), AllocationRules.load())
>>> r.team, r.feature, r.cost_usd, r.latency_ms, r.input_tokens
('search', 'chat', 0.0042, 1250.0, 1000)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.allocation import AllocationRules
from schemas.cost import CostRecord
from schemas.events import Money
from schemas.pricing import PriceCatalog
from schemas.sources._common import (Count, EventTime, LlmUsage, latency_between, llm_record, merged_tags,
                                     split_kv_tags)

FORMAT = "litellm"


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
    spend_logs_metadata: dict[str, Any] | None = None
    usage_object: dict[str, Any] | None = None


class LiteLlmPayload(BaseModel):
    """The fields of ``StandardLoggingPayload`` burnguard uses."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["litellm"] | None = None
    id: str | None = Field(None, max_length=200)
    request_id: str | None = Field(None, max_length=200, description="LiteLLM_SpendLogs name for the id")
    call_type: str | None = None
    status: str | None = None
    response_cost: Money | None = None
    spend: Money | None = Field(None, description="LiteLLM_SpendLogs rows call the cost `spend`")
    prompt_tokens: Count = 0
    completion_tokens: Count = 0
    total_tokens: Count | None = None
    startTime: EventTime
    endTime: EventTime | None = None
    response_time: Money | None = Field(None, description="seconds; used when endTime is missing")
    model: str = Field(min_length=1, max_length=200)
    model_group: str | None = None
    model_id: str | None = None
    custom_llm_provider: str | None = Field(None, max_length=64)
    metadata: LiteLlmMetadata | None = None
    request_tags: list[Any] | None = None
    end_user: str | None = None
    team_id: Any = Field(None, description="LiteLLM_SpendLogs rows carry the team at top level")
    cache_hit: bool | None = None


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


def to_usage(p: LiteLlmPayload) -> LlmUsage:
    m = p.metadata or LiteLlmMetadata()
    read, write = _cache_split(m.usage_object)
    uncached = max(p.prompt_tokens - read - write, 0)
    latency = latency_between(p.startTime, p.endTime)
    if latency is None and p.response_time is not None:
        latency = p.response_time * 1000.0
    provider = p.custom_llm_provider or (p.model.split("/", 1)[0] if "/" in p.model else None)
    tags = merged_tags(
        {"team_id": m.user_api_key_team_id or m.team_id or p.team_id, "team_alias": m.user_api_key_team_alias or m.team_alias,
         "api_key_alias": m.user_api_key_alias, "user_id": m.user_api_key_user_id,
         "org_id": m.user_api_key_org_id, "end_user": p.end_user or m.user_api_key_end_user_id,
         "model_group": p.model_group},
        m.spend_logs_metadata, split_kv_tags(p.request_tags))
    return LlmUsage(ts=p.startTime, model=p.model, provider=provider, input_tokens=uncached,
                    output_tokens=p.completion_tokens, cache_read_tokens=read, cache_write_tokens=write,
                    cost_usd=p.response_cost if p.response_cost is not None else p.spend,
                    latency_ms=latency, request_id=p.id or p.request_id, tags=tags)


def to_cost_record(p: LiteLlmPayload, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    return llm_record(to_usage(p), FORMAT, catalog, rules)


def parse(item: Any, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    return to_cost_record(LiteLlmPayload.model_validate(item), catalog, rules)

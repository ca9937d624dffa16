"""Anthropic-style usage: a Messages API response with our timestamp and tags added.

Anthropic counts cache reads and cache writes *separately from* ``input_tokens``:
``input_tokens`` is already the uncached input. A Messages response carries no time, so
``timestamp`` is required. The 5-minute/1-hour split of cache writes
(``usage.cache_creation``) is not priced separately: all writes use the catalog's
``cache_write`` price.

>>> from schemas.pricing import PriceCatalog
>>> from schemas.allocation import AllocationRules
>>> e = AnthropicEvent.model_validate({"id": "msg_1", "type": "message", "model": "claude-sonnet-4-20250514",
...     "timestamp": "2026-01-05T10:00:00Z", "usage": {"input_tokens": 100, "output_tokens": 500,
...     "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 10000}})
>>> r = to_cost_record(e, PriceCatalog.load(), AllocationRules())
>>> r.input_tokens, r.cache_read_tokens, r.cache_write_tokens, round(r.cost_usd, 6)
(100, 10000, 2000, 0.0183)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.allocation import AllocationRules
from schemas.cost import CostRecord
from schemas.events import Money
from schemas.pricing import PriceCatalog
from schemas.sources._common import Count, EventTime, LlmUsage, llm_record, merged_tags

FORMAT = "anthropic"


class AnthropicUsage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input_tokens: Count | None = 0
    output_tokens: Count | None = 0
    cache_creation_input_tokens: Count | None = 0
    cache_read_input_tokens: Count | None = 0


class AnthropicEvent(BaseModel):
    """An Anthropic Messages response (``content`` may be dropped) plus burnguard fields."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["anthropic"] | None = None
    id: str | None = Field(None, max_length=200)
    type: str | None = None
    model: str = Field(min_length=1, max_length=200)
    usage: AnthropicUsage
    timestamp: EventTime
    provider: str | None = Field(None, max_length=64, description="default: anthropic")
    cost_usd: Money | None = None
    latency_ms: Money | None = None
    metadata: dict[str, Any] | None = Field(None, description="request metadata (user_id becomes end_user)")
    tags: dict[str, Any] = Field(default_factory=dict)


def to_usage(e: AnthropicEvent) -> LlmUsage:
    u = e.usage
    meta = e.metadata or {}
    user = meta.get("user_id")
    return LlmUsage(ts=e.timestamp, model=e.model, provider=e.provider or "anthropic",
                    input_tokens=u.input_tokens or 0, output_tokens=u.output_tokens or 0,
                    cache_read_tokens=u.cache_read_input_tokens or 0,
                    cache_write_tokens=u.cache_creation_input_tokens or 0,
                    cost_usd=e.cost_usd, latency_ms=e.latency_ms, request_id=e.id,
                    tags=merged_tags({"end_user": user} if user else None, e.tags))


def to_cost_record(e: AnthropicEvent, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    return llm_record(to_usage(e), FORMAT, catalog, rules)


def parse(item: Any, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    return to_cost_record(AnthropicEvent.model_validate(item), catalog, rules)

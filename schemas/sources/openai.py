"""OpenAI-style usage: a chat completion (or Responses API) response with our tags added.

OpenAI counts cached prompt tokens *inside* ``prompt_tokens``
(``usage.prompt_tokens_details.cached_tokens``), so uncached input is
``prompt_tokens - cached_tokens``. The Responses API spells the same thing
``input_tokens`` / ``input_tokens_details.cached_tokens`` / ``output_tokens``; both are accepted.
Reasoning tokens are part of ``completion_tokens`` and are billed as output.

>>> from schemas.pricing import PriceCatalog
>>> from schemas.allocation import AllocationRules
>>> e = OpenAiEvent.model_validate({"id": "chatcmpl-1", "created": 1767607200, "model": "gpt-4o-2024-08-06",
...     "usage": {"prompt_tokens": 2000, "completion_tokens": 300,
...               "prompt_tokens_details": {"cached_tokens": 1500}}})
>>> r = to_cost_record(e, PriceCatalog.load(), AllocationRules())
>>> r.input_tokens, r.cache_read_tokens, r.output_tokens, round(r.cost_usd, 6)
(500, 1500, 300, 0.006125)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.allocation import AllocationRules
from schemas.cost import CostRecord
from schemas.events import Money
from schemas.pricing import PriceCatalog
from schemas.sources._common import Count, EventTime, LlmUsage, caller_tags, llm_record, merged_tags

FORMAT = "openai"


class TokensDetails(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cached_tokens: Count | None = 0


class OpenAiUsage(BaseModel):
    """``usage`` of a chat completion (prompt/completion) or a Responses API call (input/output)."""

    model_config = ConfigDict(extra="ignore")

    prompt_tokens: Count | None = None
    completion_tokens: Count | None = None
    total_tokens: Count | None = None
    prompt_tokens_details: TokensDetails | None = None
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    input_tokens_details: TokensDetails | None = None

    @model_validator(mode="after")
    def _cached_within_prompt(self) -> "OpenAiUsage":
        if self.prompt_in > 0 or self.cached > 0:
            if self.cached > self.prompt_in:
                raise ValueError(f"cached_tokens ({self.cached}) exceeds prompt_tokens ({self.prompt_in}); "
                                 "OpenAI counts cached tokens inside prompt_tokens")
        return self

    @property
    def prompt_in(self) -> int:
        return self.prompt_tokens if self.prompt_tokens is not None else (self.input_tokens or 0)

    @property
    def completion_out(self) -> int:
        return self.completion_tokens if self.completion_tokens is not None else (self.output_tokens or 0)

    @property
    def cached(self) -> int:
        d = self.prompt_tokens_details or self.input_tokens_details
        return (d.cached_tokens or 0) if d is not None else 0


class OpenAiEvent(BaseModel):
    """An OpenAI response object (``choices`` may be dropped) plus burnguard fields."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["openai"] | None = None
    id: str | None = Field(None, max_length=200)
    model: str = Field(min_length=1, max_length=200)
    usage: OpenAiUsage
    created: EventTime | None = Field(None, description="Unix seconds (chat completions)")
    created_at: EventTime | None = Field(None, description="Unix seconds (Responses API)")
    timestamp: EventTime | None = Field(None, description="overrides created")
    provider: str | None = Field(None, max_length=64, description="default: openai")
    cost_usd: Money | None = None
    latency_ms: Money | None = None
    user: str | None = Field(None, max_length=256, description="OpenAI end-user id; becomes the end_user tag")
    metadata: dict[str, Any] | None = Field(None, description="request metadata; used as tags")
    tags: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_time(self) -> "OpenAiEvent":
        if self.timestamp is None and self.created is None and self.created_at is None:
            raise ValueError("timestamp: give `timestamp`, `created` or `created_at`")
        return self

    @property
    def ts(self) -> datetime:
        return self.timestamp or self.created or self.created_at  # type: ignore[return-value]


def to_usage(e: OpenAiEvent) -> LlmUsage:
    u = e.usage
    cached = u.cached
    return LlmUsage(ts=e.ts, model=e.model, provider=e.provider or "openai",
                    input_tokens=u.prompt_in - cached, output_tokens=u.completion_out,
                    cache_read_tokens=cached, cost_usd=e.cost_usd, latency_ms=e.latency_ms,
                    request_id=e.id,
                    tags=merged_tags({"end_user": e.user} if e.user else None, caller_tags(e.metadata), e.tags))


def to_cost_record(e: OpenAiEvent, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    return llm_record(to_usage(e), FORMAT, catalog, rules)


def parse(item: Any, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    return to_cost_record(OpenAiEvent.model_validate(item), catalog, rules)

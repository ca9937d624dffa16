"""burnguard's own LLM usage event (``schemas.events.LlmUsageEvent``).

Token counts are already split: ``input_tokens`` is uncached input, cache reads and writes
are separate fields.

>>> from schemas.pricing import PriceCatalog
>>> from schemas.allocation import AllocationRules
>>> e = NativeEvent.model_validate({"timestamp": "2026-01-05T10:00:00Z", "model": "gpt-4o-mini",
...     "input_tokens": 1000, "output_tokens": 100, "tags": {"team": "search"}})
>>> r = to_cost_record(e, PriceCatalog.load(), AllocationRules())
>>> r.team, r.provider, round(r.cost_usd, 8), r.priced
('search', 'openai', 0.00021, True)
"""

from __future__ import annotations

from typing import Any

from schemas.allocation import AllocationRules
from schemas.cost import CostRecord
from schemas.events import UNKNOWN, LlmUsageEvent
from schemas.pricing import PriceCatalog
from schemas.sources._common import LlmUsage, llm_record

FORMAT = "native"
NativeEvent = LlmUsageEvent


def tags_of(e: LlmUsageEvent) -> dict[str, Any]:
    """The tags the producer actually sent (defaults are left for allocation to fill)."""
    t = e.tags
    out: dict[str, Any] = dict(t.model_extra or {})
    for k in t.model_fields_set:
        out[k] = getattr(t, k)
    return out


def to_usage(e: LlmUsageEvent) -> LlmUsage:
    return LlmUsage(ts=e.timestamp, model=e.model, provider=None if e.provider == UNKNOWN else e.provider,
                    input_tokens=e.input_tokens, output_tokens=e.output_tokens,
                    cache_read_tokens=e.cache_read_tokens, cache_write_tokens=e.cache_write_tokens,
                    cost_usd=e.cost_usd, latency_ms=e.latency_ms, request_id=e.request_id, tags=tags_of(e))


def to_cost_record(e: LlmUsageEvent, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    return llm_record(to_usage(e), FORMAT, catalog, rules)


def parse(item: Any, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    return to_cost_record(LlmUsageEvent.model_validate(item), catalog, rules)

"""OpenTelemetry GenAI spans (semantic conventions ``gen_ai.*``).

Accepted shapes: a span with ``attributes`` as a plain object or as an OTLP/JSON key-value
list (``[{"key": ..., "value": {"intValue": "12"}}]``), optional ``resource.attributes``,
and ``startTimeUnixNano``/``endTimeUnixNano`` (or ``start_time``/``end_time``/``timestamp``);
or just the flat attributes plus a ``timestamp``. A whole OTLP export
(``{"resourceSpans": [...]}``) is split into spans by the ingest layer.

Per the conventions, ``gen_ai.usage.cache_read.input_tokens`` and
``gen_ai.usage.cache_creation.input_tokens`` are *included in* ``gen_ai.usage.input_tokens``,
so uncached input = input - cache read - cache creation (floored at 0). Provider is
``gen_ai.provider.name`` (or the deprecated ``gen_ai.system``); model is
``gen_ai.response.model`` (what actually ran) or ``gen_ai.request.model``. Span and
resource attributes that are not ``gen_ai.*`` are allocation tags (span wins).

>>> from schemas.pricing import PriceCatalog
>>> from schemas.allocation import AllocationRules
>>> s = OtelSpan.model_validate({"startTimeUnixNano": "1767607200000000000",
...     "endTimeUnixNano": "1767607200800000000", "attributes": [
...     {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
...     {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
...     {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1200"}},
...     {"key": "gen_ai.usage.cache_read.input_tokens", "value": {"intValue": "1000"}},
...     {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "50"}}],
...     "resource": {"attributes": [{"key": "team", "value": {"stringValue": "search"}}]}})
>>> r = to_cost_record(s, PriceCatalog.load(), AllocationRules.load())
>>> r.team, r.provider, r.input_tokens, r.cache_read_tokens, r.latency_ms, round(r.cost_usd, 8)
('search', 'openai', 200, 1000, 800.0, 0.000135)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.allocation import AllocationRules
from schemas.cost import CostRecord
from schemas.pricing import PriceCatalog
from schemas.sources._common import Count, EventTime, LlmUsage, latency_between, llm_record, merged_tags

FORMAT = "otel"
_SPAN_KEYS = frozenset({"format", "name", "traceId", "spanId", "trace_id", "span_id", "attributes", "resource",
                        "startTimeUnixNano", "endTimeUnixNano", "start_time", "end_time", "timestamp", "kind",
                        "status", "parentSpanId", "events", "links", "tags"})


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def any_value(v: Any) -> Any:
    """An OTLP/JSON ``AnyValue`` as a plain value (plain values pass through).

    >>> any_value({"intValue": "7"}), any_value({"arrayValue": {"values": [{"stringValue": "a"}]}})
    (7, ['a'])
    """
    if not isinstance(v, dict) or len(v) != 1:
        return v
    (kind, x), = v.items()
    if kind == "intValue":
        try:
            return int(x)
        except (TypeError, ValueError):
            return x
    if kind in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        return x
    if kind == "arrayValue" and isinstance(x, dict):
        return [any_value(i) for i in _list(x.get("values"))]
    if kind == "kvlistValue" and isinstance(x, dict):
        return attributes_dict(x.get("values"))
    return v


def attributes_dict(attrs: Any) -> Any:
    """OTLP/JSON attribute list → dict; a dict is returned as is; anything else unchanged."""
    if isinstance(attrs, list):
        out: dict[str, Any] = {}
        for kv in attrs:
            if isinstance(kv, dict) and isinstance(kv.get("key"), str):
                out[kv["key"]] = any_value(kv.get("value"))
            else:
                raise ValueError("attribute list entries must be {\"key\": str, \"value\": AnyValue}")
        return out
    return attrs


class GenAiAttributes(BaseModel):
    """The ``gen_ai.*`` attributes burnguard reads; all others are kept as tags."""

    model_config = ConfigDict(extra="allow", populate_by_name=False)

    provider_name: str | None = Field(None, alias="gen_ai.provider.name", max_length=64)
    system: str | None = Field(None, alias="gen_ai.system", max_length=64, description="deprecated")
    request_model: str | None = Field(None, alias="gen_ai.request.model", max_length=200)
    response_model: str | None = Field(None, alias="gen_ai.response.model", max_length=200)
    response_id: str | None = Field(None, alias="gen_ai.response.id", max_length=200)
    operation: str | None = Field(None, alias="gen_ai.operation.name")
    input_tokens: Count | None = Field(None, alias="gen_ai.usage.input_tokens")
    output_tokens: Count | None = Field(None, alias="gen_ai.usage.output_tokens")
    prompt_tokens: Count | None = Field(None, alias="gen_ai.usage.prompt_tokens", description="deprecated")
    completion_tokens: Count | None = Field(None, alias="gen_ai.usage.completion_tokens", description="deprecated")
    cache_read: Count | None = Field(None, alias="gen_ai.usage.cache_read.input_tokens")
    cache_creation: Count | None = Field(None, alias="gen_ai.usage.cache_creation.input_tokens")

    @model_validator(mode="after")
    def _has_model(self) -> "GenAiAttributes":
        if not (self.response_model or self.request_model):
            raise ValueError("gen_ai.request.model or gen_ai.response.model is required (is this a GenAI span?)")
        return self


class OtelSpan(BaseModel):
    """One GenAI span; ``attributes`` may also be an OTLP/JSON key-value list, or flat on the object."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["otel"] | None = None
    name: str | None = None
    traceId: str | None = None
    spanId: str | None = None
    attributes: GenAiAttributes
    resource: dict[str, Any] | None = None
    startTimeUnixNano: EventTime | None = None
    endTimeUnixNano: EventTime | None = None
    start_time: EventTime | None = None
    end_time: EventTime | None = None
    timestamp: EventTime | None = None
    tags: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat_form(cls, data: Any) -> Any:
        if isinstance(data, dict) and "attributes" not in data:
            attrs = {k: v for k, v in data.items() if k not in _SPAN_KEYS}
            data = {k: v for k, v in data.items() if k in _SPAN_KEYS}
            data["attributes"] = attrs
        return data

    @field_validator("attributes", mode="before")
    @classmethod
    def _otlp_list(cls, v: Any) -> Any:
        return attributes_dict(v)

    @field_validator("resource", mode="before")
    @classmethod
    def _resource(cls, v: Any) -> Any:
        if isinstance(v, dict) and "attributes" in v:
            return attributes_dict(v["attributes"])
        return attributes_dict(v)

    @model_validator(mode="after")
    def _has_time(self) -> "OtelSpan":
        if self.start is None:
            raise ValueError("timestamp: give startTimeUnixNano, start_time or timestamp")
        return self

    @property
    def start(self) -> datetime | None:
        return self.startTimeUnixNano or self.start_time or self.timestamp

    @property
    def end(self) -> datetime | None:
        return self.endTimeUnixNano or self.end_time


def to_usage(s: OtelSpan) -> LlmUsage:
    a = s.attributes
    total_in = a.input_tokens if a.input_tokens is not None else (a.prompt_tokens or 0)
    out = a.output_tokens if a.output_tokens is not None else (a.completion_tokens or 0)
    read, write = a.cache_read or 0, a.cache_creation or 0
    model = a.response_model or a.request_model or ""
    return LlmUsage(ts=s.start, model=model, provider=a.provider_name or a.system,  # type: ignore[arg-type]
                    input_tokens=max(total_in - read - write, 0), output_tokens=out,
                    cache_read_tokens=read, cache_write_tokens=write,
                    latency_ms=latency_between(s.start, s.end), request_id=a.response_id or s.spanId,
                    tags=merged_tags(s.resource, a.model_extra, s.tags))


def to_cost_record(s: OtelSpan, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    return llm_record(to_usage(s), FORMAT, catalog, rules)


def parse(item: Any, catalog: PriceCatalog, rules: AllocationRules) -> CostRecord:
    return to_cost_record(OtelSpan.model_validate(item), catalog, rules)


def split_otlp(doc: dict[str, Any]) -> tuple[list[Any], int]:
    """Spans with ``gen_ai.*`` attributes from an OTLP/JSON trace export, each with its
    resource attributes attached; also the number of other spans skipped (not usage).

    >>> spans, skipped = split_otlp({"resourceSpans": [{"resource": {"attributes": []},
    ...     "scopeSpans": [{"spans": [{"name": "GET /", "attributes": []},
    ...     {"attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "m"}}]}]}]}]})
    >>> len(spans), skipped, spans[0]["format"]
    (1, 1, 'otel')
    """
    spans: list[Any] = []
    skipped = 0
    for rs in _list(doc.get("resourceSpans")):
        if not isinstance(rs, dict):
            spans.append(rs)
            continue
        resource = rs.get("resource")
        for ss in _list(rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans")):
            for span in _list(ss.get("spans")) if isinstance(ss, dict) else [ss]:
                if not isinstance(span, dict):
                    spans.append(span)
                    continue
                attrs = span.get("attributes")
                keys = ([kv.get("key") for kv in attrs if isinstance(kv, dict)] if isinstance(attrs, list)
                        else list(attrs) if isinstance(attrs, dict) else [])
                if not any(isinstance(k, str) and k.startswith("gen_ai.") for k in keys):
                    skipped += 1
                    continue
                spans.append({**span, "format": "otel", "resource": resource})
    return spans, skipped

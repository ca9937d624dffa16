"""Input formats: one module per format, each with a pydantic model and ``to_cost_record``.

Which format an ``llm`` event is in (first rule that applies):

1. an explicit ``"format"`` field: ``native``, ``openai``, ``anthropic``, ``litellm`` or ``otel``;
2. ``response_cost`` or ``startTime`` present → ``litellm`` (StandardLoggingPayload);
3. a ``usage`` object → ``openai`` if it has ``prompt_tokens``, ``prompt_tokens_details`` or
   ``input_tokens_details``; ``anthropic`` if it has ``cache_creation_input_tokens`` or
   ``cache_read_input_tokens`` or the event is ``"type": "message"``; else ``openai`` if the
   event has ``created``, ``created_at`` or ``object``; else ``anthropic``. (A usage with only
   ``input_tokens``/``output_tokens`` means the same in both conventions: they differ only
   in how cache tokens are counted.)
4. ``attributes`` or any ``gen_ai.*`` key → ``otel``;
5. otherwise ``native`` (burnguard's own ``LlmUsageEvent``).

``gpu`` events are ``dcgm`` samples and ``billing`` events are ``focus`` rows.

>>> detect_format("llm", {"model": "m", "usage": {"prompt_tokens": 1}})
'openai'
>>> detect_format("llm", {"model": "m", "usage": {"input_tokens": 1, "cache_read_input_tokens": 0}})
'anthropic'
>>> detect_format("llm", {"model": "m", "created": 1, "usage": {"input_tokens": 1}})
'openai'
>>> detect_format("llm", {"gen_ai.request.model": "m"}), detect_format("llm", {"model": "m"})
('otel', 'native')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from schemas.allocation import AllocationRules
from schemas.cost import CostRecord
from schemas.pricing import PriceCatalog
from schemas.sources import anthropic, dcgm, focus, litellm, native, openai, otel
from schemas.sources._common import llm_allocation

Parser = Callable[[Any, PriceCatalog, AllocationRules], CostRecord]

#: format name → (source, input model, parser)
FORMATS: dict[str, tuple[str, type[BaseModel], Parser]] = {
    "native": ("llm", native.NativeEvent, native.parse),
    "openai": ("llm", openai.OpenAiEvent, openai.parse),
    "anthropic": ("llm", anthropic.AnthropicEvent, anthropic.parse),
    "litellm": ("llm", litellm.LiteLlmPayload, litellm.parse),
    "otel": ("llm", otel.OtelSpan, otel.parse),
    "dcgm": ("gpu", dcgm.DcgmSample, dcgm.parse),
    "focus": ("billing", focus.FocusRow, focus.parse),
}
FORMATS_BY_SOURCE: dict[str, tuple[str, ...]] = {
    src: tuple(name for name, (s, _, _) in FORMATS.items() if s == src) for src in ("llm", "gpu", "billing")
}
_OPENAI_USAGE_KEYS = ("prompt_tokens", "prompt_tokens_details", "input_tokens_details")
_ANTHROPIC_USAGE_KEYS = ("cache_creation_input_tokens", "cache_read_input_tokens")
_OPENAI_EVENT_KEYS = ("created", "created_at", "object")


def detect_format(source: str, item: dict[str, Any]) -> str:
    """The format name for one decoded event (see the module docstring for the rule)."""
    fmt = item.get("format")
    if fmt is not None:
        return fmt[:40] if isinstance(fmt, str) else repr(fmt)[:40]
    if source != "llm":
        return FORMATS_BY_SOURCE[source][0] if source in FORMATS_BY_SOURCE else "?"
    if "response_cost" in item or "startTime" in item:
        return "litellm"
    usage = item.get("usage")
    if isinstance(usage, dict):
        if any(k in usage for k in _OPENAI_USAGE_KEYS):
            return "openai"
        if any(k in usage for k in _ANTHROPIC_USAGE_KEYS) or item.get("type") == "message":
            return "anthropic"
        return "openai" if any(k in item for k in _OPENAI_EVENT_KEYS) else "anthropic"
    if "attributes" in item or any(isinstance(k, str) and k.startswith("gen_ai.") for k in item):
        return "otel"
    return "native"


def json_schemas() -> dict[str, dict[str, Any]]:
    """A JSON Schema per accepted input model, keyed by file name (``<source>.<format>.schema.json``).

    >>> sorted(json_schemas())[:2]
    ['billing.focus.schema.json', 'gpu.dcgm.schema.json']
    """
    out: dict[str, dict[str, Any]] = {}
    for fmt, (source, model, _) in FORMATS.items():
        schema = model.model_json_schema(by_alias=True)
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                  "$id": f"burnguard/{source}.{fmt}.schema.json", **schema,
                  "description": f"usage.{source}, format {fmt!r}. " + (schema.get("description") or "").strip()}
        out[f"{source}.{fmt}.schema.json"] = schema
    return out


__all__ = ["FORMATS", "FORMATS_BY_SOURCE", "Parser", "detect_format", "json_schemas", "llm_allocation"]

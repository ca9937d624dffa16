"""Bytes from a ``usage.*`` topic to cost records and rejections. Never raises on input.

>>> recs, rejects = parse_message("llm", b'[{"timestamp": "2026-11-20T09:00:00Z", '
...     b'"model": "m", "cost_usd": 0.5, "tags": {"team": "a"}}, {"model": 3}]')
>>> [(r.team, r.cost_usd, r.requests) for r in recs], [(j.index, j.reason[:22]) for j in rejects]
([('a', 0.5, 1)], [(1, 'timestamp: Field requi')])
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from schemas.cost import CostRecord, Source
from schemas.deadletter import Rejection
from schemas.events import LlmUsageEvent

#: Messages larger than this are rejected whole (a producer bug, not usage).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def split_envelope(doc: Any) -> list[Any] | None:
    """One event, a JSON array of events, or ``{"events": [...]}``; ``None`` if neither."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        events = doc.get("events")
        return events if isinstance(events, list) else [doc]
    return None


def _reason(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in err.errors()[:5]
    )


def llm_to_cost(event: LlmUsageEvent) -> CostRecord:
    cost = event.cost_usd
    return CostRecord(
        ts=event.timestamp, source="llm", team=event.tags.team, feature=event.tags.feature,
        customer=event.tags.customer, model=event.model, environment=event.tags.environment,
        provider=event.provider, cost_usd=cost or 0.0, priced=cost is not None, requests=1,
        input_tokens=event.input_tokens, output_tokens=event.output_tokens,
        cache_read_tokens=event.cache_read_tokens, cache_write_tokens=event.cache_write_tokens,
        request_id=event.request_id,
    )


def parse_event(source: Source, item: Any) -> CostRecord:
    """One decoded JSON event to a cost record; raises ``ValueError`` with the reason."""
    if source != "llm":
        raise ValueError(f"unknown source {source!r}")
    try:
        return llm_to_cost(LlmUsageEvent.model_validate(item))
    except ValidationError as err:
        raise ValueError(_reason(err)) from None


def parse_message(source: Source, value: bytes | None) -> tuple[list[CostRecord], list[Rejection]]:
    """Decode one Kafka message; valid events become records, each bad one a rejection."""
    raw = value or b""
    if len(raw) > MAX_MESSAGE_BYTES:
        return [], [Rejection(reason=f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}", raw=raw)]
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        return [], [Rejection(reason=f"invalid JSON: {err}", raw=raw)]
    items = split_envelope(doc)
    if items is None:
        return [], [Rejection(reason="expected a JSON object, an array, or {\"events\": [...]}", raw=raw)]
    records: list[CostRecord] = []
    rejects: list[Rejection] = []
    for i, item in enumerate(items):
        try:
            records.append(parse_event(source, item))
        except (ValueError, TypeError) as err:
            rejects.append(Rejection(reason=str(err), index=i if len(items) > 1 or isinstance(doc, list) else None,
                                     raw=orjson.dumps(item)))
    return records, rejects

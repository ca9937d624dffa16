"""Bytes from a ``usage.*`` topic to cost records and rejections. Never raises on input.

Build one :class:`Normalizer` per worker (it holds the price catalog and the allocation
rules) and call :meth:`Normalizer.parse` per Kafka message. ``parse_message`` does the
same with the shipped catalog and rules.

>>> recs, rejects = parse_message("llm", b'[{"timestamp": "2026-11-20T09:00:00Z", '
...     b'"model": "m", "cost_usd": 0.5, "tags": {"team": "a"}}, {"model": 3}]')
>>> [(r.team, r.cost_usd, r.requests) for r in recs], [(j.index, j.reason[:30]) for j in rejects]
([('a', 0.5, 1)], [(1, 'native: timestamp: Field requi')])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.allocation import AllocationRules
from schemas.cost import CostRecord, Source
from schemas.deadletter import Rejection, strip_content
from schemas.events import MAX_FUTURE_SKEW, LlmUsageEvent
from schemas.pricing import PriceCatalog
from schemas.sources import FORMATS, FORMATS_BY_SOURCE, detect_format
from schemas.sources.otel import split_otlp

__all__ = ["MAX_MESSAGE_BYTES", "MAX_REJECTS_PER_MESSAGE", "Normalizer", "SOURCES", "llm_to_cost", "parse_event", "parse_message",
           "split_envelope"]

#: Messages larger than this are rejected whole (a producer bug, not usage).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: Rejected events of one message dead-lettered one by one; the rest become one summary dead letter.
MAX_REJECTS_PER_MESSAGE = 100
#: Distinct reasons named in a summary (the commonest; the others are counted together).
SUMMARY_REASONS = 20
SOURCES: tuple[str, ...] = ("llm", "gpu", "billing")


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


def _dumps(item: Any) -> bytes:
    try:
        return orjson.dumps(item)
    except (TypeError, orjson.JSONEncodeError):
        return repr(item).encode("utf-8", "replace")


class Normalizer:
    """Validate, price and allocate usage events. Build once; ``parse`` is the hot path.

    ``catalog`` and ``rules`` default to the shipped ``prices.yaml`` and ``allocation.yaml``.
    One message yields at most ``max_rejects_per_message`` individual rejections; further bad events
    of that message are summarised in one more rejection (counts by reason, the rejected events as
    one JSON array in ``raw``), so a hostile envelope cannot flood the dead-letter path.
    ``stats`` counts ``records``, ``rejected``, ``unpriced``, ``format.<name>`` (records per
    format), ``otel_spans_skipped`` and ``internal_errors``.

    >>> n = Normalizer()
    >>> recs, rej = n.parse("llm", b'{"events": [{"model": "gpt-4o", "created": 1767607200,'
    ...     b' "usage": {"prompt_tokens": 1000, "completion_tokens": 100}, "tags": {"team": "x"}}, 7]}')
    >>> [(r.format, r.team, round(r.cost_usd, 4)) for r in recs], [(j.index, j.reason) for j in rej]
    ([('openai', 'x', 0.0035)], [(1, 'event must be a JSON object, got int')])
    >>> n.stats["records"], n.stats["rejected"]
    (1, 1)
    """

    def __init__(self, catalog: PriceCatalog | None = None, rules: AllocationRules | None = None, *,
                 max_message_bytes: int = MAX_MESSAGE_BYTES,
                 max_future_skew: timedelta = MAX_FUTURE_SKEW,
                 max_rejects_per_message: int = MAX_REJECTS_PER_MESSAGE) -> None:
        if max_rejects_per_message < 1:
            raise ValueError("max_rejects_per_message must be >= 1")
        self.catalog = catalog if catalog is not None else PriceCatalog.load()
        self.rules = rules if rules is not None else AllocationRules.load()
        self.max_message_bytes = max_message_bytes
        self.max_future_skew = max_future_skew
        self.max_rejects_per_message = max_rejects_per_message
        self.stats: Counter[str] = Counter()

    # -- one event -----------------------------------------------------------------------
    def parse_event(self, source: str, item: Any, *, default_format: str | None = None,
                    now: datetime | None = None) -> CostRecord:
        """One decoded JSON event to a cost record; raises ``ValueError`` with the reason."""
        if source not in FORMATS_BY_SOURCE:
            raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
        if not isinstance(item, dict):
            raise ValueError(f"event must be a JSON object, got {type(item).__name__}")
        fmt = detect_format(source, item) if default_format is None or "format" in item else default_format
        spec = FORMATS.get(fmt)
        if spec is None or spec[0] != source:
            where = "unknown format" if spec is None else f"format not accepted on usage.{source}:"
            raise ValueError(f"{where} {fmt!r}; expected one of {', '.join(FORMATS_BY_SOURCE[source])}")
        try:
            record = spec[2](item, self.catalog, self.rules)
        except ValidationError as err:
            raise ValueError(f"{fmt}: {_reason(err)}") from None
        now = now or datetime.now(timezone.utc)
        if record.ts - now > self.max_future_skew:
            raise ValueError(f"{fmt}: timestamp {record.ts.isoformat()} is more than "
                             f"{self.max_future_skew} in the future")
        return record

    # -- many events ---------------------------------------------------------------------
    def parse_items(self, source: str, items: Iterable[Any], *, default_format: str | None = None,
                    envelope: bool = True, raw: bytes = b"") -> tuple[list[CostRecord], list[Rejection]]:
        """Decoded events (an envelope's list, or CSV rows) to records and rejections.

        Each bad event rejects only itself, with its ``index`` when ``envelope`` is true.
        """
        now = datetime.now(timezone.utc)
        records: list[CostRecord] = []
        rejects: list[Rejection] = []
        stats = self.stats
        cap = self.max_rejects_per_message
        rest: list[Any] = []  # rejected beyond the cap: summarised, not dead-lettered one by one
        rest_reasons: Counter[str] = Counter()
        for i, item in enumerate(items):
            try:
                rec = self.parse_event(source, item, default_format=default_format, now=now)
            except Exception as err:  # a bug must not stop the stream either: dead-letter and count it
                if isinstance(err, ValueError):
                    reason = str(err)
                else:
                    stats["internal_errors"] += 1
                    reason = f"internal error ({type(err).__name__}): {err}"[:500]
                kept = strip_content(item)  # a dead letter never keeps prompt or response text
                if len(rejects) < cap:
                    rejects.append(Rejection(reason=reason, index=i if envelope else None,
                                             raw=_dumps(kept) if envelope or not raw or kept is not item else raw))
                else:
                    rest.append(kept)
                    rest_reasons[reason[:200]] += 1
                continue
            records.append(rec)
            stats["format." + (rec.format or "unknown")] += 1
            if not rec.priced:
                stats["unpriced"] += 1
        if rest:
            rejects.append(_summary(rest, rest_reasons, cap))
            stats["rejects_summarised"] += len(rest)
        stats["records"] += len(records)
        stats["rejected"] += len(rejects) - bool(rest) + len(rest)
        return records, rejects

    def parse(self, source: str, value: bytes | None) -> tuple[list[CostRecord], list[Rejection]]:
        """Decode one Kafka message (one event or an envelope) from ``usage.<source>``."""
        raw: Any = value or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogatepass")
        elif isinstance(raw, (bytearray, memoryview)):
            raw = bytes(raw)
        elif not isinstance(raw, bytes):
            return self._whole(f"message value must be bytes, got {type(raw).__name__}", b"")
        if source not in FORMATS_BY_SOURCE:
            return self._whole(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}", raw)
        if len(raw) > self.max_message_bytes:
            return self._whole(f"message of {len(raw)} bytes exceeds {self.max_message_bytes}", raw)
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            return self._whole(f"invalid JSON: {err}", raw)
        default_format: str | None = None
        if isinstance(doc, dict) and source == "llm" and "resourceSpans" in doc:
            items, skipped = split_otlp(doc)
            self.stats["otel_spans_skipped"] += skipped
            return self.parse_items(source, items, default_format="otel", raw=raw)
        items = split_envelope(doc)
        if items is None:
            return self._whole('expected a JSON object, an array, or {"events": [...]}', raw)
        envelope = isinstance(doc, list) or isinstance(doc.get("events"), list)
        if envelope and isinstance(doc, dict) and isinstance(doc.get("format"), str):
            default_format = doc["format"]  # {"format": "openai", "events": [...]}
        return self.parse_items(source, items, default_format=default_format, envelope=envelope, raw=raw)

    def _whole(self, reason: str, raw: bytes) -> tuple[list[CostRecord], list[Rejection]]:
        self.stats["rejected"] += 1
        return [], [Rejection(reason=reason, raw=raw)]


def _summary(rest: list[Any], reasons: Counter[str], cap: int) -> Rejection:
    """One rejection for the bad events past the cap: how many, why (commonest reasons first), and the
    events themselves as one JSON array (replayable as an envelope once fixed)."""
    named = reasons.most_common(SUMMARY_REASONS)
    others = sum(reasons.values()) - sum(c for _, c in named)
    by_reason = "; ".join(f"{r}: {c}" for r, c in named) + (f"; other reasons: {others}" if others else "")
    return Rejection(reason=f"{len(rest)} more rejected events in this message (after the first {cap}, "
                            f"summarised here, not dead-lettered one by one); by reason: {by_reason}",
                     raw=_dumps(rest))


@lru_cache(maxsize=1)
def _default_normalizer() -> Normalizer:
    return Normalizer()


def llm_to_cost(event: LlmUsageEvent) -> CostRecord:
    """A native event as a record with the event's own cost only (no catalog, no rules)."""
    cost = event.cost_usd
    return CostRecord(
        ts=event.timestamp, source="llm", team=event.tags.team, feature=event.tags.feature,
        customer=event.tags.customer, model=event.model, environment=event.tags.environment,
        provider=event.provider, cost_usd=cost or 0.0, priced=cost is not None, requests=1,
        input_tokens=event.input_tokens, output_tokens=event.output_tokens,
        cache_read_tokens=event.cache_read_tokens, cache_write_tokens=event.cache_write_tokens,
        request_id=event.request_id, latency_ms=event.latency_ms, format="native",
    )


def parse_event(source: Source, item: Any) -> CostRecord:
    """One decoded JSON event to a cost record; raises ``ValueError`` with the reason."""
    return _default_normalizer().parse_event(source, item)


def parse_message(source: Source, value: bytes | None) -> tuple[list[CostRecord], list[Rejection]]:
    """Decode one Kafka message; valid events become records, each bad one a rejection.

    Uses the shipped price catalog and allocation rules; prefer a :class:`Normalizer`
    built once with the configured ones.
    """
    return _default_normalizer().parse(source, value)

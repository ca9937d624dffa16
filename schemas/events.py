"""Raw usage events as producers publish them, and the envelope that batches them.

A Kafka message on a ``usage.*`` topic carries one event (a JSON object) or an
envelope of many: a JSON array, or ``{"events": [...]}``.

>>> e = LlmUsageEvent.model_validate({"timestamp": "2026-11-20T09:00:00Z",
...     "model": "gpt-4o", "input_tokens": 1000, "output_tokens": 200,
...     "tags": {"team": "search"}})
>>> e.tags.team, e.tags.feature, e.total_tokens
('search', 'unknown', 1200)
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

UNALLOCATED = "unallocated"
UNKNOWN = "unknown"

#: Events stamped further ahead than this are rejected (clock skew or garbage).
MAX_FUTURE_SKEW = timedelta(minutes=15)


def as_utc(ts: datetime) -> datetime:
    """The same instant in UTC; a naive time is taken as UTC (burnguard's only zone; SQLite drops it).

    >>> as_utc(datetime(2026, 11, 20, 9)).isoformat(), as_utc_or_none(None)
    ('2026-11-20T09:00:00+00:00', None)
    """
    if ts.tzinfo is None:
        return ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc)


def as_utc_or_none(ts: datetime | None) -> datetime | None:
    return None if ts is None else as_utc(ts)


def _finite_non_negative(v: float | None) -> float | None:
    if v is not None and (math.isnan(v) or math.isinf(v) or v < 0):
        raise ValueError("must be a finite, non-negative number")
    return v


def _finite(v: float | None) -> float | None:
    if v is not None and (math.isnan(v) or math.isinf(v)):
        raise ValueError("must be a finite number")
    return v


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
Money = Annotated[float, AfterValidator(_finite_non_negative)]
#: An amount that may be negative: billing credits and refunds (FOCUS rows), netted into spend.
SignedMoney = Annotated[float, AfterValidator(_finite)]


class Tags(BaseModel):
    """Allocation tags: who and what the spend belongs to."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    team: str = Field(UNALLOCATED, max_length=128)
    feature: str = Field(UNKNOWN, max_length=128)
    customer: str = Field(UNKNOWN, max_length=128)
    environment: str = Field("production", max_length=64)


class LlmUsageEvent(BaseModel):
    """One LLM call as seen by a gateway."""

    model_config = ConfigDict(extra="ignore")

    format: Literal["native"] | None = Field(None, description="optional; names this format on usage.llm")
    timestamp: UtcDatetime
    model: str = Field(min_length=1, max_length=200)
    provider: str = Field(UNKNOWN, max_length=64)
    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    cache_read_tokens: int = Field(0, ge=0)
    cache_write_tokens: int = Field(0, ge=0)
    cost_usd: Money | None = None
    latency_ms: Money | None = None
    request_id: str | None = Field(None, max_length=200)
    tags: Tags = Field(default_factory=Tags)

    @field_validator("timestamp")
    @classmethod
    def _not_far_future(cls, ts: datetime) -> datetime:
        if ts - datetime.now(timezone.utc) > MAX_FUTURE_SKEW:
            raise ValueError(f"timestamp is more than {MAX_FUTURE_SKEW} in the future")
        return ts

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

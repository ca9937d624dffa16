"""The normalised cost record: what every source becomes after validate, price, allocate.

Records are keyed on Kafka by their allocation key, so one partition owns a key's
buckets and detector state.

>>> from datetime import datetime, timezone
>>> r = CostRecord(ts=datetime(2026, 11, 23, 9, tzinfo=timezone.utc), source="llm",
...                team="search", model="gpt-4o", cost_usd=0.012, requests=1)
>>> r.allocation_key
'team=search|feature=unknown|customer=unknown|model=gpt-4o|environment=production'
>>> AllocationKey.parse(r.allocation_key).team
'search'
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import UNALLOCATED, UNKNOWN, Money, SignedMoney, UtcDatetime

Source = Literal["llm", "gpu", "billing"]
KEY_FIELDS: tuple[str, ...] = ("team", "feature", "customer", "model", "environment")


def escape_key_value(v: str) -> str:
    """``*`` is escaped too: unescaped, it marks a roll-up key, so a tag value must never produce it."""
    return v.replace("%", "%25").replace("|", "%7C").replace("=", "%3D").replace("*", "%2A")


def _unescape(v: str) -> str:
    return v.replace("%2A", "*").replace("%3D", "=").replace("%7C", "|").replace("%25", "%")


@lru_cache(maxsize=65536)
def _key_string(*values: str) -> str:
    """``str(AllocationKey(...))`` without building the model: this is on the per-event path."""
    return "|".join(f"{f}={escape_key_value(v)}" for f, v in zip(KEY_FIELDS, values))


def key_string(values: tuple[str, ...]) -> str:
    """The allocation key of key field values in ``KEY_FIELDS`` order (cached).

    >>> key_string(("a", "f", "c", "m|x", "production"))
    'team=a|feature=f|customer=c|model=m%7Cx|environment=production'
    """
    return _key_string(*values)


class AllocationKey(BaseModel):
    """Who and what a cost belongs to; its string form is the Kafka key."""

    model_config = ConfigDict(frozen=True)

    team: str = UNALLOCATED
    feature: str = UNKNOWN
    customer: str = UNKNOWN
    model: str = UNKNOWN
    environment: str = "production"

    def __str__(self) -> str:
        return _key_string(*(getattr(self, f) for f in KEY_FIELDS))

    @classmethod
    def parse(cls, key: str) -> "AllocationKey":
        parts = dict(p.split("=", 1) for p in key.split("|"))
        return cls(**{k: _unescape(v) for k, v in parts.items() if k in KEY_FIELDS})


class CostRecord(BaseModel):
    """One priced, allocated unit of usage (an LLM call, a GPU sample, a billing row)."""

    model_config = ConfigDict(extra="forbid")

    ts: UtcDatetime
    source: Source
    team: str = UNALLOCATED
    feature: str = UNKNOWN
    customer: str = UNKNOWN
    model: str = UNKNOWN
    environment: str = "production"
    provider: str = UNKNOWN
    cost_usd: SignedMoney = Field(0.0, description="USD; negative only for billing credits and refunds (netted)")
    priced: bool = True
    requests: int = Field(0, ge=0)
    failed_requests: int = Field(0, ge=0, description="of requests, calls that failed (LiteLLM status failure)")
    cache_hit_requests: int = Field(0, ge=0, description="of requests, answers served from a response cache")
    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    cache_read_tokens: int = Field(0, ge=0)
    cache_write_tokens: int = Field(0, ge=0)
    gpu_seconds: Money = 0.0
    idle_gpu_seconds: Money = 0.0
    idle_cost_usd: Money = 0.0
    request_id: str | None = None
    # Added by the ingest layer (issue 3); all optional with defaults, so older producers
    # and consumers of CostRecord keep working.
    tier: str = UNKNOWN
    latency_ms: Money | None = None
    format: str | None = Field(None, description="input format the record came from (openai, dcgm, focus, ...)")
    gpu_util: float | None = Field(None, description="engine activity 0..1 over the sample")
    gpu_mem_used_mb: float | None = None
    gpu_power_w: float | None = None
    gpu_uuid: str | None = None
    gpu_sku: str | None = None
    pricing_model: str | None = Field(None, description="on_demand, spot or reserved (GPU samples)")
    host: str | None = None
    namespace: str | None = None
    pod: str | None = None
    served_model: str | None = Field(None, description="model a GPU sample's pod serves (DCGM label served_model, ...)")
    period_end: UtcDatetime | None = Field(None, description="end of a billing row's charge period")
    service: str | None = None
    resource_id: str | None = None

    @property
    def key(self) -> AllocationKey:
        return AllocationKey(team=self.team, feature=self.feature, customer=self.customer,
                             model=self.model, environment=self.environment)

    @property
    def allocation_key(self) -> str:
        return _key_string(self.team, self.feature, self.customer, self.model, self.environment)

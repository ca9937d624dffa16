"""A closed event-time bucket of one allocation key: the unit detection runs on.

>>> from datetime import datetime, timezone
>>> b = Bucket(key="team=a", start=datetime(2026, 11, 20, 9, tzinfo=timezone.utc),
...            seconds=60, spend_usd=1.5, requests=10)
>>> b.metric("cost_per_inference"), b.metric("spend"), b.end.minute
(0.15, 1.5, 1)
>>> load_buckets(dump_buckets([b, b])) == [b, b]
True
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, TypeAdapter

from schemas.events import UtcDatetime

#: Metrics a bucket can be scored on; ``None`` from :meth:`Bucket.metric` means "not defined here".
METRICS: tuple[str, ...] = ("spend", "cost_per_inference", "tokens_per_request", "cost_per_1k_tokens",
                            "idle_gpu_cost", "unpriced_share", "unallocated_share", "failure_rate")


class Bucket(BaseModel):
    key: str
    start: UtcDatetime
    seconds: int
    spend_usd: float = 0.0
    requests: int = 0
    unpriced_requests: int = 0
    failed_requests: int = 0  # of requests: calls that failed (a retry storm shows in failure_rate)
    cache_hit_requests: int = 0  # of requests: answered from a response cache, at no provider cost
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    gpu_seconds: float = 0.0
    idle_gpu_seconds: float = 0.0
    idle_cost_usd: float = 0.0
    records: int = 0
    late: bool = False  # a correction: records that arrived after this bucket had closed
    children: dict[str, float] = {}  # roll-up keys only: spend per child in this bucket

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)

    @property
    def inferences(self) -> int:
        """Requests a provider answered: failures and cache hits are not inferences (they cost ~0)."""
        return max(self.requests - self.failed_requests - self.cache_hit_requests, 0)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    def metric(self, name: str, min_requests: int = 1) -> float | None:
        """The value of metric ``name`` for this bucket, or ``None`` where it is undefined."""
        if name == "spend":
            return self.spend_usd
        if name == "idle_gpu_cost":
            return self.idle_cost_usd if self.gpu_seconds else None
        if name == "unallocated_share":  # roll-ups above team level: the share no team owns
            if not self.children or self.spend_usd <= 0 or not any(k.startswith("team=") for k in self.children):
                return None
            return sum(v for k, v in self.children.items() if k.startswith("team=unallocated")) / self.spend_usd
        if self.requests < min_requests:
            return None
        if name in ("cost_per_inference", "tokens_per_request"):
            n = self.inferences
            if n < min_requests:
                return None
            return (self.spend_usd if name == "cost_per_inference" else self.tokens) / n
        if name == "failure_rate":
            return self.failed_requests / self.requests
        if name == "unpriced_share":
            return self.unpriced_requests / self.requests
        if name == "cost_per_1k_tokens":
            return 1000 * self.spend_usd / self.tokens if self.tokens else None
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")


_BUCKET_LIST = TypeAdapter(list[Bucket])


def dump_buckets(buckets: list[Bucket]) -> bytes:
    """A ``buckets`` topic message: the JSON array of buckets one key closed at once."""
    return _BUCKET_LIST.dump_json(buckets)


def load_buckets(value: bytes) -> list[Bucket]:
    return _BUCKET_LIST.validate_json(value)

"""A closed event-time bucket of one allocation key: the unit detection runs on.

>>> from datetime import datetime, timezone
>>> b = Bucket(key="team=a", start=datetime(2026, 11, 20, 9, tzinfo=timezone.utc),
...            seconds=60, spend_usd=1.5, requests=10)
>>> b.metric("cost_per_inference"), b.metric("spend"), b.end.minute
(0.15, 1.5, 1)
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

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
    credit_usd: float = 0.0  # credits and refunds (negative, FOCUS): net spend is spend_usd + credit_usd; not scored
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


class BucketBatch(BaseModel):
    """A ``buckets`` topic message: the buckets one key closed at once, numbered per key.

    ``(key, seq)`` is the message's origin: the aggregate agent numbers its emissions per key and
    re-emits the very same batch under the same number after a crash, so a consumer that keeps
    the newest ``seq`` it applied per key applies each batch exactly once.

    >>> from datetime import datetime, timezone
    >>> b = Bucket(key="team=a", start=datetime(2026, 11, 20, 9, tzinfo=timezone.utc), seconds=60, spend_usd=1.5)
    >>> batch = load_batch(dump_batch("team=a", 7, [b]))
    >>> batch.seq, batch.buckets == [b]
    (7, True)
    """

    key: str
    seq: int
    buckets: list[Bucket]
    forget: bool = False  # the key expired (no records for key_ttl_seconds): its detector state can go too


#: The ``seq`` of a :class:`PartialBatch`: the aggregate agent numbers closed batches from 1, so none is ever 0.
PARTIAL_SEQ = 0


class _Message(BucketBatch):
    """Either kind of ``buckets`` message, read in one pass (:func:`load_message`)."""

    partial: Bucket | None = None


class PartialBatch(BaseModel):
    """A ``buckets`` topic message with one key's *open* bucket so far (early firing: what detect may score
    before the bucket closes), on the same partition as that key's closed batches, so in order with them.

    To a reader of closed batches (:func:`load_batch`) it is an empty batch under ``seq`` 0, a number no closed
    batch has and the same for every partial of a key: it adds no bucket and no spend, and deduplicating
    batches by ``(key, seq)`` keeps it apart from them. :func:`load_message` tells the two apart by
    the ``partial`` field.

    >>> from datetime import datetime, timezone
    >>> b = Bucket(key="team=a", start=datetime(2026, 11, 20, 9, tzinfo=timezone.utc), seconds=60, spend_usd=9.0)
    >>> value = dump_partial("team=a", b)
    >>> load_batch(value).seq, load_batch(value).buckets
    (0, [])
    >>> msg = load_message(value)
    >>> type(msg).__name__, msg.partial.spend_usd, isinstance(load_message(dump_batch("team=a", 3, [b])), BucketBatch)
    ('PartialBatch', 9.0, True)
    """

    key: str
    seq: int = Field(PARTIAL_SEQ, ge=PARTIAL_SEQ, le=PARTIAL_SEQ)
    buckets: list[Bucket] = Field(default_factory=list, max_length=0)
    partial: Bucket  # the open bucket's sums so far (its spend only grows until it closes)


def dump_batch(key: str, seq: int, buckets: list[Bucket], forget: bool = False) -> bytes:
    return BucketBatch(key=key, seq=seq, buckets=buckets, forget=forget).model_dump_json().encode()


def dump_partial(key: str, bucket: Bucket) -> bytes:
    return PartialBatch(key=key, partial=bucket).model_dump_json().encode()


def load_batch(value: bytes) -> BucketBatch:
    return BucketBatch.model_validate_json(value)


def load_message(value: bytes) -> BucketBatch | PartialBatch:
    """A ``buckets`` message: a closed batch, or (with a ``partial`` bucket) a partial; ``ValueError`` for neither."""
    msg = _Message.model_validate_json(value)
    if msg.partial is None:
        return msg
    return PartialBatch(key=msg.key, seq=msg.seq, buckets=msg.buckets, partial=msg.partial)

"""Dead letters: input that could not become a cost record, kept with the reason.

Nothing is silently dropped: every rejected message (or one rejected event inside an
envelope) is published to ``usage.deadletter`` as one of these, with the original bytes.

>>> dl = DeadLetter.from_bytes(b'{"model": 1', reason="invalid JSON", topic="usage.llm",
...                            partition=0, offset=7)
>>> dl.original_bytes()
b'{"model": 1'
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from pydantic import BaseModel, Field

from schemas.events import UtcDatetime


class Rejection(BaseModel):
    """Why one message, or one event in an envelope (``index``), was rejected."""

    reason: str
    index: int | None = None
    raw: bytes = b""


class DeadLetter(BaseModel):
    reason: str
    topic: str
    partition: int | None = None
    offset: int | None = None
    index: int | None = Field(None, description="position of the event inside its envelope")
    original_b64: str
    received_at: UtcDatetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @classmethod
    def from_bytes(cls, raw: bytes, *, reason: str, topic: str, partition: int | None = None,
                   offset: int | None = None, index: int | None = None) -> "DeadLetter":
        return cls(reason=reason, topic=topic, partition=partition, offset=offset, index=index,
                   original_b64=base64.b64encode(raw).decode("ascii"))

    def original_bytes(self) -> bytes:
        return base64.b64decode(self.original_b64)

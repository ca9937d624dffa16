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
    key_b64: str | None = Field(None, description="the original message key, for a replay keyed as the original")
    received_at: UtcDatetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    @classmethod
    def from_bytes(cls, raw: bytes, *, reason: str, topic: str, partition: int | None = None,
                   offset: int | None = None, index: int | None = None, key: bytes | None = None) -> "DeadLetter":
        return cls(reason=reason, topic=topic, partition=partition, offset=offset, index=index,
                   original_b64=base64.b64encode(raw).decode("ascii"),
                   key_b64=None if key is None else base64.b64encode(key).decode("ascii"))

    def original_key(self) -> bytes | None:
        return None if self.key_b64 is None else base64.b64decode(self.key_b64)

    @property
    def fingerprint(self) -> str:
        """Where it came from (topic, partition, offset, index) and why, so a redelivered one is
        stored once while two agents rejecting one message both show; without an offset, its
        content and arrival time."""
        import hashlib

        origin = (f"{self.topic}|{self.partition}|{self.offset}|{self.index}|{self.reason}" if self.offset is not None
                  else f"{self.topic}|{self.reason}|{self.original_b64}|{self.received_at.isoformat()}")
        return hashlib.sha256(origin.encode()).hexdigest()[:40]

    def original_bytes(self) -> bytes:
        return base64.b64decode(self.original_b64)

"""Dead letters: input that could not become a cost record, kept with the reason.

Nothing is silently dropped: every rejected message (or one rejected event inside an
envelope) is published to ``usage.deadletter`` as one of these, with the original bytes, except
prompt and response text (:func:`strip_content`), which a dead letter never keeps.

>>> dl = DeadLetter.from_bytes(b'{"model": 1', reason="invalid JSON", topic="usage.llm",
...                            partition=0, offset=7)
>>> dl.original_bytes()
b'{"model": 1'
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field

from schemas.events import UtcDatetime


#: Top-level event fields that carry prompt or response text (LiteLLM ``messages``/``response``, OpenAI
#: ``choices``/``output``/``input``/``instructions``, Anthropic ``content``/``system``). No parser reads them.
CONTENT_FIELDS = frozenset({"messages", "response", "prompt", "prompts", "completion", "completions", "choices",
                            "content", "output", "input", "instructions", "system", "system_prompt", "text"})
#: OpenTelemetry attribute keys (and key prefixes) that carry prompt or response text.
CONTENT_ATTRIBUTE_PREFIXES = ("gen_ai.prompt", "gen_ai.completion", "gen_ai.input.messages",
                              "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.tool.call.arguments",
                              "gen_ai.tool.call.result", "llm.prompts", "llm.completions", "llm.input_messages",
                              "llm.output_messages", "input.value", "output.value")


def _content_attribute(key: object) -> bool:
    return isinstance(key, str) and key.startswith(CONTENT_ATTRIBUTE_PREFIXES)


def strip_content(item: Any) -> Any:
    """``item`` without prompt/response text, for a dead letter: what is stored and replayed is usage, not
    conversations. Returns ``item`` itself when there is nothing to strip (so callers can keep original bytes).

    >>> strip_content({"model": "m", "messages": [{"role": "user", "content": "secret"}], "usage": {"x": 1}})
    {'model': 'm', 'usage': {'x': 1}}
    >>> strip_content({"attributes": [{"key": "gen_ai.prompt.0.content", "value": "hi"},
    ...                               {"key": "gen_ai.usage.input_tokens", "value": 3}]})
    {'attributes': [{'key': 'gen_ai.usage.input_tokens', 'value': 3}]}
    >>> x = {"model": "m"}; strip_content(x) is x
    True
    """
    if not isinstance(item, dict):
        return item
    out: dict[str, Any] | None = None
    for k in item:
        if k in CONTENT_FIELDS or _content_attribute(k) or (k == "events" and isinstance(item.get("attributes"),
                                                                                         (dict, list))):
            out = out if out is not None else dict(item)
            del out[k]  # span events (gen_ai.*.message) carry message bodies
    attrs = item.get("attributes")
    if isinstance(attrs, dict) and any(_content_attribute(k) for k in attrs):
        out = out if out is not None else dict(item)
        out["attributes"] = {k: v for k, v in attrs.items() if not _content_attribute(k)}
    elif isinstance(attrs, list) and any(isinstance(a, dict) and _content_attribute(a.get("key")) for a in attrs):
        out = out if out is not None else dict(item)
        out["attributes"] = [a for a in attrs if not (isinstance(a, dict) and _content_attribute(a.get("key")))]
    return item if out is None else out


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

"""Effects applied once under at-least-once delivery: remember the newest source offset applied.

Records derived from one source partition reach a key in offset order, so a key's state
only needs, per source, the newest offset it has applied; anything at or below it is a
redelivery (the message itself, or the upstream agent running again after a crash).

>>> sources: dict[str, int] = {}
>>> already_applied(sources, "usage.llm/0", 7), already_applied(sources, "usage.llm/0", 7)
(False, True)
>>> already_applied(sources, "usage.llm/0", 8), sources
(False, {'usage.llm/0': 8})
"""

from __future__ import annotations

import orjson


def already_applied(sources: dict[str, int], source: str, offset: int) -> bool:
    """True if ``offset`` of ``source`` was applied already; else record it and return False."""
    if sources.get(source, -1) >= offset:
        return True
    sources[source] = offset
    return False


#: Internal topics whose messages carry an origin ``"o": [source, offset]`` that consumers apply once.
ORIGIN_TOPICS = frozenset({"costs", "budget.spend", "gpu.samples", "model.activity"})


def replay_origin(topic: str, value: bytes, fingerprint: str) -> bytes | None:
    """The value to re-publish when a dead-lettered internal message is replayed, or ``None`` if it cannot be.

    Its own origin would be skipped (later offsets of its source were applied since), so a replay
    gets an origin of its own, ``replay:<dead letter fingerprint>``: applied once, however often it is
    replayed. Usage topics carry no origin (their offsets are new on re-publication): unchanged. A
    ``buckets`` batch cannot be replayed (monitors never learn a past bucket again), nor anything else
    internal.

    >>> import orjson
    >>> orjson.loads(replay_origin("costs", b'{"o": ["usage.llm/0", 7], "records": []}', "ab12"))
    {'o': ['replay:ab12', 0], 'records': []}
    >>> replay_origin("usage.llm", b'[1]', "ab12"), replay_origin("buckets", b'{}', "ab12")
    (b'[1]', None)
    """
    if topic.startswith("usage."):
        return value
    if topic not in ORIGIN_TOPICS:
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or "o" not in doc:
        return None
    doc["o"] = [f"replay:{fingerprint}", 0]
    return orjson.dumps(doc)

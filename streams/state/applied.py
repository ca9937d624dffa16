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


def already_applied(sources: dict[str, int], source: str, offset: int) -> bool:
    """True if ``offset`` of ``source`` was applied already; else record it and return False."""
    if sources.get(source, -1) >= offset:
        return True
    sources[source] = offset
    return False

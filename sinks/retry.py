"""Database writes that wait out an outage: retry with backoff while the database is down or busy.

A transient error (unreachable, locked, connection dropped) pauses the caller and retries;
anything else (schema, constraint) raises at once, so a wrong write fails loudly instead of
looping.

>>> from sqlalchemy.exc import OperationalError
>>> is_transient(OperationalError("INSERT", {}, Exception("database is locked")))
True
>>> is_transient(OperationalError("INSERT", {}, Exception("no such table: alerts")))
False
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError

log = logging.getLogger("burnguard")

_TRANSIENT = ("unable to open", "database is locked", "could not connect", "connection refused",
              "server closed the connection", "terminating connection", "connection is closed", "timeout")


def is_transient(err: Exception) -> bool:
    """A database that is down or busy (retry) rather than wrong (schema, constraint: fail loudly)."""
    if isinstance(err, InterfaceError) or getattr(err, "connection_invalidated", False):
        return True
    return isinstance(err, OperationalError) and any(t in str(err).lower() for t in _TRANSIENT)


async def until_stored(fn: Callable[[Any], Any], arg: Any) -> Any:
    """Run a store call in a thread; while the database is unreachable, wait and retry with
    backoff (up to 30 s) instead of dropping the write: the stream pauses, nothing is lost.
    Other database errors raise (the message is quarantined by the agent's guard)."""
    delay = 0.5
    while True:
        try:
            return await asyncio.to_thread(fn, arg)
        except (OperationalError, InterfaceError) as err:
            if not is_transient(err):
                raise
            log.error("database unavailable (%s); retrying in %.1fs", type(err).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

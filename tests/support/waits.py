"""The tests' one bounded wait: poll a condition until it holds, or fail saying what was awaited and what was
last seen.

No test sleeps to let something happen: it names what it waits for, how long that may take at most, and
(``alive``) what must stay true meanwhile (a worker process that dies fails the wait at once, with its log).

>>> until("three", iter([0, 0, 3]).__next__, timeout=5, every=0)
3
>>> until("a yes", lambda: False, timeout=0, detail=lambda: "the answer was no")
Traceback (most recent call last):
...
tests.support.waits.TimedOut: timed out after 0s waiting for a yes; last seen: the answer was no
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TypeVar

T = TypeVar("T")


class TimedOut(AssertionError):
    """A bounded wait ran out: its condition never held."""


def until(what: str, check: Callable[[], T | None], timeout: float, alive: Callable[[], None] | None = None,
          detail: Callable[[], object] | None = None, every: float = 0.2) -> T:
    """Call ``check`` every ``every`` s until it returns something truthy, and return that.

    Between calls ``alive()`` may raise (a dead worker). After ``timeout`` s raise :class:`TimedOut` with
    ``what`` and the last value seen: ``detail()`` when given (what the check was looking at), else the
    check's last answer.
    """
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if alive is not None:
            alive()
        if time.monotonic() >= deadline:
            seen = detail() if detail is not None else repr(got)
            raise TimedOut(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {seen}")
        time.sleep(every)  # a poll interval, not a wait for something to happen


def room_in_the_day(minutes: float = 3.0) -> datetime:
    """The current UTC minute, once at least ``minutes`` of the UTC day are left (for tests whose budgets and
    grants are for today): the only wall-clock wait, for a new day, at most ``minutes`` long."""
    now = datetime.now(timezone.utc)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight - now < timedelta(minutes=minutes):
        time.sleep((midnight - now).total_seconds() + 1)
        now = datetime.now(timezone.utc)
    return now.replace(second=0, microsecond=0)

"""What people do to an incident: acknowledge, snooze until a time, resolve by hand (pure).

Commands are typed values; :func:`apply` changes an :class:`IncidentState` and says whether
anything changed, so a replayed command (the same button pressed twice, a redelivered
callback) is a no-op. :func:`suppressed` tells the dispatcher whether to stay quiet.

>>> from datetime import datetime, timedelta, timezone
>>> from detectors.incidents.state import IncidentState
>>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
>>> inc = IncidentState(id="i1", group={"team": "a"}, opened_at=t, last_alert_at=t, status="firing")
>>> apply(inc, Acknowledge("i1", by="U1", at=t)), apply(inc, Acknowledge("i1", by="U2", at=t))
(True, False)
>>> inc.acked_by, repeats_stopped(inc)
('U1', True)
>>> apply(inc, Snooze("i1", until=t + timedelta(hours=1), by="U1", at=t))
True
>>> suppressed(inc, t + timedelta(minutes=59)), suppressed(inc, t + timedelta(minutes=61))
(True, False)
>>> apply(inc, Resolve("i1", by="U1", at=t)), inc.status, inc.resolved_by
(True, 'resolved', 'U1')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Union

from detectors.incidents.state import IncidentState


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """Someone owns it: recorded with who and when; reminders stop."""

    incident_id: str
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Snooze:
    """No notifications for this incident (and alerts joining it) until ``until``."""

    incident_id: str
    until: datetime
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Resolve:
    """Resolved by hand: the incident closes even though some alerts still fire."""

    incident_id: str
    by: str
    at: datetime


Command = Union[Acknowledge, Snooze, Resolve]


def apply(inc: IncidentState, cmd: Command) -> bool:
    """Apply ``cmd`` to ``inc``; True if it changed anything (and ``inc.rev`` was bumped)."""
    if cmd.incident_id != inc.id:
        raise ValueError(f"command for {cmd.incident_id} applied to {inc.id}")
    changed = False
    if isinstance(cmd, Acknowledge):
        if inc.acked_by is None:
            inc.acked_by, inc.acked_at, changed = cmd.by, cmd.at, True
    elif isinstance(cmd, Snooze):
        if inc.snoozed_until is None or cmd.until > inc.snoozed_until:
            inc.snoozed_until, inc.snoozed_by, changed = cmd.until, cmd.by, True
    elif isinstance(cmd, Resolve):
        if inc.status != "resolved":
            inc.status, inc.resolved_at, inc.resolved_by, changed = "resolved", cmd.at, cmd.by, True
            for a in inc.alerts:
                if a.status == "firing":
                    a.status, a.resolved_at = "resolved", cmd.at
    else:  # pragma: no cover - the Union is closed
        raise TypeError(f"unknown command {cmd!r}")
    if changed:
        inc.rev += 1
    return changed


def suppressed(inc: IncidentState, now: datetime) -> bool:
    """True while a snooze holds: the incident changes, but nobody is notified."""
    return inc.snoozed_until is not None and now < inc.snoozed_until


def repeats_stopped(inc: IncidentState) -> bool:
    """An acknowledged incident gets no reminders (updates and the resolution still show)."""
    return inc.acked_by is not None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def parse_duration(text: str) -> timedelta:
    """``30m``, ``1h``, ``24h``, ``2d`` as a timedelta; ValueError for anything else.

    >>> parse_duration("1h"), parse_duration("90m") == timedelta(minutes=90)
    (datetime.timedelta(seconds=3600), True)
    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    ValueError: duration must look like 30m, 1h, 24h or 2d, not 'soon'
    """
    m = _DURATION.match(text)
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"duration must look like 30m, 1h, 24h or 2d, not {text!r}")
    n, unit = float(m.group(1)), m.group(2)
    return timedelta(seconds=n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])

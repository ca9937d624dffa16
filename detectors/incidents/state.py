"""Incident state: small typed values with an explicit dict encoding (no pickle needed).

An :class:`IncidentState` holds compact references to its alerts (:class:`AlertRef`), its
grouping pattern, its notification clock and its silences; an :class:`IncidentBook` holds
every incident one dispatcher knows. Both round-trip through plain dicts of JSON types, so a
state codec can store them as JSON.

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
>>> ref = AlertRef(fingerprint="f1", key="team=a|feature=f|customer=c|model=m|environment=production",
...                metric="spend", status="firing", severity="warning", score=0.9999, observed=3.0,
...                baseline=1.0, low=0.5, high=1.5, started_at=t, at=t, bucket_seconds=60)
>>> inc = IncidentState(id="inc-1", group={"team": "a", "feature": "f"}, opened_at=t, last_alert_at=t,
...                     alerts=[ref])
>>> IncidentState.from_dict(inc.to_dict()) == inc
True
>>> book = IncidentBook(incidents={inc.id: inc})
>>> IncidentBook.from_dict(book.to_dict()).incidents["inc-1"].alerts[0].observed
3.0
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any, Literal

Status = Literal["pending", "firing", "resolved"]
VERSION = 1


def ts_out(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def ts_in(x: float | None) -> datetime | None:
    return None if x is None else datetime.fromtimestamp(x, tz=timezone.utc)


@dataclass(slots=True)
class AlertRef:
    """What an incident keeps of one alert (the evidence); ``impact`` is excess $ per bucket if known."""

    fingerprint: str
    key: str
    metric: str
    status: str  # "firing" | "resolved"
    severity: str
    score: float
    observed: float
    baseline: float
    low: float
    high: float
    started_at: datetime
    at: datetime  # event time the alert was raised (its bucket's end)
    bucket_seconds: float = 60.0
    contributors: list[tuple[str, float]] = field(default_factory=list)  # (child key, excess $ per bucket)
    summary: str | None = None
    detector: str = ""
    resolved_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["started_at"], d["at"], d["resolved_at"] = ts_out(self.started_at), ts_out(self.at), ts_out(self.resolved_at)
        d["contributors"] = [list(c) for c in self.contributors]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AlertRef":
        d = dict(d)
        d["started_at"], d["at"], d["resolved_at"] = ts_in(d["started_at"]), ts_in(d["at"]), ts_in(d.get("resolved_at"))
        d["contributors"] = [(str(k), float(v)) for k, v in d.get("contributors", [])]
        return cls(**d)


_TIMES = ("opened_at", "last_alert_at", "notified_at", "repeated_at", "resolved_at", "acked_at", "snoozed_until",
          "announce_after")


@dataclass(slots=True)
class IncidentState:
    """One incident: a group of alerts sharing a cause, with its notification clock and silences.

    ``group`` is the grouping pattern (``group_by`` field -> value, ``*`` while only a roll-up
    has been seen). ``rev`` grows with every change; ``notified_rev`` is the last one announced.
    """

    id: str
    group: dict[str, str]
    opened_at: datetime  # event time: the first alert's start
    last_alert_at: datetime
    alerts: list[AlertRef] = field(default_factory=list)
    status: Status = "pending"
    rev: int = 1
    notified_rev: int = 0
    notified_at: datetime | None = None  # event time of the last notification
    repeated_at: datetime | None = None  # event time of the last reminder or first notification
    resolved_at: datetime | None = None
    dropped_alerts: int = 0  # alerts counted beyond the kept evidence
    announce_after: datetime | None = None  # event time the first notification is due (group_wait)
    notified_alerts: int = 0  # alerts[:notified_alerts] have been announced
    reopened: int = 0
    acked_by: str | None = None
    acked_at: datetime | None = None
    snoozed_until: datetime | None = None
    snoozed_by: str | None = None
    resolved_by: str | None = None

    @property
    def open(self) -> bool:
        return self.status != "resolved"

    @property
    def alert_count(self) -> int:
        return len(self.alerts) + self.dropped_alerts

    def copy(self) -> "IncidentState":
        return replace(self, group=dict(self.group), alerts=[replace(a) for a in self.alerts])

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _TIMES:
            d[name] = ts_out(d[name])
        d["alerts"] = [a.to_dict() for a in self.alerts]
        d["group"] = dict(self.group)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "IncidentState":
        d = dict(d)
        for name in _TIMES:
            d[name] = ts_in(d.get(name))
        d["alerts"] = [AlertRef.from_dict(a) for a in d.get("alerts", [])]
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(slots=True)
class IncidentBook:
    """Every incident a dispatcher tracks, and its event-time clock."""

    incidents: dict[str, IncidentState] = field(default_factory=dict)
    now: datetime | None = None

    def by_fingerprint(self, fingerprint: str) -> IncidentState | None:
        for inc in self.incidents.values():
            if any(a.fingerprint == fingerprint for a in inc.alerts):
                return inc
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"v": VERSION, "now": ts_out(self.now),
                "incidents": [i.to_dict() for i in self.incidents.values()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "IncidentBook":
        if d.get("v") != VERSION:
            raise ValueError(f"incident book version {d.get('v')!r} is not {VERSION}")
        incs = [IncidentState.from_dict(x) for x in d.get("incidents", [])]
        return cls(incidents={i.id: i for i in incs}, now=ts_in(d.get("now")))

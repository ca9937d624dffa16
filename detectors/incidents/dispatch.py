"""Alerts in, incident notifications out: Alertmanager's dispatch, in event time (pure).

An alert joins an open incident whose group is compatible with its own (see
:mod:`detectors.incidents.grouping`), or re-opens a resolved one of the same group and
metric within ``repeat_interval``, or opens a new incident. Event time is the alerts' own
(their bucket's end); :meth:`Dispatcher.advance` moves it on when no alert comes.

- ``group_wait`` (2 min): a new incident is announced this long after its first alert, so
  the roll-ups and other metrics of the same cause, which confirm in the same or the next
  1-minute bucket, are in the first message and the subject is chosen with them.
- ``group_interval`` (5 min, Alertmanager's default): alerts that join an announced incident
  are announced together, at most once per interval (one message update + thread reply).
- ``repeat_interval`` (4 h, Alertmanager's default): an unacknowledged incident still firing
  is re-announced this often; a resolved incident re-opens on a new alert of its group and
  metric within it, and is forgotten after it.

Resolutions and people's commands are announced at once. While snoozed, nothing but a
resolution is announced; what was held back is announced when the snooze ends.

>>> from datetime import datetime, timedelta, timezone
>>> from schemas.alert import Alert
>>> t = datetime(2026, 11, 20, 14, tzinfo=timezone.utc)
>>> def alert(key, metric, minute, status="firing"):
...     return Alert(series_key=key, metric=metric, detector="d", score=0.99999, observed=9.0, baseline=1.0,
...                  expected_low=0.5, expected_high=1.5, window_start=t + timedelta(minutes=minute + 1),
...                  window_end=t + timedelta(minutes=minute + 2), started_at=t, status=status)
>>> key = "team=ads|feature=copygen|customer=acme|model=gpt-4o|environment=production"
>>> d = Dispatcher()
>>> d.observe(alert(key, "spend", 0)), d.advance(t + timedelta(minutes=3)), len(d.book.incidents)
([], [], 1)
>>> d.observe(alert(key, "cost_per_inference", 1))
[]
>>> [(n.kind, len(n.new_alerts)) for n in d.advance(t + timedelta(minutes=4))]  # 2 min after the first
[('open', 2)]
>>> d.observe(alert(key, "spend", 30, "resolved")), [n.kind for n in d.advance(t + timedelta(minutes=33))]
([], ['update'])
>>> [(n.kind, n.incident.status) for n in d.observe(alert(key, "cost_per_inference", 31, "resolved"))]
[('resolve', 'resolved')]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from detectors.incidents.grouping import compatible, group_of, narrow, specificity
from detectors.incidents.silence import Acknowledge, Command, Resolve, apply, repeats_stopped, suppressed
from detectors.incidents.state import AlertRef, IncidentBook, IncidentState
from schemas.alert import Alert

_JUST_BEFORE = timedelta(microseconds=1)
Kind = Literal["open", "update", "resolve", "reopen", "repeat", "ack", "snooze"]


@dataclass(frozen=True, slots=True)
class GroupingConfig:
    """How alerts become incidents (see the module docstring for the defaults' reasons)."""

    group_by: tuple[str, ...] = ("team", "feature")
    group_wait: timedelta = timedelta(minutes=2)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=4)
    subject_share: float = 0.5  # the subject explains at least this share of the largest $ impact
    max_alerts: int = 40  # evidence kept per incident; more are counted
    max_incidents: int = 2000  # incidents kept; the oldest resolved ones go first


@dataclass(frozen=True, slots=True)
class Notification:
    """Something to tell people: ``incident`` is a snapshot, ``new_alerts`` its not yet announced evidence."""

    kind: Kind
    incident: IncidentState
    at: datetime
    new_alerts: tuple[AlertRef, ...] = field(default_factory=tuple)


def alert_ref(alert: Alert) -> AlertRef:
    """The compact evidence an incident keeps of one alert."""
    seconds = (alert.window_end - alert.window_start).total_seconds() or 60.0
    return AlertRef(fingerprint=alert.fingerprint, key=alert.series_key, metric=alert.metric, status=alert.status,
                    severity=alert.severity, score=alert.score, observed=alert.observed, baseline=alert.baseline,
                    low=alert.expected_low, high=alert.expected_high, started_at=alert.started_at,
                    at=alert.window_end, bucket_seconds=seconds,
                    contributors=[(c.key, c.impact_usd) for c in alert.contributors[:3]],
                    summary=alert.summary, detector=alert.detector)


def incident_id(group: dict[str, str], first_fingerprint: str) -> str:
    """Deterministic: a replay of the same alerts names the same incidents (idempotent sinks)."""
    raw = json.dumps([group, first_fingerprint], sort_keys=True).encode()
    return "inc-" + hashlib.sha256(raw).hexdigest()[:10]


class Dispatcher:
    """Groups alerts into incidents and says when to notify; state is :attr:`book` (an :class:`IncidentBook`)."""

    def __init__(self, config: GroupingConfig | None = None, book: IncidentBook | None = None) -> None:
        self.config = config or GroupingConfig()
        self.book = book or IncidentBook()

    # -- input -----------------------------------------------------------------------------------
    def observe(self, alert: Alert) -> list[Notification]:
        """One alert transition (firing or resolved). Returns what fell due *before* the alert's
        time, and what it makes due at once (a resolution, a re-open); what falls due at its time
        comes from the next :meth:`advance` or later alert, so alerts of one instant go out together."""
        ref = alert_ref(alert)
        out: list[Notification] = []
        if self.book.now is not None and ref.at > self.book.now:
            # the alert proves event time reached ref.at: what fell due before it is announced first
            out += self.advance(ref.at - _JUST_BEFORE)
        existing = self.book.by_fingerprint(ref.fingerprint)
        if ref.status == "resolved":
            if existing is not None:
                out += self._resolve_alert(existing, ref)
        elif existing is None:
            inc, reopened = self._add(ref)
            if reopened and inc.notified_rev > 0 and not suppressed(inc, max(ref.at, self.book.now or ref.at)):
                out.append(self._notify(inc, "reopen", ref.at))
        if self.book.now is None or ref.at > self.book.now:
            self.book.now = ref.at
        return out

    def command(self, cmd: Command, now: datetime | None = None) -> list[Notification]:
        """Acknowledge, snooze or resolve by hand; announced at once; a repeat changes nothing."""
        inc = self.book.incidents.get(cmd.incident_id)
        if inc is None or not apply(inc, cmd):
            return []
        at = now or self.book.now or cmd.at
        kind: Kind = "resolve" if isinstance(cmd, Resolve) else "ack" if isinstance(cmd, Acknowledge) else "snooze"
        if inc.notified_rev == 0 and kind != "resolve":
            return []  # not announced yet: the first message will show it
        return [self._notify(inc, kind, at)]

    def advance(self, now: datetime) -> list[Notification]:
        """Move event time to ``now`` (never back) and return the notifications that fell due."""
        if self.book.now is None or now > self.book.now:
            self.book.now = now
        now = self.book.now
        c, out = self.config, []
        for inc in sorted(self.book.incidents.values(), key=lambda i: (i.opened_at, i.id)):
            if inc.notified_rev == 0:
                if inc.announce_after is not None and now >= inc.announce_after:
                    out.append(self._notify(inc, "open", now))
                continue
            if inc.status == "resolved":
                continue
            quiet = suppressed(inc, now)
            if inc.rev > inc.notified_rev and not quiet and inc.notified_at is not None \
                    and now >= inc.notified_at + c.group_interval:
                out.append(self._notify(inc, "update", now))
            elif not quiet and not repeats_stopped(inc) and inc.repeated_at is not None \
                    and now >= inc.repeated_at + c.repeat_interval:
                inc.repeated_at = now
                out.append(self._notify(inc, "repeat", now))
        self._forget(now)
        return out

    # -- internals -------------------------------------------------------------------------------
    def _add(self, ref: AlertRef) -> tuple[IncidentState, bool]:
        c = self.config
        contributors = [k for k, _ in ref.contributors]
        g = group_of(ref.key, contributors, c.group_by)
        inc, reopened = self._match(g, ref), False
        if inc is None:
            inc = IncidentState(id=incident_id(g, ref.fingerprint), group=g, opened_at=ref.started_at,
                                last_alert_at=ref.at, status="firing", announce_after=ref.at + c.group_wait)
            self.book.incidents[inc.id] = inc
        elif inc.status == "resolved":
            inc.status, inc.resolved_at, inc.resolved_by, inc.reopened = "firing", None, None, inc.reopened + 1
            reopened = True
        inc.group = narrow(inc.group, g) if compatible(inc.group, g) else inc.group
        inc.last_alert_at = max(inc.last_alert_at, ref.at)
        inc.opened_at = min(inc.opened_at, ref.started_at)
        if len(inc.alerts) < c.max_alerts:
            inc.alerts.append(ref)
        else:
            inc.dropped_alerts += 1
        inc.rev += 1
        return inc, reopened

    def _match(self, g: dict[str, str], ref: AlertRef) -> IncidentState | None:
        c = self.config
        live = [i for i in self.book.incidents.values() if i.open and compatible(i.group, g)]
        if live:  # the same group first, then the most specific, then the latest
            return max(live, key=lambda i: (i.group == g, sum(v != "*" for v in i.group.values()),
                                            i.last_alert_at, i.id))
        resolved = [i for i in self.book.incidents.values()
                    if not i.open and compatible(i.group, g) and i.resolved_at is not None
                    and ref.started_at - i.resolved_at <= c.repeat_interval
                    and any(a.metric == ref.metric for a in i.alerts)]
        return max(resolved, key=lambda i: (i.resolved_at, i.id)) if resolved else None

    def _resolve_alert(self, inc: IncidentState, ref: AlertRef) -> list[Notification]:
        for a in inc.alerts:
            if a.fingerprint == ref.fingerprint and a.status == "firing":
                a.status, a.resolved_at = "resolved", ref.at
                inc.rev += 1
        if inc.status == "resolved" or any(a.status == "firing" for a in inc.alerts):
            return []
        inc.status, inc.resolved_at = "resolved", ref.at
        inc.rev += 1
        if inc.notified_rev == 0:
            return []  # resolved before its first message: announced, resolved, after group_wait
        return [self._notify(inc, "resolve", ref.at)]

    def _notify(self, inc: IncidentState, kind: Kind, now: datetime) -> Notification:
        new = tuple(a for a in inc.alerts[inc.notified_alerts:])
        inc.notified_alerts = len(inc.alerts)
        inc.notified_rev, inc.notified_at = inc.rev, now
        if kind in ("open", "reopen", "repeat") or inc.repeated_at is None:
            inc.repeated_at = now
        return Notification(kind, inc.copy(), now, new)

    def _forget(self, now: datetime) -> None:
        c = self.config
        gone = [i.id for i in self.book.incidents.values()
                if not i.open and i.notified_rev > 0 and i.resolved_at is not None
                and now - i.resolved_at > c.repeat_interval]
        for i in gone:
            del self.book.incidents[i]
        if len(self.book.incidents) > c.max_incidents:
            old = sorted((i for i in self.book.incidents.values() if not i.open), key=lambda i: i.resolved_at)
            for i in old[: len(self.book.incidents) - c.max_incidents]:
                del self.book.incidents[i.id]


def run(alerts: Iterable[Alert], config: GroupingConfig | None = None, flush: timedelta | None = None,
        tick: timedelta = timedelta(minutes=1)) -> tuple[list[IncidentState], list[Notification]]:
    """Replay ``alerts`` (in event-time order) and return every incident and notification, e.g. for benchmarks.

    Event time advances in ``tick`` steps between alerts, as the stream's timer moves it when no
    alert comes; ``flush`` moves it past the last alert so pending incidents are announced.
    """
    d = Dispatcher(config)
    seen: dict[str, IncidentState] = {}
    notes: list[Notification] = []
    last = None
    for a in sorted(alerts, key=lambda a: (a.window_end, a.status != "resolved", a.series_key, a.metric)):
        while last is not None and last + tick < a.window_end:
            last += tick
            notes += d.advance(last)
        notes += d.observe(a)
        last = a.window_end
        seen.update({i.id: i for i in d.book.incidents.values()})
    if last is not None:
        end = last + (flush or d.config.group_wait)
        while last < end:
            last = min(last + tick, end)
            notes += d.advance(last)
        seen.update({i.id: i for i in d.book.incidents.values()})
    return list(seen.values()), notes


def sorted_keys(refs: Sequence[AlertRef]) -> list[str]:
    """Alert keys of an incident, most specific first."""
    return sorted({a.key for a in refs}, key=lambda k: (-specificity(k), k))

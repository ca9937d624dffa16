"""An incident's state, summarised for people: subject, what, where, $ per hour, contributors (pure).

>>> from datetime import datetime, timedelta, timezone
>>> from detectors.incidents.state import AlertRef, IncidentState
>>> t = datetime(2026, 11, 20, 14, tzinfo=timezone.utc)
>>> key = "team=ads|feature=copygen|customer=acme|model=gpt-4o|environment=production"
>>> team = "team=ads|feature=*|customer=*|model=*|environment=production"
>>> def ref(k, metric, obs, base, contributors=()):
...     return AlertRef(fingerprint=k + metric, key=k, metric=metric, status="firing", severity="critical",
...                     score=0.99999, observed=obs, baseline=base, low=0.0, high=base * 1.2, started_at=t,
...                     at=t + timedelta(minutes=2), contributors=list(contributors))
>>> inc = IncidentState(id="inc-1", group={"team": "ads", "feature": "copygen"}, opened_at=t,
...     last_alert_at=t, status="firing", alerts=[ref(key, "spend", 1.0, 0.2), ref(key, "tokens_per_request",
...     8000, 1000), ref(team, "spend", 1.5, 0.6, [("feature=copygen|customer=acme|model=gpt-4o", 0.8)])])
>>> r = to_record(inc, now=t + timedelta(minutes=32))
>>> r.subject_key == key, r.metric, r.title
(True, 'tokens_per_request', 'tokens per request 8.0x normal on ads / copygen / acme / gpt-4o')
>>> r.excess_usd_per_hour, r.spend_usd_per_hour, r.excess_usd_total
(54.0, 60.0, 28.8)
"""

from __future__ import annotations

from datetime import datetime

from detectors.incidents.grouping import (choose_subject, compatible, group_of, key_impacts, parse_key,
                                          specificity, subject_metric)
from detectors.incidents.state import AlertRef, IncidentState
from schemas.cost import KEY_FIELDS, AllocationKey
from schemas.incident import BudgetState, ContributorRow, EvidenceAlert, IncidentRecord

HOUR = 3600.0


def subject_of(inc: IncidentState, share: float = 0.5) -> tuple[str, str, AlertRef]:
    """(subject key, subject metric, the alert that best shows it)."""
    refs = inc.alerts
    impacts = key_impacts((a.key, a.metric, a.observed, a.baseline, a.contributors) for a in refs)
    alerting: dict[str, float] = {}
    for a in refs:
        alerting[a.key] = max(alerting.get(a.key, 0.0), a.score)
    key = choose_subject(impacts, alerting, share)
    own = [a for a in refs if a.key == key]
    if not own:  # the subject came from a roll-up's contributor: its closest alerting ancestor shows it
        ancestors = [a for a in refs if _covers(a.key, key)] or list(refs)
        best = max(specificity(a.key) for a in ancestors)
        own = [a for a in ancestors if specificity(a.key) == best]
    metric = subject_metric(a.metric for a in own)
    shown = max((a for a in own if a.metric == metric), key=lambda a: (a.status == "firing", a.score, a.at))
    return key, metric, shown


def _covers(ancestor: str, key: str) -> bool:
    a, k = parse_key(ancestor), parse_key(key)
    return a is not None and k is not None and compatible(a, k)


def where_label(key: str) -> str:
    """``ads / copygen / acme / gpt-4o`` (unescaped; roll-up fields and defaults left out)."""
    if parse_key(key) is None:
        return key
    k = AllocationKey.parse(key)
    vals = [getattr(k, f) for f in KEY_FIELDS if f != "environment"]
    shown = [v for v in vals if v != "*" and v != "unknown"]
    if k.environment not in ("*", "production"):
        shown.append(k.environment)
    return " / ".join(shown) or "all teams"


def to_record(inc: IncidentState, now: datetime | None = None, runbook_url: str | None = None,
              budget: BudgetState | None = None, share: float = 0.5) -> IncidentRecord:
    """The :class:`IncidentRecord` people see; ``now`` (event time) bounds the running total."""
    key, metric, shown = subject_of(inc, share)
    firing = [a for a in inc.alerts if a.status == "firing"]
    impacts = key_impacts((a.key, a.metric, a.observed, a.baseline, a.contributors) for a in inc.alerts)
    top_ref = max(inc.alerts, key=lambda a: a.bucket_seconds)
    per_hour = HOUR / (top_ref.bucket_seconds or 60.0)
    peak = max(impacts.values(), default=0.0)
    excess_now = (max(key_impacts((a.key, a.metric, a.observed, a.baseline, a.contributors)
                                  for a in firing).values(), default=0.0) * per_hour) if inc.open else 0.0
    end = inc.resolved_at or now or inc.last_alert_at
    hours = max((end - inc.opened_at).total_seconds(), 0.0) / HOUR
    spend_alerts = [a for a in inc.alerts if a.key == key and a.metric == "spend"]
    spend_now = max(a.observed for a in spend_alerts) * per_hour if spend_alerts else None
    contributors = sorted(((k, v) for k, v in impacts.items() if specificity(k) == len(KEY_FIELDS) and v > 0),
                          key=lambda kv: -kv[1])[:5]
    ratio = shown.observed / shown.baseline if shown.baseline else float("inf")
    title = f"{metric.replace('_', ' ')} {ratio:.1f}x normal on {where_label(key)}" if ratio != float("inf") \
        else f"{metric.replace('_', ' ')} from nothing on {where_label(key)}"
    summary = next((a.summary for a in inc.alerts if a.summary), None)
    severity = "critical" if any(a.severity == "critical" for a in inc.alerts) else shown.severity
    return IncidentRecord(
        id=inc.id, status=inc.status, title=title, subject_key=key, metric=metric, severity=severity,
        score=shown.score, observed=shown.observed, baseline=shown.baseline, expected_low=shown.low,
        expected_high=shown.high, started_at=inc.opened_at, updated_at=now or inc.last_alert_at,
        resolved_at=inc.resolved_at, summary=summary,
        excess_usd_per_hour=round(excess_now, 6) if peak > 0 or not inc.open else None,
        spend_usd_per_hour=round(spend_now, 6) if spend_now is not None else None,
        excess_usd_total=round(peak * per_hour * hours, 6) if peak > 0 else None,
        contributors=[ContributorRow(key=k, excess_usd_per_hour=round(v * per_hour, 6)) for k, v in contributors],
        evidence=[EvidenceAlert(fingerprint=a.fingerprint, series_key=a.key, metric=a.metric, status=a.status,
                                score=a.score, observed=a.observed, baseline=a.baseline, started_at=a.started_at,
                                at=a.at, summary=a.summary) for a in inc.alerts],
        alert_count=inc.alert_count, acked_by=inc.acked_by, acked_at=inc.acked_at,
        snoozed_until=inc.snoozed_until, snoozed_by=inc.snoozed_by, resolved_by=inc.resolved_by,
        reopened=inc.reopened, runbook_url=runbook_url, budget=budget, rev=inc.rev)


__all__ = ["to_record", "subject_of", "where_label", "group_of"]

"""Build an :class:`~schemas.overrun.Overrun` from a budget event (pure).

Only *firing* events are overruns (a resolved one is the end of an incident, not a new
question). The amounts:

- ``forecast_usd``: the tracker's projection carried on the event (cheap), or a statsmodels
  forecast when the caller passes one (:meth:`guardrails.burn_tracker.BurnTracker.forecast`);
- ``overrun_usd = max(spend, forecast) - cap`` (at least 0): what the period needs above the
  cap, actual or forecast whichever is larger (``basis`` says which), so a grant of "the
  overrun" covers the rest of the period at the current rate;
- ``overrun_pct = 100 * overrun_usd / cap``.

``overrun_id`` is a hash of (budget id, rule, period start, incident start): a redelivered
event, or the same event recomputed after a restart, yields the same id.

>>> from datetime import datetime, timezone, timedelta
>>> from guardrails.budget_book import BudgetBook
>>> from guardrails.burn_tracker import BurnTracker
>>> book = BudgetBook.load()
>>> spec = book.get("research-sandbox")                    # $50 a day, thresholds 50/80/100 %
>>> tr = BurnTracker.from_spec(spec)
>>> t0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
>>> evs = [e for m in range(12) for e in tr.observe(t0 + timedelta(minutes=m), 5.0)]
>>> [e.rule for e in evs if e.kind == "threshold"]
['threshold_50', 'threshold_80', 'threshold_100']
>>> o = overrun_from_burn_event(evs[-1], spec)
>>> o.rule, o.tier, o.scope, o.spend_usd, o.cap_usd
('threshold_100', 'sandbox', {'team': ['research'], 'tier': ['sandbox']}, 50.0, 50.0)
>>> o.overrun_usd > 0 and o.basis == "forecast" and o.overrun_id == overrun_from_burn_event(evs[-1], spec).overrun_id
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from guardrails.budget_book import BudgetBook, BudgetSpec
from guardrails.burn_tracker import BurnEvent
from schemas.alert import Alert, Contributor
from schemas.cost import KEY_FIELDS, AllocationKey
from schemas.events import UNKNOWN
from schemas.overrun import BurnRateInfo, Overrun

if TYPE_CHECKING:
    from guardrails.forecast import Forecast

__all__ = ["ANOMALY_METRICS", "OVERRUN_METRIC", "alert_impact_usd_per_s", "budgets_spoken_for", "make_overrun_id",
           "overrun_amounts", "overrun_from_alert", "overrun_from_burn_event", "overruns_from_alert",
           "overruns_from_burn_events"]

#: Alert metrics whose incidents cost money on the key (the others, e.g. tokens per request, are evidence).
ANOMALY_METRICS = frozenset({"spend", "cost_per_inference"})
#: The metric whose alerts the stream turns into overruns (one incident raises alerts on several metrics;
#: spend is the one that is money on the budget).
OVERRUN_METRIC = "spend"
ROLLED_UP = "*"


def make_overrun_id(budget_id: str, rule: str, period_start: datetime, started_at: datetime) -> str:
    """Stable id of an overrun: 32 hex characters of SHA-256 over its identifying fields.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 11, 20, tzinfo=timezone.utc)
    >>> make_overrun_id("b", "threshold_100", t, t) == make_overrun_id("b", "threshold_100", t, t)
    True
    >>> make_overrun_id("b", "threshold_100", t, t) == make_overrun_id("b", "threshold_80", t, t)
    False
    """
    raw = "\x1f".join((budget_id, rule, period_start.isoformat(), started_at.isoformat())).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def overrun_amounts(cap_usd: float, spend_usd: float, forecast_usd: float) -> tuple[float, float, str]:
    """(overrun $, overrun % of the cap, basis) from the cap, the actual and the forecast spend.

    >>> overrun_amounts(100.0, 120.0, 90.0)
    (20.0, 20.0, 'actual')
    >>> overrun_amounts(100.0, 80.0, 150.0)
    (50.0, 50.0, 'forecast')
    >>> overrun_amounts(100.0, 50.0, 90.0)
    (0.0, 0.0, 'forecast')
    """
    actual, forecast = spend_usd - cap_usd, forecast_usd - cap_usd
    basis = "actual" if actual >= forecast else "forecast"
    usd = round(max(actual, forecast, 0.0), 6)
    pct = round(100.0 * usd / cap_usd, 6) if cap_usd > 0 else 0.0
    return usd, pct, basis


def _environment(scope: Mapping[str, Sequence[str]]) -> str | None:
    env = scope.get("environment")
    return env[0] if env and len(env) == 1 else None


def overrun_from_burn_event(ev: BurnEvent, spec: BudgetSpec, contributors: Iterable[Contributor] = (), *,
                            forecast: "Forecast | None" = None, forecast_exhausted_at: datetime | None = None,
                            labels: Mapping[str, str] | None = None) -> Overrun:
    """The overrun a *firing* budget event raises (``ValueError`` for a resolved one).

    ``spec`` is the budget the event belongs to (its tier, scope, owner and approvers are
    copied). ``forecast`` (optional) replaces the event's projection by a statsmodels
    forecast, with ``forecast_exhausted_at`` its exhaustion time. ``contributors`` are the
    top sub-keys by $ impact, ``labels`` free-form tags policies may match on.
    """
    if ev.status != "firing":
        raise ValueError(f"budget {ev.budget_id} {ev.rule}: a resolved event is not an overrun")
    if ev.budget_id != spec.id:
        raise ValueError(f"event of budget {ev.budget_id!r} given with the spec of {spec.id!r}")
    if forecast is not None:
        forecast_usd, method, exhausted = forecast.expected_total, forecast.method, forecast_exhausted_at
    else:
        forecast_usd, method, exhausted = ev.projected_spend_usd, "projection", ev.projected_exhaustion
    forecast_usd = max(float(forecast_usd), ev.period_spent_usd)  # the period never ends below what is spent
    usd, pct, basis = overrun_amounts(ev.cap_usd, ev.period_spent_usd, forecast_usd)
    if ev.kind == "burn_rate":
        rule = next((r for r in spec.rules if r.name == ev.rule), None)
        burn = BurnRateInfo(rule=ev.rule, factor=rule.factor if rule else None,
                            long_window_s=rule.long_s if rule else None, short_window_s=rule.short_s if rule else None,
                            long_rate=round(ev.long_rate, 6), short_rate=round(ev.short_rate, 6))
    else:
        burn = BurnRateInfo(long_rate=round(ev.long_rate, 6), short_rate=round(ev.short_rate, 6))
    scope = {dim: list(vals) for dim, vals in spec.scope}
    return Overrun(
        overrun_id=make_overrun_id(ev.budget_id, ev.rule, ev.period_start, ev.started_at),
        budget_id=ev.budget_id, budget_name=spec.name, trigger=ev.kind, rule=ev.rule, severity=ev.severity,
        scope=scope, tier=spec.tier, environment=_environment(scope), labels=dict(labels or {}),
        owner=spec.owner, approvers=list(spec.approvers), period=spec.period,
        period_start=ev.period_start, period_end=ev.period_end, at=ev.at, started_at=ev.started_at,
        cap_usd=ev.cap_usd, spend_usd=round(ev.period_spent_usd, 6), forecast_usd=round(forecast_usd, 6),
        forecast_method=method, exhausted_at=exhausted, overrun_usd=usd, overrun_pct=pct, basis=basis,  # type: ignore[arg-type]
        threshold=ev.threshold, burn_rate=burn, contributors=list(contributors))


def overruns_from_burn_events(events: Iterable[BurnEvent], spec: BudgetSpec,
                              contributors: Iterable[Contributor] = ()) -> list[Overrun]:
    """The overruns among a tracker's transitions (firing events only), in order."""
    top = list(contributors)
    return [overrun_from_burn_event(ev, spec, top) for ev in events if ev.status == "firing"]


def alert_impact_usd_per_s(alert: Alert) -> float:
    """The extra spend an alert's incident costs, in USD per second (0: no $ impact to speak of).

    Its top contributors' positive impacts (USD over the alert's bucket, against their own
    baselines) when it names any (roll-up keys), else for a ``spend`` alert observed minus
    baseline; a leaf ``cost_per_inference`` alert carries no call count, so no $ impact.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 11, 20, 14, 5, tzinfo=timezone.utc)
    >>> a = Alert(series_key="team=ads|feature=*|customer=*|model=*|environment=*", metric="cost_per_inference",
    ...           detector="ew_zscore", score=0.99, observed=0.026, baseline=0.0066, expected_low=0.0,
    ...           expected_high=0.01, window_start=t, window_end=t.replace(minute=6), started_at=t,
    ...           contributors=[Contributor(key="feature=copygen", impact_usd=0.21, observed=0.26, baseline=0.05),
    ...                         Contributor(key="feature=other", impact_usd=-0.01, observed=0.0, baseline=0.01)])
    >>> round(alert_impact_usd_per_s(a) * 60, 6)       # $0.21 over a 1-minute bucket
    0.21
    """
    bucket_s = (alert.window_end - alert.window_start).total_seconds()
    if alert.metric not in ANOMALY_METRICS or bucket_s <= 0:
        return 0.0
    if alert.contributors:
        usd = sum(c.impact_usd for c in alert.contributors if c.impact_usd > 0)
    elif alert.metric == "spend":
        usd = alert.observed - alert.baseline
    else:
        usd = 0.0
    return max(usd, 0.0) / bucket_s


def overrun_from_alert(alert: Alert, spec: BudgetSpec, *, spend_usd: float = 0.0, forecast_usd: float | None = None,
                       as_of: datetime | None = None, labels: Mapping[str, str] | None = None) -> Overrun | None:
    """The overrun an anomaly alert with a $ impact raises on a budget covering its key (``None``: it has none).

    Only *firing* ``spend`` / ``cost_per_inference`` alerts with a positive $ impact
    (:func:`alert_impact_usd_per_s`) count. The anomaly is priced as if it lasted to the end of
    the budget's period: ``forecast_usd = max(forecast, spend) + impact x time left`` where
    ``spend_usd`` / ``forecast_usd`` are the budget's period-to-date spend and end-of-period
    forecast when the caller knows them (e.g. its latest :class:`~sinks.budget_store.BudgetSnapshot`;
    unknown: 0 spent and no forecast beyond it), and "time left" runs from the alert's bucket end, or from
    ``as_of`` (the event time those figures were taken at) when that is later: spend up to then is in
    ``spend_usd`` already, anomaly included, and is not counted twice. ``overrun_usd`` is that forecast above the cap
    (``basis: anomaly``), so a policy can grant "the overrun", or match ``trigger: anomaly`` and
    ``anomaly_score``. The id is stable per (budget, alert incident): a re-sent alert is the same overrun.

    >>> from datetime import datetime, timezone
    >>> book = BudgetBook.from_yaml_text("budgets: [{id: ads, tier: production, scope: {team: ads}, period: day, "
    ...                                  "cap_usd: 36}]")
    >>> t = datetime(2026, 11, 20, 14, 5, tzinfo=timezone.utc)
    >>> a = Alert(series_key="team=ads|feature=copygen|customer=internal|model=gpt-4o|environment=production",
    ...           metric="spend", detector="ew_zscore", score=0.97, observed=0.14, baseline=0.06,
    ...           expected_low=0.0, expected_high=0.09, window_start=t, window_end=t.replace(minute=6),
    ...           started_at=t.replace(minute=3))
    >>> o = overrun_from_alert(a, book.get("ads"), spend_usd=30.0, forecast_usd=34.0)
    >>> o.trigger, o.rule, o.basis, o.anomaly_score, o.alert_fingerprint == a.fingerprint
    ('anomaly', 'anomaly.spend', 'anomaly', 0.97, True)
    >>> round(o.forecast_usd, 2), round(o.overrun_usd, 2)    # 34 + $0.08/min for the 594 minutes left
    (81.52, 45.52)
    >>> later = overrun_from_alert(a, book.get("ads"), spend_usd=40.0, forecast_usd=44.0, as_of=t.replace(hour=15))
    >>> round(later.forecast_usd, 2)                           # 44 + $0.08/min for the 535 minutes after 15:05
    86.8
    >>> overrun_from_alert(a.model_copy(update={"status": "resolved"}), book.get("ads")) is None
    True
    """
    if alert.status != "firing":
        return None
    rate = alert_impact_usd_per_s(alert)
    if rate <= 0:
        return None
    start, end = spec.period_bounds(alert.window_end)
    since = max(alert.window_end, as_of) if as_of is not None else alert.window_end
    left_s = max((end - since).total_seconds(), 0.0)
    spend = max(float(spend_usd), 0.0)
    forecast = max(float(forecast_usd) if forecast_usd is not None else spend, spend) + rate * left_s
    usd, pct, _ = overrun_amounts(spec.cap_usd, spend, forecast)
    scope = {dim: list(vals) for dim, vals in spec.scope}
    return Overrun(
        overrun_id=make_overrun_id(spec.id, f"anomaly:{alert.fingerprint}", start, alert.started_at),
        budget_id=spec.id, budget_name=spec.name, trigger="anomaly", rule=f"anomaly.{alert.metric}"[:64],
        severity="page" if alert.severity == "critical" else "ticket", scope=scope, tier=spec.tier,
        environment=_environment(scope), labels=dict(labels or {}), owner=spec.owner, approvers=list(spec.approvers),
        period=spec.period, period_start=start, period_end=end, at=alert.window_end, started_at=alert.started_at,
        cap_usd=spec.cap_usd, spend_usd=round(spend, 6), forecast_usd=round(forecast, 6),
        forecast_method="anomaly_to_period_end", overrun_usd=usd, overrun_pct=pct, basis="anomaly",
        anomaly_score=alert.score, alert_fingerprint=alert.fingerprint, contributors=list(alert.contributors))


def overruns_from_alert(alert: Alert, book: BudgetBook,
                        figures: Mapping[str, tuple[float, float | None]] | None = None) -> list[Overrun]:
    """The overruns of an alert on every budget whose scope covers its key (roll-up keys included: a
    ``*`` dimension is covered by a budget that does not restrict it); ``figures``: budget id ->
    (period-to-date spend, end-of-period forecast) where known."""
    figures = figures or {}
    out = []
    for spec in book.matching(alert.series_key):
        spend, forecast = figures.get(spec.id, (0.0, None))
        ov = overrun_from_alert(alert, spec, spend_usd=spend, forecast_usd=forecast)
        if ov is not None:
            out.append(ov)
    return out


def budgets_spoken_for(series_key: str, book: BudgetBook, levels: Sequence[Sequence[str]]) -> list[BudgetSpec]:
    """The budgets an alert on ``series_key`` speaks for: those covering the key for which no coarser
    configured roll-up of it (``levels``, e.g. ``[["team", "environment"], ["environment"]]``) is covered too.

    One spike alerts on its leaf key and on every roll-up level above it. A roll-up's series carries the
    same spend plus the rest of what it sums, so for each budget the *highest-level* key the budget covers
    is the one whose alert is the budget's anomaly: a leaf alert speaks for a feature budget, the team
    roll-up for the team budget, the org roll-up for the org budget, and the spike raises one overrun per
    budget, not one per level. A key that is not an allocation key (a budget's, a GPU's) speaks for none.

    >>> book = BudgetBook.from_yaml_text("budgets: [{id: org, cap_usd: 1000}, "
    ...     "{id: ads, parent: org, scope: {team: ads}, cap_usd: 100}, "
    ...     "{id: copygen, parent: ads, scope: {team: ads, feature: copygen}, cap_usd: 50}]")
    >>> levels = [["team", "environment"], ["environment"]]
    >>> leaf = "team=ads|feature=copygen|customer=internal|model=gpt-4o|environment=production"
    >>> [b.id for b in budgets_spoken_for(leaf, book, levels)]
    ['copygen']
    >>> team = "team=ads|feature=*|customer=*|model=*|environment=production"
    >>> [b.id for b in budgets_spoken_for(team, book, levels)]
    ['ads']
    >>> [b.id for b in budgets_spoken_for(team.replace("team=ads", "team=*"), book, levels)]
    ['org']
    >>> budgets_spoken_for("budget=ads", book, levels)
    []
    """
    parts = dict(p.split("=", 1) for p in series_key.split("|") if "=" in p)
    if set(parts) != set(KEY_FIELDS):
        return []
    key = AllocationKey.parse(series_key)
    values = tuple(getattr(key, f) for f in KEY_FIELDS)
    concrete = {f for f in KEY_FIELDS if parts[f] != ROLLED_UP}  # a tag's own "*" is escaped, never rolled up
    coarser = [tuple(v if f in level else ROLLED_UP for f, v in zip(KEY_FIELDS, values)) + (UNKNOWN,)
               for level in map(set, levels) if level < concrete]
    return [spec for spec in book.matching(series_key) if not any(spec.matches(c) for c in coarser)]

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

from guardrails.budget_book import BudgetSpec
from guardrails.burn_tracker import BurnEvent
from schemas.alert import Contributor
from schemas.overrun import BurnRateInfo, Overrun

if TYPE_CHECKING:
    from guardrails.forecast import Forecast

__all__ = ["make_overrun_id", "overrun_amounts", "overrun_from_burn_event", "overruns_from_burn_events"]


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

"""Score one closed bucket on every configured metric: the detect agent and offline replay share this.

Each series' state carries the ``seq`` of the last bucket batch it learnt from, so a batch
delivered twice teaches no baseline twice (root-cause baselines and sibling priors included).

A roll-up bucket at the finest configured roll-up level (default: a team) also feeds its
children's spend to a :class:`~detectors.sibling_prior.SiblingPrior` (state ``key#siblings``):
a child never seen before whose spend is far above what its established siblings spend alerts
at once on its own full key (metric ``spend``, detector ``sibling_prior``), without waiting for
its own monitor's warm-up.

>>> from datetime import datetime, timedelta, timezone
>>> scorer, state = BucketScorer(Settings(_env_file=None, detector="ew_zscore")), {}
>>> t0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
>>> alerts = []
>>> for i in range(60):
...     cost = 0.10 if i < 50 else 0.50  # cost per call jumps 5x at minute 50
...     b = Bucket(key="team=a", start=t0 + timedelta(minutes=i), seconds=60, spend_usd=10 * cost, requests=10)
...     alerts += scorer.score(b, i, state.get, state.__setitem__)
>>> [(a.metric, a.started_at.minute, a.status) for a in alerts]
[('spend', 50, 'firing'), ('cost_per_inference', 50, 'firing')]
>>> scorer.score(b, 59, state.get, state.__setitem__)  # the same batch again: already learnt
[]

*Early firing* (``early_firing``): :meth:`BucketScorer.score_partial` scores a key's open bucket as it stands
(a :class:`~schemas.bucket.PartialBatch`) on the metrics that only grow while a bucket fills (:data:`EARLY_METRICS`:
spend; credits are kept apart as ``credit_usd``), without learning (:meth:`SeriesMonitor.peek`). An incident it
opens is dated to that bucket and kept in the series' monitor; the bucket, closed, is scored by :meth:`score` as
usual and confirms it (no second alert: the same fingerprint) or resolves it. A partial of a bucket the series has
already scored closed, of a series with an incident open, or of a new series changes nothing, so a redelivered
partial sends nothing new.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from detectors.child_baselines import ChildBaselines
from detectors.incidents.grouping import with_child
from detectors.monitor import Incident, SeriesMonitor
from detectors.registry import make_detector
from detectors.sibling_prior import NewChildSpend, SiblingPrior
from schemas.alert import Alert, Contributor
from schemas.bucket import Bucket
from streams.settings import Settings
from streams.state.values import ChildrenState, SeriesState, SiblingsState

__all__ = ["BucketScorer", "SiblingsState", "prior_alert"]
#: Children a sibling prior tracks per roll-up (as many as the root-cause baselines keep).
PRIOR_MAX_CHILDREN = 200
ROLLED_UP = "*"
#: Metrics whose value only grows while a bucket fills: a partial bucket scored on them is a lower bound.
EARLY_METRICS: tuple[str, ...] = ("spend",)


def prior_alert(bucket: Bucket, e: NewChildSpend) -> Alert:
    """A sibling prior's transition as an alert on the child's full key (spend per bucket)."""
    return Alert(series_key=with_child(bucket.key, e.child), metric="spend", detector="sibling_prior",
                 score=min(e.score, 1.0), observed=e.spend, baseline=e.baseline, expected_low=e.low,
                 expected_high=e.high, window_start=bucket.start, window_end=bucket.end, started_at=e.started_at,
                 status=e.status,  # type: ignore[arg-type]
                 severity="critical" if e.score >= 0.999999 else "warning")


def _alert(bucket: Bucket, metric: str, monitor: SeriesMonitor, incident: Incident) -> Alert:
    """A monitor's transition on ``bucket`` as an alert (fingerprinted by series, metric and incident start)."""
    return Alert(
        series_key=bucket.key, metric=metric, detector=monitor.detector.name,
        score=incident.peak_score, observed=incident.observed, baseline=incident.expected.baseline,
        expected_low=incident.expected.low, expected_high=incident.expected.high,
        window_start=bucket.start, window_end=bucket.end, started_at=incident.started_at,
        status=incident.status,  # type: ignore[arg-type]
        severity="critical" if incident.peak_score >= 0.999999 else "warning")


def _pinned(key: str) -> int:
    return sum(1 for part in key.split("|") if "=" in part and part.split("=", 1)[1] != ROLLED_UP)


class BucketScorer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: roll-ups whose children get a sibling prior: the finest configured level (e.g. team), whose
        #: children are siblings under one parent; coarser levels would flag the same child again
        self.prior_level = max((len(set(level)) for level in settings.rollups), default=0)

    def new_prior(self) -> SiblingPrior:
        return SiblingPrior(max_children=PRIOR_MAX_CHILDREN)

    def new_monitor(self) -> SeriesMonitor:
        s = self.settings
        return SeriesMonitor(make_detector(s.detector), threshold=s.alert_threshold, min_ratio=s.alert_min_ratio)

    def score(self, bucket: Bucket, seq: int, load: Callable[[str], Any], save: Callable[[str, Any], None]
              ) -> list[Alert]:
        """Feed ``bucket`` (of batch ``seq``) to each metric's monitor, state via ``load``/``save``
        (:class:`SeriesState`, :class:`ChildrenState`); return the alert transitions."""
        if bucket.late:
            return []  # a correction of a bucket already scored: spend counts it, detection does not
        alerts: list[Alert] = []
        at = bucket.start.timestamp()  # buckets of one batch share its seq, in start order
        for metric in self.settings.metrics:
            value = bucket.metric(metric, self.settings.min_requests_per_bucket)
            if value is None:
                continue
            series = f"{bucket.key}#{metric}"
            state: SeriesState | None = load(series)
            if state is not None and (state.seq, state.at) >= (seq, at):
                continue  # already learnt from this bucket (its batch was redelivered)
            monitor = state.monitor if state is not None else self.new_monitor()
            incident = monitor.observe(bucket.start, value)
            save(series, SeriesState(seq, at, monitor))
            if incident is not None:
                alerts.append(_alert(bucket, metric, monitor, incident))
        if bucket.children:
            self._root_cause(bucket, seq, alerts, load, save)
        return alerts

    def score_partial(self, bucket: Bucket, load: Callable[[str], Any], save: Callable[[str, Any], None]
                      ) -> list[Alert]:
        """Score the open ``bucket`` as it stands on :data:`EARLY_METRICS`, learning nothing: the incidents it
        opens at once, as firing alerts (a roll-up's naming its top children against their baselines). A series
        saved keeps its ``(seq, at)``: the closed bucket is scored as if no partial had come."""
        if not self.settings.early_firing or bucket.late:
            return []
        alerts: list[Alert] = []
        at = bucket.start.timestamp()
        for metric in EARLY_METRICS:
            if metric not in self.settings.metrics:
                continue
            value = bucket.metric(metric, self.settings.min_requests_per_bucket)
            series = f"{bucket.key}#{metric}"
            state: SeriesState | None = load(series) if value is not None else None
            if state is None or state.at >= at:
                continue  # no baseline yet, or this bucket has closed and been scored already
            incident = state.monitor.peek(bucket.start, value)  # type: ignore[arg-type]
            if incident is None:
                continue
            save(series, SeriesState(state.seq, state.at, state.monitor))
            alerts.append(_alert(bucket, metric, state.monitor, incident))
        if alerts and bucket.children:
            children: ChildrenState | None = load(f"{bucket.key}#children")
            if children is not None:
                top = [Contributor(key=c.key, impact_usd=c.impact, observed=c.observed, baseline=c.baseline)
                       for c in children.baselines.contributors(bucket.children, k=self.settings.root_cause_top)]
                for alert in alerts:
                    alert.contributors = top
        return alerts

    def _siblings(self, bucket: Bucket, seq: int, children: Mapping[str, float], load: Callable[[str], Any],
                  save: Callable[[str, Any], None]) -> list[Alert]:
        """The roll-up's sibling prior on this bucket's children: alerts for new children far above their
        siblings (firing once, resolved when quiet); only at the finest roll-up level."""
        if _pinned(bucket.key) != self.prior_level:
            return []
        series = f"{bucket.key}#siblings"
        state: SiblingsState | None = load(series)
        at = bucket.start.timestamp()
        if state is not None and (state.seq, state.at) >= (seq, at):
            return []
        prior = state.prior if state is not None else self.new_prior()
        out = [prior_alert(bucket, e) for e in prior.observe(bucket.start, children)]
        save(series, SiblingsState(seq, at, prior))
        return out

    def _root_cause(self, bucket: Bucket, seq: int, alerts: list[Alert], load: Callable[[str], Any],
                    save: Callable[[str, Any], None]) -> None:
        """Name a roll-up alert's top children by $ impact against their own baselines, then learn (and
        let the roll-up's sibling prior, next to its child baselines, score its new children)."""
        series = f"{bucket.key}#children"
        state: ChildrenState | None = load(series)
        at = bucket.start.timestamp()
        if state is not None and (state.seq, state.at) >= (seq, at):
            return
        baselines = state.baselines if state is not None else ChildBaselines()
        alerts += self._siblings(bucket, seq, bucket.children, load, save)
        firing = [a for a in alerts if a.status == "firing" and a.series_key == bucket.key]
        if firing:
            top = [Contributor(key=c.key, impact_usd=c.impact, observed=c.observed, baseline=c.baseline)
                   for c in baselines.contributors(bucket.children, k=self.settings.root_cause_top)]
            for alert in firing:
                alert.contributors = top
        baselines.learn(bucket.children)
        save(series, ChildrenState(seq, at, baselines))

"""The worker's Prometheus metrics: every definition, in one registry of the worker's own.

``metrics`` (one per process, like the app) is what agents call, one line per message or batch; the
``/metrics`` view (:mod:`streams.web`) sets the gauges that are read rather than counted (consumer lag,
keys held per table, Slack outbox depth, readiness) and renders :attr:`Metrics.registry`. What each
metric means: ``docs/operations.md``.

Label values are bounded by the code, never taken from events: a dead letter's reason is reduced to
one of :data:`DEAD_LETTER_REASONS`, an alert is labelled by its metric and status (never its key).

>>> m = Metrics()
>>> m.usage_message("llm", 0.25)
>>> m.dead_letter("usage.llm", "native: timestamp: Field required")
>>> m.value("burnguard_usage_messages_total", source="llm"), m.value("burnguard_ingest_delay_seconds_count")
(1.0, 1.0)
>>> m.value("burnguard_dead_letters_total", topic="usage.llm", reason="invalid_event")
1.0
"""

from __future__ import annotations

import time
from collections import Counter as TallyCounter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.sources import FORMATS

#: Kinds of dead letter (the label ``reason``): what :func:`reason_class` maps a free-text reason to.
DEAD_LETTER_REASONS: tuple[str, ...] = (
    "invalid_json", "not_an_event", "too_large", "unknown_format", "invalid_event", "future_timestamp",
    "summary", "unknown_topic", "internal", "quarantined", "state_quarantined", "other")

#: Seconds: from a message's Kafka timestamp to normalize reading it; from a minute becoming closable to its
#: alert being stored. Sub-second up to ten minutes (anything later is a backlog, seen on the lag too).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def reason_class(reason: str) -> str:
    """The bounded kind of a dead letter's free-text reason (the ``reason`` label).

    >>> reason_class("invalid JSON: unexpected character: line 1 column 1 (char 0)")
    'invalid_json'
    >>> reason_class("openai: usage.prompt_tokens: Input should be a valid integer")
    'invalid_event'
    >>> reason_class("internal: aggregate: state of 'k' in table open_buckets cannot be used: x; kept for replay")
    'quarantined'
    """
    r = reason.lstrip()
    if r.startswith("invalid JSON"):
        return "invalid_json"
    if r.startswith(("expected a JSON object", "message value must be bytes")):
        return "not_an_event"
    if r.startswith("message of ") and " exceeds " in r:
        return "too_large"
    if r.startswith(("unknown format", "format not accepted", "unknown source")):
        return "unknown_format"
    if r.startswith("no source is read from topic"):
        return "unknown_topic"
    if r.startswith("state quarantined:"):
        return "state_quarantined"
    if r.startswith("internal:"):
        return "quarantined" if "cannot be used" in r and r.endswith("kept for replay") else "internal"
    if r.startswith("internal error"):
        return "internal"
    if " more rejected events in this message" in r:
        return "summary"
    if "timestamp" in r and " in the future" in r:
        return "future_timestamp"
    if r.startswith("event must be") or r.partition(": ")[0] in FORMATS:
        return "invalid_event"  # not an object, or "<format>: <field>: <problem>" from validation
    return "other"


class NormalizerStats(Protocol):
    """What :class:`EventsIn` reads: the Normalizer's counts (``format.<name>``: valid events per format)."""

    stats: Mapping[str, int]


class EventsIn(Collector):
    """``burnguard_events_in_total{source,format}`` and ``burnguard_events_rejected_total``, read at scrape time
    from the normalizers' own counts (:attr:`schemas.ingest.Normalizer.stats`): nothing per event."""

    def __init__(self) -> None:
        self.watched: list[NormalizerStats] = []

    def collect(self) -> Iterator[Metric]:
        by_format: TallyCounter[str] = TallyCounter()
        rejected = 0
        for n in list(self.watched):
            for name, count in list(n.stats.items()):
                if name.startswith("format."):
                    by_format[name.removeprefix("format.")] += count
                elif name == "rejected":
                    rejected += count
        events = CounterMetricFamily("burnguard_events_in", "Valid usage events normalized, by source and format",
                                     labels=["source", "format"])
        for fmt, count in sorted(by_format.items()):
            events.add_metric([FORMATS[fmt][0] if fmt in FORMATS else "unknown", fmt], count)
        yield events
        yield CounterMetricFamily("burnguard_events_rejected", "Usage events rejected by normalize (each is in a "
                                  "dead letter, alone or in its message's summary)", value=rejected)

    def describe(self) -> Iterable[Metric]:
        return []


class Metrics:
    """Every metric of the worker, registered in :attr:`registry` (not prometheus-client's global one)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.usage_messages = Counter("burnguard_usage_messages", "Kafka messages read from usage.* by normalize",
                                      ["source"], registry=r)
        self.ingest_delay = Histogram("burnguard_ingest_delay_seconds", "From a usage message's Kafka timestamp "
                                      "(its producer's send) to normalize reading it", buckets=LATENCY_BUCKETS,
                                      registry=r)
        self.dead_letters = Counter("burnguard_dead_letters", "Dead letters sent, by the topic they came from and "
                                    "the kind of reason", ["topic", "reason"], registry=r)
        self.consumer_lag = Gauge("burnguard_consumer_lag", "Messages behind the end of each partition this worker "
                                  "consumes (end offset - the group's committed offset), read at scrape time",
                                  ["topic", "partition"], registry=r)
        self.alert_latency = Histogram("burnguard_alert_latency_seconds", "From a firing alert's minute becoming "
                                       "closable (window end + allowed lateness) to the alert being stored; 0 when "
                                       "it fired before that (meaningful for live event times)",
                                       buckets=(0.0, *LATENCY_BUCKETS), registry=r)
        self.alerts = Counter("burnguard_alerts_stored", "Alerts stored (new or changed), by metric and status",
                              ["metric", "status"], registry=r)
        self.incident_notifications = Counter("burnguard_incident_notifications", "Incident notifications "
                                              "(open, update, resolve, reopen, repeat, ack, snooze)", ["kind"],
                                              registry=r)
        self.decisions = Counter("burnguard_decisions", "Guardrail decisions published on guardrail.decisions, by "
                                 "action", ["action"], registry=r)
        self.state_quarantined = Counter("burnguard_state_quarantined_messages", "Messages held back because a "
                                         "key's stored state could not be decoded, by table", ["table"], registry=r)
        self.state_quarantined_keys = Counter("burnguard_state_quarantined_keys", "Keys whose stored state could "
                                              "not be decoded (counted once per key), by table", ["table"],
                                              registry=r)
        self.live_keys = Gauge("burnguard_live_keys", "Allocation keys (and roll-ups) with state in open_buckets "
                               "on this worker", registry=r)
        self.live_series = Gauge("burnguard_live_series", "Allocation keys (and roll-ups) with detector state "
                                 "in monitors on this worker: one value per key holds all its series (up to one "
                                 "per metric, a roll-up's children and siblings); a key not yet rewritten since "
                                 "the layout before counts once per series", registry=r)
        self.table_keys = Gauge("burnguard_table_keys", "Keys held in each table's local store", ["table"],
                                registry=r)
        self.outbox_rows = Gauge("burnguard_slack_outbox_rows", "Slack outbox rows by status (pending + sending "
                                 "= depth; absent without a Slack token)", ["status"], registry=r)
        self.ready = Gauge("burnguard_ready", "1 when this worker is ready (/ready): partitions assigned, table "
                           "recovery done", registry=r)
        self.refresh_failures = Counter("burnguard_metrics_refresh_failures", "Scrape-time reads that failed "
                                        "(their gauges are left out until one succeeds)", ["part"], registry=r)
        self.events_in = EventsIn()
        r.register(self.events_in)
        self._usage_children: dict[str, Any] = {}

    # -- one-line calls for the agents -----------------------------------------------------------
    def usage_message(self, source: str, delay_seconds: float) -> None:
        """normalize read one usage message, ``delay_seconds`` after its Kafka timestamp."""
        child = self._usage_children.get(source)
        if child is None:
            child = self._usage_children[source] = self.usage_messages.labels(source)
        child.inc()
        self.ingest_delay.observe(max(delay_seconds, 0.0))

    def watch_normalizer(self, normalizer: NormalizerStats) -> None:
        """Count the events this normalizer validates (read from its stats at scrape time)."""
        self.events_in.watched.append(normalizer)

    def dead_letter(self, topic: str, reason: str) -> None:
        self.dead_letters.labels(topic, reason_class(reason)).inc()

    def quarantined(self, table: str, new_key: bool) -> None:
        self.state_quarantined.labels(table).inc()
        if new_key:
            self.state_quarantined_keys.labels(table).inc()

    def alert_stored(self, metric: str, status: str, closable_at: float, now: Callable[[], float] = time.time) -> None:
        """An alert was stored; a firing one's latency runs from ``closable_at`` (epoch seconds)."""
        self.alerts.labels(metric, status).inc()
        if status == "firing":
            self.alert_latency.observe(max(now() - closable_at, 0.0))

    def incident_notification(self, kind: str) -> None:
        self.incident_notifications.labels(kind).inc()

    def decision(self, action: str) -> None:
        self.decisions.labels(action).inc()

    def table_sizes(self, open_buckets: Sized, monitors: Sized, tables: Mapping[str, Sized]) -> None:
        """Set the size gauges (scrape time): ``live_keys`` and ``live_series`` count the values of
        ``open_buckets`` and ``monitors`` (one per key: nothing is decoded), ``table_keys`` each table's.

        >>> m = Metrics()
        >>> m.table_sizes({"k": b""}, {"k": b"", "j": b""}, {"monitors": {"k": b"", "j": b""}})
        >>> m.value("burnguard_live_keys"), m.value("burnguard_live_series")
        (1.0, 2.0)
        >>> m.value("burnguard_table_keys", table="monitors")
        2.0
        """
        self.live_keys.set(len(open_buckets))
        self.live_series.set(len(monitors))
        for name, table in tables.items():
            self.table_keys.labels(name).set(len(table))

    # -- read side -------------------------------------------------------------------------------
    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float | None:
        """One sample's value (tests and doctests)."""
        return self.registry.get_sample_value(name, labels)


#: The worker's metrics (part of the process, like the app; never persisted).
metrics = Metrics()

"""incidents: alerts grouped into incidents, their records stored, their Slack calls in the outbox.

Data flow::

    alerts -> forward_alerts -> incidents.alerts (1 partition: every alert of a cause meets in one place;
              alerts are few) -> incidents (table incident_state: the dispatcher's IncidentBook)
                                  -> incidents table (DB) and slack_outbox rows (DB)
    incidents_tick (timer, leader) -> incidents.alerts: moves event time on when no alert comes, applies
              the acknowledge / snooze / resolve commands queued in the DB by Slack buttons and the CLI
    slack_delivery (timer, every worker) -> Slack, from the outbox (claims keep each row to one sender)

Effects (DB rows, outbox rows) are written before the state is saved, and are idempotent (records
by revision, outbox rows by key), so a crash in between re-derives the same notifications and adds
nothing twice. Event time: each alert's own bucket end; when none comes, wall time elapsed since the
last one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import faust
import orjson

from detectors.incidents.dispatch import Dispatcher, GroupingConfig, Notification
from detectors.incidents.state import IncidentBook
from guardrails.budget_book import BudgetBook
from schemas.alert import Alert
from sinks.budget_store import BudgetStore
from sinks.incident_budget import IncidentBudgets
from sinks.incident_store import IncidentStore
from sinks.retry import until_stored
from sinks.slack.delivery import SlackDelivery, make_client
from sinks.slack.interactions import SlackInteractions
from sinks.slack.notify import IncidentSink
from sinks.slack.outbox import SlackOutbox
from sinks.slack.routing import load_routing
from streams.agents.guard import guarded, retrying
from streams.metrics import metrics
from streams.settings import Settings
from streams.state.codec import state_type
from streams.state.tables import TypedTable
from streams.topology import alerts_topic, app, settings

log = logging.getLogger("burnguard")

INCIDENT_ALERTS_TOPIC = "incidents.alerts"
KEY, TICK = b"incidents", b"tick"
TICK_SECONDS = 2.0


@state_type("incidents", 1)
@dataclass(slots=True)
class IncidentsState:
    """The dispatcher's book (its dict encoding) and the wall time its clock last moved with an alert."""

    book: dict[str, Any]
    wall: float


def grouping_config(s: Settings) -> GroupingConfig:
    return GroupingConfig(group_by=tuple(s.incident_group_by),
                          group_wait=timedelta(seconds=s.incident_group_wait_seconds),
                          group_interval=timedelta(seconds=s.incident_group_interval_seconds),
                          repeat_interval=timedelta(seconds=s.incident_repeat_interval_seconds))


incident_alerts_topic = app.topic(INCIDENT_ALERTS_TOPIC, key_type=str, key_serializer="raw", value_serializer="raw",
                                  partitions=1, internal=True)
incident_state = TypedTable(app.Table("incident_state", value_type=bytes, partitions=1), "incident_state",
                            IncidentsState)


class Incidents:
    """The agent's work, testable without a broker: ``table`` maps str to codec bytes."""

    def __init__(self, table: TypedTable[IncidentsState], sink: IncidentSink, commands: IncidentStore,
                 config: GroupingConfig) -> None:
        self.table, self.sink, self.commands, self.config = table, sink, commands, config

    def _load(self) -> tuple[Dispatcher, float]:
        st = self.table.get(KEY.decode())
        book = IncidentBook.from_dict(st.book) if st is not None else IncidentBook()
        return Dispatcher(self.config, book), st.wall if st is not None else time.time()

    def _save(self, d: Dispatcher, wall: float) -> None:
        self.table.put(KEY.decode(), IncidentsState(d.book.to_dict(), wall))

    async def _publish(self, notes: list[Notification]) -> None:
        for note in notes:
            rec = await until_stored(self.sink.publish, note)
            metrics.incident_notification(note.kind)
            log.warning("INCIDENT %s %s %s (%d alerts)", note.kind, rec.id, rec.status, rec.alert_count)

    async def handle(self, key: bytes | str | None, value: bytes) -> None:
        k = key.encode() if isinstance(key, str) else key
        if k == TICK:
            await self.tick(orjson.loads(value)["wall"])
            return
        alert = Alert.model_validate_json(value)
        d, wall = self._load()
        before = d.book.now
        notes = d.observe(alert)
        await self._publish(notes)
        self._save(d, time.time() if d.book.now != before else wall)

    async def tick(self, wall: float) -> None:
        d, last_wall = self._load()
        pending = await asyncio.to_thread(self.commands.pending_commands)
        notes: list[Notification] = []
        for _, cmd in pending:
            notes += d.command(cmd)
        if d.book.now is not None:  # no alert since last_wall: event time moves on with the wall clock
            notes += d.advance(d.book.now + timedelta(seconds=max(wall - last_wall, 0.0)))
        await self._publish(notes)
        if notes or pending:  # else nothing to keep: the next tick advances from the same point, further
            self._save(d, wall)
        await until_stored(self.commands.mark_applied, [i for i, _ in pending])


def make_sink(s: Settings) -> IncidentSink:
    """The incident store and the budgets' snapshots, and with a Slack token the outbox and routing (a bad
    routing file fails here)."""
    store = IncidentStore(s.database_url)
    budgets = IncidentBudgets(BudgetBook.load(s.budgets), BudgetStore(s.database_url))
    if s.slack_token is None:
        return IncidentSink(store, runbook_url=s.runbook_url, budgets=budgets)
    routing = load_routing(s.slack_routing, s.slack_default_channel)
    return IncidentSink(store, SlackOutbox(s.database_url), routing, runbook_url=s.runbook_url, budgets=budgets)


@app.agent(alerts_topic)
async def forward_alerts(stream: faust.StreamT) -> None:
    """Every alert to the one incidents partition."""
    async def one(event: faust.EventT) -> None:
        await retrying(lambda: incident_alerts_topic.send(key=KEY, value=event.value))

    async for event in stream.events():
        await guarded("forward_alerts", event, one)


@app.agent(incident_alerts_topic)
async def incidents(stream: faust.StreamT) -> None:
    """Group alerts into incidents; store them, and queue their Slack messages."""
    sink = make_sink(settings)
    handler = Incidents(incident_state, sink, sink.store, grouping_config(settings))

    async def one(event: faust.EventT) -> None:
        await handler.handle(event.key, event.value)

    async for event in stream.events():
        await guarded("incidents", event, one)


@app.timer(interval=TICK_SECONDS, on_leader=True)
async def incidents_tick() -> None:
    """Move the incidents' event time on, and have queued commands applied."""
    await retrying(lambda: incident_alerts_topic.send(key=TICK, value=orjson.dumps({"wall": time.time()})))


#: Every worker delivers the outbox (each row is claimed by one); None without a Slack token.
delivery = (SlackDelivery(SlackOutbox(settings.database_url),
                          make_client(settings.slack_token.get_secret_value(), settings.slack_api_url))
            if settings.slack_token is not None else None)


@app.timer(interval=0.5)
async def slack_delivery() -> None:
    """One pass over the outbox (the delivery paces, backs off and honours Retry-After itself)."""
    if delivery is None:
        return
    try:
        await asyncio.to_thread(delivery.step)
    except Exception:  # noqa: BLE001 - e.g. the database is down: the next pass tries again
        log.exception("Slack delivery pass failed")


#: Slack interactivity; None without a signing secret.
interactions = (SlackInteractions(settings.slack_signing_secret.get_secret_value(), settings.database_url)
                if settings.slack_signing_secret is not None else None)


async def slack_interaction(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """``POST /slack/interactions``: (status, text); 503 when no signing secret is configured."""
    if interactions is None:
        return 503, "Slack interactivity is not configured (BURNGUARD_SLACK_SIGNING_SECRET)"
    return await asyncio.to_thread(interactions.handle, body, headers)

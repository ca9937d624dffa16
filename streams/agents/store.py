"""Store agents: alerts (idempotent by fingerprint) and dead letters (idempotent by fingerprint)."""

from __future__ import annotations

import logging

import faust

from schemas.alert import Alert
from schemas.deadletter import DeadLetter
from schemas.text import safe_terminal
from sinks.retry import until_stored
from sinks.store import AlertStore
from streams.agents.guard import guarded
from streams.metrics import metrics
from streams.settings import DEADLETTER_TOPIC
from streams.topology import alerts_topic, app, deadletter_topic, settings

log = logging.getLogger("burnguard")


@app.agent(alerts_topic)
async def store_alerts(stream: faust.StreamT) -> None:
    """Persist alerts idempotently (a redelivered alert is a no-op) and log them."""
    store = AlertStore(settings.database_url)

    async def store_one(event: faust.EventT) -> None:
        alert = Alert.model_validate_json(event.value)
        if await until_stored(store.save_alert, alert):
            metrics.alert_stored(alert.metric, alert.status,
                                 closable_at=alert.window_end.timestamp() + settings.allowed_lateness_seconds)
            log.warning("ALERT %s %s %s observed=%.4g baseline=%.4g score=%.6f", alert.status,
                        safe_terminal(alert.series_key), alert.metric, alert.observed, alert.baseline, alert.score)

    try:
        async for event in stream.events():
            await guarded("store_alerts", event, store_one)
    finally:
        store.close()


#: How often the leader purges dead letters older than BURNGUARD_DEAD_LETTER_RETENTION_DAYS.
PURGE_EVERY_SECONDS = 3600.0


@app.timer(interval=PURGE_EVERY_SECONDS, on_leader=True)
async def purge_dead_letters() -> None:
    """Keep dead letters for the retention period, then drop them (the store is not an archive of usage)."""
    store = AlertStore(settings.database_url)
    try:
        n = await until_stored(store.purge_dead_letters, settings.dead_letter_retention_days)
        if n:
            log.warning("purged %d dead letter(s) older than %g day(s)", n, settings.dead_letter_retention_days)
    except Exception:  # noqa: BLE001 - a timer must keep ticking; the next one retries
        log.exception("dead-letter purge failed")
    finally:
        store.close()


@app.agent(deadletter_topic)
async def store_dead_letters(stream: faust.StreamT) -> None:
    """Keep every dead letter queryable (``burnguard deadletter list``)."""
    store = AlertStore(settings.database_url)

    async def store_one(event: faust.EventT) -> None:
        try:
            dl = DeadLetter.model_validate_json(event.value)
        except ValueError as err:  # a foreign message on the dead-letter topic: keep it, wrapped
            dl = DeadLetter.from_bytes(event.value or b"", reason=f"unreadable dead letter: {err}",
                                       topic=DEADLETTER_TOPIC, partition=event.message.partition,
                                       offset=event.message.offset)
        await until_stored(store.save_dead_letter, dl)

    try:
        async for event in stream.events():
            try:
                await store_one(event)
            except Exception:  # noqa: BLE001 - quarantining to its own topic would loop: log and go on
                log.exception("dead letter at %s@%s could not be stored", event.message.partition,
                              event.message.offset)
    finally:
        store.close()

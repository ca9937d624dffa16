"""The worker's web views: ``GET /health`` (alive, and what this worker holds), ``GET /ready`` (partitions
assigned, table recovery done), ``GET /metrics`` (Prometheus) and ``POST /slack/interactions`` (Slack buttons
and modals). Meaning of each: ``docs/operations.md``."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from streams.agents import incidents
from streams.agents.guard import quarantine
from streams.agents.incidents import slack_interaction
from streams.lag import LagReader
from streams.metrics import metrics
from streams.topology import app, monitors_raw, open_buckets, settings

log = logging.getLogger("burnguard")

#: Table sizes are counted at most this often (a disk-backed store counts by iterating its keys).
TABLE_SIZES_EVERY_SECONDS = 30.0
#: A scrape waits at most this long for the outbox count (the database may be down).
OUTBOX_TIMEOUT_SECONDS = 3.0


def assigned_partitions() -> int:
    """Partitions assigned to this worker's consumer (0 before it has joined the group)."""
    try:
        return len(app.consumer.assignment())
    except Exception:  # noqa: BLE001 - ConsumerNotStarted and the like: nothing is assigned yet
        return 0


def readiness() -> dict[str, Any]:
    """Ready = the group gave this worker partitions and its tables are recovered (no rebalance under way)."""
    recovered = app.tables.recovery.completed.is_set()
    rebalancing = bool(app.rebalancing)
    partitions = assigned_partitions()
    return {"ready": recovered and not rebalancing and partitions > 0, "assigned_partitions": partitions,
            "recovery_done": recovered, "rebalancing": rebalancing}


@app.page("/health")
async def health(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
    """Liveness (200 while the web server answers) and what this worker holds: for probes and people."""
    return web.json({
        "status": "ok",
        "app": settings.app_id,
        "agents": {name: not agent.should_stop for name, agent in app.agents.items()},
        "tables": {name: len(table) for name, table in app.tables.items()},
        "assigned_partitions": assigned_partitions(),
        "quarantined_state": quarantine.summary(),
    })


@app.page("/ready")
async def ready(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
    """Readiness: 200 when ready, else 503 with what is missing."""
    state = readiness()
    return web.json(state, status=200 if state["ready"] else 503)


class Scrape:
    """What ``/metrics`` reads at scrape time into the gauges of :data:`streams.metrics.metrics`."""

    def __init__(self) -> None:
        self.lag: LagReader | None = None
        self.sizes_at = -TABLE_SIZES_EVERY_SECONDS

    def _lag_reader(self) -> LagReader:
        if self.lag is None:
            self.lag = LagReader.of_brokers(settings.app_id, app.conf.broker, settings.kafka_python_config())
        return self.lag

    async def refresh(self) -> None:
        metrics.ready.set(1 if readiness()["ready"] else 0)
        await self._consumer_lag()
        now = time.monotonic()
        if now - self.sizes_at >= TABLE_SIZES_EVERY_SECONDS:
            self.sizes_at = now
            metrics.table_sizes(open_buckets, monitors_raw, app.tables)
        await self._outbox()

    async def _consumer_lag(self) -> None:
        try:
            lags = await self._lag_reader().read(app.consumer, app.tables.changelog_topics)
        except Exception as err:  # noqa: BLE001 - no consumer yet, or the broker did not answer in time
            metrics.consumer_lag.clear()
            metrics.refresh_failures.labels("consumer_lag").inc()
            log.debug("consumer lag not read: %r", err)
            return
        metrics.consumer_lag.clear()  # partitions revoked since the last scrape disappear
        for (topic, partition), lag in lags.items():
            metrics.consumer_lag.labels(topic, str(partition)).set(lag)

    async def _outbox(self) -> None:
        if incidents.delivery is None:
            return  # no Slack token: there is no outbox
        try:
            counts = await asyncio.wait_for(asyncio.to_thread(incidents.delivery.outbox.counts),
                                            OUTBOX_TIMEOUT_SECONDS)
        except Exception as err:  # noqa: BLE001 - the database is down: leave the rows out of this scrape
            metrics.outbox_rows.clear()
            metrics.refresh_failures.labels("slack_outbox").inc()
            log.debug("Slack outbox not counted: %r", err)
            return
        metrics.outbox_rows.clear()
        for status in ("pending", "sending", "failed", *counts):
            metrics.outbox_rows.labels(status).set(counts.get(status, 0))

    async def close(self) -> None:
        if self.lag is not None:
            await self.lag.close()


scrape = Scrape()


@app.page("/metrics")
async def prometheus_metrics(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
    """The worker's metrics in the Prometheus text format."""
    await scrape.refresh()
    return web.bytes(metrics.render(), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


@app.on_before_shutdown.connect
async def _close_scrape(app: faust.App, **kwargs: Any) -> None:
    await scrape.close()


@app.page("/slack/interactions")
class SlackInteractionsView(faust.web.View):
    """Slack's interactivity callbacks (Acknowledge, Snooze, Resolve): verified, recorded, queued; answered at once."""

    async def post(self, request: faust.web.Request) -> faust.web.Response:
        status, text = await slack_interaction(await request.read(), dict(request.headers))
        # a modal's answer (``{"response_action": "errors", ...}``) must reach Slack as JSON; the rest is text
        content_type = "application/json" if text.startswith("{") else None
        return self.text(text, status=status, content_type=content_type)

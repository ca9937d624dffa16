"""The worker's web views: ``GET /health`` (agents, tables, partitions, quarantined state, overflow) and
``POST /slack/interactions`` (Slack buttons; importing it registers the incidents agents)."""

from __future__ import annotations

import faust

from streams.agents.guard import quarantine
from streams.agents.incidents import slack_interaction
from streams.topology import app, settings


@app.page("/health")
async def health(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
    """Liveness and what this worker holds: for Kubernetes probes and people."""
    return web.json({
        "status": "ok",
        "app": settings.app_id,
        "agents": {name: not agent.should_stop for name, agent in app.agents.items()},
        "tables": {name: len(table) for name, table in app.tables.items()},
        "assigned_partitions": len(app.consumer.assignment()) if app.consumer else 0,
        "quarantined_state": quarantine.summary(),
    })


@app.page("/slack/interactions")
class SlackInteractionsView(faust.web.View):
    """Slack's interactivity callbacks (Acknowledge, Snooze, Resolve): verified, recorded, queued; answered at once."""

    async def post(self, request: faust.web.Request) -> faust.web.Response:
        status, text = await slack_interaction(await request.read(), dict(request.headers))
        return self.text(text, status=status)

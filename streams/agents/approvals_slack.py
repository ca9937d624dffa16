"""approvals_slack: escalated overruns reach their approvers in Slack; decisions made anywhere show there.

Data flow::

    guardrail.decisions (keyed by budget) -> post_approval_requests: each ``escalated`` decision (the
        policy's, or a deadline's escalation to the next group) -> the request message, the budget chart
        (from the budget's BurnTracker in table burn_trackers: co-partitioned with the decisions by
        budget id; else from the stored overrun) -> slack_outbox rows (post, upload); an escalation
        also updates the previous request's message and notes it in its thread
    approval_outcomes (leader timer) -> every request decided lately by any path (Slack, CLI, deadline,
        expiry) gets its outcome in Slack (chat.update + a thread note), once: outbox keys
    POST /slack/interactions -> SlackInteractions (signature, record, replay) -> ApprovalInteractions:
        Approve / Deny open the modal; its submission decides with GuardrailStore.approve/deny (the CLI's
        path); the decision reaches guardrail.decisions with the guardrails module's next publish (~1 s)

Delivery is the incidents module's ``slack_delivery`` timer (one outbox for every Slack call). Without
``BURNGUARD_SLACK_TOKEN`` nothing here talks to Slack: requests stay in the store and the CLI.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import faust
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from guardrails.approvals import ApprovalRequest
from guardrails.approvers import Approvers
from guardrails.burn_tracker import BurnTracker
from guardrails.spend_series import series_from_overrun, series_from_tracker
from schemas.decision import Decision
from schemas.overrun import Overrun
from sinks.charts.budget_chart import render_budget_chart
from sinks.guardrail_store import GuardrailStore
from sinks.retry import until_stored
from sinks.slack.approval_interactions import ApprovalInteractions
from sinks.slack.approval_notify import ApprovalNotifier
from sinks.slack.delivery import make_client
from sinks.slack.outbox import SlackOutbox
from sinks.slack.routing import valid_channel
from streams.agents import incidents
from streams.agents.guard import guarded
from streams.settings import Settings
from streams.state.tables import StateQuarantined, TypedTable
from streams.state.values import BudgetState
from streams.topology import app, burn_trackers, decisions_topic, settings

log = logging.getLogger("burnguard")

#: Outcomes are looked for this often (seconds) among requests decided within LOOKBACK.
OUTCOME_TICK_SECONDS = 5.0
LOOKBACK = timedelta(days=7)
#: ``views.open`` must happen within the 3 s a trigger id lives: interactive calls time out sooner.
INTERACTIVE_TIMEOUT_S = 2


def tracker_of(table: TypedTable[BudgetState], budget_id: str) -> BurnTracker | None:
    """The budget's tracker if this worker holds it (None: not here, or its state is quarantined)."""
    try:
        state = table.get(budget_id)
    except StateQuarantined:
        return None
    return state.tracker if state is not None else None


def chart_png(req: ApprovalRequest, ov: Overrun | None, tracker: BurnTracker | None,
              effective_cap_usd: float | None) -> bytes | None:
    """The request's chart: the tracker's series when it is in the request's period, else the overrun's."""
    if tracker is not None and tracker.period_start == req.period_start and tracker.now is not None:
        series = series_from_tracker(tracker, effective_cap_usd)
    elif ov is not None:
        series = series_from_overrun(ov, effective_cap_usd)
    else:
        return None
    return render_budget_chart(series)


@dataclass(frozen=True, slots=True)
class Prepared:
    request: ApprovalRequest
    previous: ApprovalRequest | None
    overrun: Overrun | None
    effective_cap_usd: float | None
    posted: bool


class ApprovalRequests:
    """The agent's work, testable without a broker: ``trackers`` maps budget ids to codec bytes."""

    def __init__(self, store: GuardrailStore, notifier: ApprovalNotifier, trackers: TypedTable[BudgetState]) -> None:
        self.store, self.notifier, self.trackers = store, notifier, trackers

    def _prepare(self, d: Decision) -> Prepared | None:
        """The escalated request, the one it replaces (if any), its overrun and the budget's cap with grants."""
        req = self.store.approval(d.approval_id or "")
        if req is None:
            log.warning("decision %s names approval %s, which the store does not have", d.decision_id, d.approval_id)
            return None
        previous = self.store.approval(req.previous_id) if req.previous_id else None
        ov = self.store.overrun(req.overrun_id)
        cap = self.store.effective_cap(req.budget_id, ov.cap_usd) if ov is not None else None
        return Prepared(req, previous, ov, cap, self.notifier.posted(req.approval_id))

    async def handle(self, value: bytes) -> list[str]:
        """One ``guardrail.decisions`` message; the outbox keys it added (a redelivery: none)."""
        d = Decision.model_validate_json(value)
        if d.action != "escalated" or not d.approval_id:
            return []
        p = await until_stored(self._prepare, d)
        if p is None:
            return []
        added: list[str] = []
        if not p.posted:  # a redelivered decision renders nothing again
            png = await asyncio.to_thread(chart_png, p.request, p.overrun, tracker_of(self.trackers, d.budget_id),
                                          p.effective_cap_usd)
            added += await until_stored(lambda r: self.notifier.request(r, png), p.request)
        if p.previous is not None:
            added += await until_stored(self.notifier.outcome, p.previous)
        return added


@dataclass(frozen=True, slots=True)
class SlackApprovals:
    """What this module talks to: the store, the outbox's notifier and the interactivity handler."""

    store: GuardrailStore
    notifier: ApprovalNotifier
    interactions: ApprovalInteractions | None


@lru_cache(maxsize=1)
def _approvers() -> Approvers:
    return Approvers.load(settings.approvers)  # checked by the worker at start (file, line, field)


def make_slack_approvals(s: Settings) -> SlackApprovals | None:
    """The wiring with a Slack token (None without one: requests stay in the store and the CLI). Approvers
    are loaded when first needed; interactivity also needs the signing secret."""
    if s.slack_token is None:
        return None
    store = GuardrailStore(s.database_url)
    default = valid_channel(s.slack_default_channel) if s.slack_default_channel else None
    notifier = ApprovalNotifier(SlackOutbox(s.database_url), store, _approvers, default)
    inter = None
    if s.slack_signing_secret is not None:
        client = make_client(s.slack_token.get_secret_value(), s.slack_api_url, timeout=INTERACTIVE_TIMEOUT_S)
        inter = ApprovalInteractions(store, _approvers, client, notifier)
    return SlackApprovals(store, notifier, inter)


slack_approvals = make_slack_approvals(settings)
# one interactivity URL for every Slack button: the incidents module's endpoint asks this handler first
if slack_approvals is not None and slack_approvals.interactions is not None and incidents.interactions is not None:
    incidents.interactions.handlers.append(slack_approvals.interactions)


async def _schema_ready(store: GuardrailStore) -> None:
    """Wait until the store's tables exist: the worker upgrades the schema at start, decide_overruns after a
    database outage. (Never upgraded here too: two Alembic upgrades at once in one process break each other.)"""
    warned = False
    while True:
        try:
            if await asyncio.to_thread(lambda: inspect(store.engine).has_table("guardrail_approvals")):
                return
        except SQLAlchemyError:
            pass  # the database is down: wait like every writer
        if not warned:
            log.warning("approvals_slack: waiting for the guardrail tables (schema upgrade)")
            warned = True
        await asyncio.sleep(1.0)


@app.agent(decisions_topic)
async def post_approval_requests(stream: faust.StreamT) -> None:
    """Escalated decisions -> the request (and chart) in the approver group's channel, via the outbox."""
    handler = None
    if slack_approvals is not None:
        await _schema_ready(slack_approvals.store)
        handler = ApprovalRequests(slack_approvals.store, slack_approvals.notifier, burn_trackers)

    async def one(event: faust.EventT) -> None:
        if handler is not None:
            await handler.handle(event.value)

    async for event in stream.events():
        await guarded("post_approval_requests", event, one)


@app.timer(interval=OUTCOME_TICK_SECONDS, on_leader=True)
async def approval_outcomes() -> None:
    """Requests decided lately (any path: Slack, CLI, deadline) get their outcome in Slack, once."""
    if slack_approvals is None:
        return
    try:
        added = await until_stored(slack_approvals.notifier.sync, datetime.now(timezone.utc) - LOOKBACK)
        if added:
            log.warning("SLACK approval outcomes queued: %s", ", ".join(added))
    except Exception:  # noqa: BLE001 - a timer must keep ticking; the next tick retries
        log.exception("approval outcomes: tick failed")

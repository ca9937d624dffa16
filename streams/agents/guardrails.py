"""guardrails: overruns meet the policy once, decisions go to ``guardrail.decisions``, deadlines are applied.

- ``decide_overruns`` consumes ``guardrail.overruns`` (keyed by budget id, JSON
  :class:`~schemas.overrun.Overrun`), decides each once per ``overrun_id`` in the store
  (:meth:`sinks.guardrail_store.GuardrailStore.decide`; a redelivery returns the stored
  decision) and publishes the store's unpublished decisions (an outbox: a crash between the
  store and the send re-sends on the next message or tick; consumers de-duplicate on
  ``decision_id``).
- ``guardrail_deadlines`` (leader timer, every ``DEADLINE_TICK_SECONDS``) applies passed
  deadlines (expire, approve, deny, escalate) and publishes what they and ``burnguard approve``
  decided, so a deadline is acted on within a minute.

The policy (``BURNGUARD_POLICY``) and approvers (``BURNGUARD_APPROVERS``) are loaded by
:func:`load_guardrails`; call it at worker start so a bad file stops the worker with file, line
and field.
"""

from __future__ import annotations

import logging

import faust

from guardrails.approvers import Approvers
from guardrails.policy import Policy, load_policy
from schemas.overrun import Overrun
from schemas.text import safe_terminal
from sinks.guardrail_store import GuardrailStore
from sinks.migrations import upgrade
from sinks.retry import until_stored
from streams.agents.guard import guarded
from streams.metrics import metrics
from streams.topology import app, decisions_topic, overruns_topic, settings

log = logging.getLogger("burnguard")

#: Deadlines are checked this often (seconds), so a passed one is applied within a minute.
DEADLINE_TICK_SECONDS = 15.0


def load_guardrails() -> tuple[Policy, Approvers]:
    """The policy, checked against the approver groups; raises ``ConfigError`` (file:line: field: problem)."""
    approvers = Approvers.load(settings.approvers)
    return load_policy(settings.policy, groups=approvers.names()), approvers


async def publish_pending(store: GuardrailStore) -> int:
    """Send every decision not yet on ``guardrail.decisions`` (keyed by budget id), then mark them."""
    pending = await until_stored(lambda _: store.decisions(unpublished=True), None)
    for d in pending:
        await decisions_topic.send(key=d.budget_id.encode(), value=d.model_dump_json().encode())
        metrics.decision(d.action)
    if pending:
        await until_stored(store.mark_published, [d.decision_id for d in pending])
    return len(pending)


@app.agent(overruns_topic)
async def decide_overruns(stream: faust.StreamT) -> None:
    """Each overrun meets the policy once; its decision is stored, audited and published."""
    policy, _ = load_guardrails()
    await until_stored(upgrade, settings.database_url)  # waits while the database is down
    store = GuardrailStore(settings.database_url)

    async def one(event: faust.EventT) -> None:
        ov = Overrun.model_validate_json(event.value)  # bad JSON raises: the guard dead-letters it
        res = await until_stored(lambda o: store.decide(o, policy), ov)
        if res.created:
            d = res.decision
            log.warning("GUARDRAIL %s budget=%s rule=%s action=%s amount=%s", d.overrun_id,
                        safe_terminal(d.budget_id), safe_terminal(d.rule), d.action, d.amount_usd)
        await publish_pending(store)

    try:
        async for event in stream.events():
            await guarded("decide_overruns", event, one)
    finally:
        store.close()


@app.timer(interval=DEADLINE_TICK_SECONDS, on_leader=True)
async def guardrail_deadlines() -> None:
    """Apply passed approval deadlines, then publish what they (and the CLI's approvals) decided."""
    _, approvers = load_guardrails()
    store = GuardrailStore(settings.database_url)
    try:  # the schema is upgraded by decide_overruns at start (a tick before that fails and is retried)
        applied = await until_stored(lambda a: store.apply_due(a), approvers)
        for a in applied:
            log.warning("GUARDRAIL approval %s %s", a.transition.after.approval_id, a.transition.event)
        await publish_pending(store)
    except Exception:  # noqa: BLE001 - a timer must keep ticking; the next tick retries
        log.exception("guardrail deadlines: tick failed")
    finally:
        store.close()

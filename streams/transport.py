"""The worker's Kafka transport: Faust's aiokafka transport with three corrections a table's state needs.

1. **Changelog ends checked** (:mod:`streams.end_offsets`): table recovery reads each changelog to the log
   end a fetch reports, not to a short ListOffsets answer (the embedded broker's).
2. **A partition nobody committed starts at its beginning.** After a rebalance Faust seeks each stream
   partition to the group's committed offset, but aiokafka's ``seek_to_committed`` leaves the position where
   it is when nothing was committed. A worker that takes over a partition its previous owner never committed
   (``kill -9`` within the first commit interval) could then start wherever its fetcher stood (seen: near the
   partition's end, every earlier message lost: ``tests/e2e/test_faults.py``). With
   ``consumer_auto_offset_reset = "earliest"`` (Faust's default) such a partition is sought to its earliest
   offset; what was applied already is skipped downstream by origin (:mod:`streams.state.applied`).
3. **Nothing is delivered from a newly assigned partition before that seek.** Faust's recovery resumes the
   flow for the changelogs, then resumes the stream partitions and only then seeks them, so the fetcher
   delivers a moment's messages from wherever it stood. A key that applied one of those first remembered its
   (costs) offset, and every message before it, delivered again after the seek, looked already applied: in a
   kill run the replacement lost the records of the survivor's producer on the victim's costs partitions
   (the replacement's own producers' were re-sent and came back). Every stream partition is now *held* from
   its assignment until the seek: its read offset is set past any offset, so Faust's delivery loop drops
   what the fetcher brings (its rule for messages below the read offset), and ``perform_seek`` replaces it
   with the committed offset (or none), from where the sought fetcher reads again. (Pausing the partitions
   around the seek instead stalled a restarted worker for good: tests/e2e/test_restart.py, 3 of 3 under load.)

Set :class:`WorkerTransport` as ``app.transport`` before any topic is declared (``streams.topology``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.end_offsets import CheckedEnds, is_changelog

log = logging.getLogger("burnguard")


#: Read offset of a stream partition between its assignment and its seek: above any offset, so Faust drops
#: every message the fetcher delivers from it meanwhile.
HELD = 2**62


class WorkerConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with changelog ``highwaters`` checked, uncommitted partitions read from
    their beginning, and nothing delivered from a newly assigned partition before it is sought."""

    async def on_partitions_assigned(self, assigned: set[Any], generation_id: int = 0) -> None:
        self.hold(assigned)
        await super().on_partitions_assigned(assigned, generation_id)

    def hold(self, assigned: set[Any]) -> None:
        """Hold every stream partition of ``assigned`` until :meth:`perform_seek` (Faust's) releases it; only
        where every partition is then sought (``earliest``: see :meth:`seek_to_committed`), so what the fetcher
        brought meanwhile is read again."""
        if self.app.conf.consumer_auto_offset_reset != "earliest":
            return
        for tp in assigned:
            if not is_changelog(tp.topic):
                self._read_offset[tp] = HELD

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

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
3. **Stream records in offset order** (:mod:`streams.in_order`): Faust resumes the stream partitions just
   before it seeks them, and hands on whatever the fetcher returns meanwhile. A replacement worker's fetcher
   has been seen to start a never-committed ``costs`` partition at 45, not 0 (a kill run of
   ``tests/e2e/test_faults.py``, 2026-12-07): applied first, such a record makes the records before it look
   applied. A record ahead of the offset due on its partition is now held back and the partition sought to
   that offset, so no agent applies a record before the ones that precede it. This was the suspected cause of
   the kill case's lost records (41-82 on three keys, 1 run in 7), but not the only one: the same loss
   recurred once with it in place (run 8 of an e2e loop, 2026-12-08, no stale fetch logged), so another path
   remains open.

Set :class:`WorkerTransport` as ``app.transport`` before any topic is declared (``streams.topology``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.end_offsets import CheckedEnds, is_changelog
from streams.in_order import InOrder

log = logging.getLogger("burnguard")


class WorkerConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with changelog ``highwaters`` checked, uncommitted partitions read from
    their beginning, and stream records handed on in offset order from where each partition starts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_order = InOrder()
        self._fetches = 0
        self._changelog: dict[Any, bool] = {}

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        """Faust's records, each stream record checked by :class:`streams.in_order.InOrder`."""
        async for tp, message in self.in_order_records(super().getmany(timeout)):
            yield tp, message

    async def in_order_records(self, records: AsyncIterator[tuple[Any, Any]]) -> AsyncIterator[tuple[Any, Any]]:
        """``records`` (one fetch) with stream records ahead of their partition's due offset held back (and the
        partition sought back); changelogs are recovery's: handed on unchanged."""
        self._fetches += 1
        fetch, guard, changelog = self._fetches, self.in_order, self._changelog
        async for tp, message in records:
            is_log = changelog.get(tp)
            if is_log is None:
                is_log = changelog[tp] = is_changelog(tp.topic)
            if is_log:
                yield tp, message
                continue
            offset = message.offset
            if not guard.knows(tp):
                guard.start(tp, await self.start_offset(tp, offset))
            due = guard.due(tp)
            verdict = guard.check(tp, offset, fetch)
            if verdict == "deliver":
                yield tp, message
            elif verdict == "seek":
                log.info("%s/%s: offset %s fetched before %s (a stale fetch position): seeking back to %s",
                         tp.topic, tp.partition, offset, due, due)
                try:
                    await self.seek_wait({tp: due})
                except Exception as err:  # noqa: BLE001 - revoked meanwhile, or the broker is away: held back
                    log.warning("%s/%s: seeking back to %s failed: %r", tp.topic, tp.partition, due, err)
                else:
                    guard.sought(tp, fetch)
            elif verdict == "gap":
                log.warning("%s/%s: offsets %s..%s do not exist (the fetch after seeking to %s began at %s)",
                            tp.topic, tp.partition, due, offset - 1, due, offset)
                yield tp, message

    async def start_offset(self, tp: Any, first_fetched: int) -> int:
        """Where ``tp`` starts (:meth:`start_offsets`); ``first_fetched`` if the broker cannot say."""
        try:
            return (await self.start_offsets(tp)).get(tp, first_fetched)
        except Exception as err:  # noqa: BLE001 - an unreachable broker must not stop the stream
            log.warning("%s/%s: could not learn its starting offset (%r): starting at the fetched %s",
                        tp.topic, tp.partition, err, first_fetched)
            return first_fetched

    async def start_offsets(self, *tps: Any) -> dict[Any, int]:
        """Where the group's reading of each of ``tps`` starts, as :meth:`seek_to_committed` positions it: its
        committed offset, else (``earliest`` reset) its first offset; left out (``latest`` reset, nothing
        committed) where only the fetcher knows. Raises if the broker cannot be asked."""
        starts: dict[Any, int] = {}
        for tp in tps:
            committed = await self.committed_offset(tp)
            if committed is not None and committed >= 0:
                starts[tp] = committed
        never = [tp for tp in tps if tp not in starts]
        if never and self.app.conf.consumer_auto_offset_reset == "earliest":
            earliest = await self.earliest_offsets(*never)
            starts.update({tp: int(earliest.get(tp) or 0) for tp in never})
        return starts

    async def committed_offset(self, tp: Any) -> int | None:
        """The group's committed offset of ``tp`` (``None``: nothing committed), asked on the consumer thread."""
        thread = self._thread
        return await thread.call_thread(thread._ensure_consumer().committed, tp)  # type: ignore[attr-defined]

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        self.in_order.forget(revoked)
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[Any], generation_id: int = 0) -> None:
        self.in_order.forget(assigned)
        await super().on_partitions_assigned(assigned, generation_id)

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

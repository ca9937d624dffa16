"""``python -m bench.detect_hot``: the detect agent's per-key work alone (no Kafka), as the throughput bench feeds it.

The throughput benchmark's workload closes about one minute per key: every ``buckets`` message is one key's
one bucket (full keys: one team/feature/customer/model; roll-ups with children), and most series are new.
This feeds :class:`streams.agents.detect.Detect` the same shape over a dict table (``--minutes`` > 1: the
same keys again, a minute later, so states are read back and updated), and reports microseconds per message,
the table writes per message (each one a changelog message in the worker) and the encoded bytes per table
value and per key; ``--requests`` sets the calls per full key's bucket (2, the default, scores spend only:
cost per inference and the other per-request metrics need ``min_requests_per_bucket``, 3; 4 scores six
metrics per full key; ``4,2``: minutes alternate, the second scoring spend alone while the others rest);
``--changelog`` also sends every write to the ``monitors`` table's changelog as a worker does (Faust's
``send_changelog`` into its producer's buffer, no broker: the Python side of a changelog message);
``--profile`` prints the top of a cProfile of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from collections.abc import Iterator, MutableMapping
from datetime import datetime, timedelta, timezone

from bench.workload import allocation_key
from schemas.alert import Alert
from schemas.bucket import Bucket, dump_batch
from streams.agents.detect import Detect
from streams.scoring import BucketScorer
from streams.settings import Settings

T0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)


class CountingTable(MutableMapping[str, bytes]):
    """A dict table that counts writes and deletes (in a worker, each is a changelog message)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.writes = 0

    def __getitem__(self, key: str) -> bytes:
        return self.data[key]

    def __setitem__(self, key: str, value: bytes) -> None:
        self.writes += 1
        self.data[key] = value

    def __delitem__(self, key: str) -> None:
        self.writes += 1
        del self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class ChangelogTable(CountingTable):
    """A counting table whose writes also go to the real ``monitors`` table's changelog (buffered by the
    producer of the worker's Faust app, never started: no broker), as :meth:`TypedTable.save` sends them."""

    def __init__(self) -> None:
        super().__init__()
        from streams.topology import monitors_raw

        self.send = monitors_raw.send_changelog

    def __setitem__(self, key: str, value: bytes) -> None:
        super().__setitem__(key, value)
        self.send(0, key, value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.send(0, key, None, value_serializer="raw")


def messages(keys: int, minute: int, seq: int, requests: int = 2) -> list[bytes]:
    """One batch per full key, then one per team roll-up (children: its full keys' spend)."""
    start = T0 + timedelta(minutes=minute)
    out, teams = [], {}
    for k in range(keys):
        key = allocation_key(k)
        spend = 0.001 * (1 + k % 7)
        b = Bucket(key=key, start=start, seconds=60, spend_usd=spend, requests=requests, input_tokens=100 * requests,
                   output_tokens=40 * requests, records=requests)
        out.append(dump_batch(key, seq, [b]))
        team = key.split("|")[0]
        teams.setdefault(team, {})[key.split("|", 1)[1]] = spend
    for team, children in teams.items():
        key = f"{team}|feature=*|customer=*|model=*|environment=production"
        b = Bucket(key=key, start=start, seconds=60, spend_usd=sum(children.values()), requests=2 * len(children),
                   input_tokens=200 * len(children), output_tokens=80 * len(children), children=children)
        out.append(dump_batch(key, seq, [b]))
    return out


async def run(keys: int, minutes: int, requests: int | list[int] = 2, changelog: bool = False
              ) -> tuple[float, float, int, CountingTable]:
    """Wall and CPU seconds handling every message (the messages built beforehand), the count, the table."""
    sent: list[Alert] = []

    async def send(a: Alert) -> None:
        sent.append(a)

    table = ChangelogTable() if changelog else CountingTable()
    handler = Detect(table, BucketScorer(Settings(_env_file=None)), send)
    cycle = requests if isinstance(requests, list) else [requests]
    batches = [messages(keys, m, m + 1, cycle[m % len(cycle)]) for m in range(minutes)]
    n = sum(map(len, batches))
    t, cpu = time.perf_counter(), time.process_time()
    for minute in batches:
        for value in minute:
            await handler.handle(value)
    return time.perf_counter() - t, time.process_time() - cpu, n, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keys", type=int, default=5000)
    ap.add_argument("--minutes", type=int, default=1)
    ap.add_argument("--requests", type=lambda v: [int(n) for n in v.split(",")], default=[2],
                    help="calls per full key's bucket (a comma list: minute by minute, cycled)")
    ap.add_argument("--changelog", action="store_true", help="send each write to Faust's changelog (no broker)")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    prof = cProfile.Profile() if args.profile else None
    if prof:
        prof.enable()
    secs, cpu, n, table = asyncio.run(run(args.keys, args.minutes, args.requests, args.changelog))
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(35)
    size = sum(map(len, table.values()))
    stored = size + sum(len(k.encode()) for k in table)  # what a store holds: values and their table keys
    keys = len({k.split("#", 1)[0] for k in table})  # an allocation key (before: one value per key#series)
    print(f"{n:,} messages in {secs:.2f} s: {1e6 * secs / n:,.0f} us/message ({1e6 * cpu / n:,.0f} us CPU), "
          f"{table.writes / n:.2f} table writes "
          f"per message; {len(table):,} values for {keys:,} keys, {size / max(len(table), 1):,.0f} B encoded per "
          f"value, {size / max(keys, 1):,.0f} B per key ({stored / max(keys, 1):,.0f} B with the table keys)")


if __name__ == "__main__":
    main()

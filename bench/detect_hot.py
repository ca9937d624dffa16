"""``python -m bench.detect_hot``: the detect agent's per-key work alone (no Kafka), as the throughput bench feeds it.

The throughput benchmark's workload closes about one minute per key: every ``buckets`` message is one key's
one bucket (full keys: one team/feature/customer/model; roll-ups with children), and most series are new.
This feeds :class:`streams.agents.detect.Detect` the same shape over a dict table (``--minutes`` > 1: the
same keys again, a minute later, so states are read back and updated), and reports microseconds per message
and the encoded bytes per series; ``--profile`` prints the top of a cProfile of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from datetime import datetime, timedelta, timezone

from bench.workload import allocation_key
from schemas.alert import Alert
from schemas.bucket import Bucket, dump_batch
from streams.agents.detect import Detect
from streams.scoring import BucketScorer
from streams.settings import Settings

T0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)


def messages(keys: int, minute: int, seq: int) -> list[bytes]:
    """One batch per full key, then one per team roll-up (children: its full keys' spend)."""
    start = T0 + timedelta(minutes=minute)
    out, teams = [], {}
    for k in range(keys):
        key = allocation_key(k)
        spend = 0.001 * (1 + k % 7)
        b = Bucket(key=key, start=start, seconds=60, spend_usd=spend, requests=2, input_tokens=200,
                   output_tokens=80, records=2)
        out.append(dump_batch(key, seq, [b]))
        team = key.split("|")[0]
        teams.setdefault(team, {})[key.split("|", 1)[1]] = spend
    for team, children in teams.items():
        key = f"{team}|feature=*|customer=*|model=*|environment=production"
        b = Bucket(key=key, start=start, seconds=60, spend_usd=sum(children.values()), requests=2 * len(children),
                   input_tokens=200 * len(children), output_tokens=80 * len(children), children=children)
        out.append(dump_batch(key, seq, [b]))
    return out


async def run(keys: int, minutes: int) -> tuple[float, int, dict[str, bytes]]:
    sent: list[Alert] = []

    async def send(a: Alert) -> None:
        sent.append(a)

    table: dict[str, bytes] = {}
    handler = Detect(table, BucketScorer(Settings(_env_file=None)), send)
    batches = [messages(keys, m, m + 1) for m in range(minutes)]
    n = sum(map(len, batches))
    t = time.perf_counter()
    for minute in batches:
        for value in minute:
            await handler.handle(value)
    return time.perf_counter() - t, n, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keys", type=int, default=5000)
    ap.add_argument("--minutes", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    prof = cProfile.Profile() if args.profile else None
    if prof:
        prof.enable()
    secs, n, table = asyncio.run(run(args.keys, args.minutes))
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(35)
    size = sum(map(len, table.values()))
    print(f"{n:,} messages in {secs:.2f} s: {1e6 * secs / n:,.0f} us/message; {len(table):,} series, "
          f"{size / max(len(table), 1):,.0f} B encoded per series")


if __name__ == "__main__":
    main()

"""A deterministic stream of ``buckets`` messages for the detect agent: a full key scored on six metrics, its
team roll-up (root cause, sibling prior) and a second full key, over 200 minutes with noise, spikes that fire
and resolve, a new child far above its siblings, minutes scoring spend alone, multi-bucket batches, a late
correction and redelivered batches. ``tests/fixtures/state/detect_v2_*`` hold what the detect agent of 5a4173d
(one table value per series) sent and stored on it, to compare another layout's alerts and scores against.

>>> msgs = messages()
>>> len(msgs), len({m.seq for m in msgs if m.key == FULL})
(597, 198)
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from schemas.alert import Alert
from schemas.bucket import Bucket, dump_batch

T0 = datetime(2026, 11, 20, 6, tzinfo=timezone.utc)
FULL = "team=ads|feature=copy|customer=c1|model=gpt-4o|environment=production"
OTHER = "team=ads|feature=chat|customer=c2|model=gpt-4o|environment=production"
TEAM = "team=ads|feature=*|customer=*|model=*|environment=production"
LEAK = "feature=copy|customer=leaked|model=gpt-4o"
MINUTES = 200
#: the migration test's cut: messages before it were handled by the per-series layout
CUT_MINUTE = 150


@dataclass(frozen=True)
class Message:
    key: str
    seq: int
    minute: int  # of its last bucket
    value: bytes


def _full(key: str, start: datetime, rng: random.Random, m: int, scale: float) -> Bucket:
    requests = 20 + rng.randrange(10)
    if key == OTHER and 60 <= m < 70:
        requests = 2  # too few calls for the per-call metrics: spend alone is scored, its other series rest
    spike = 8.0 if 180 <= m < 184 and key == FULL else 1.0
    price = (0.002 if 120 <= m < 124 and key == FULL else 0.001) * (1 + 0.05 * rng.random())
    spend = scale * requests * price * spike
    return Bucket(key=key, start=start, seconds=60, spend_usd=spend, requests=requests * (1 if spike == 1 else 3),
                  input_tokens=120 * requests + rng.randrange(50), output_tokens=60 * requests, records=requests,
                  failed_requests=rng.randrange(2), unpriced_requests=0)


def _buckets(m: int, rng: random.Random) -> dict[str, Bucket]:
    start = T0 + timedelta(minutes=m)
    full, other = _full(FULL, start, rng, m, 1.0), _full(OTHER, start, rng, m, 2.0)
    children = {"feature=copy|customer=c1|model=gpt-4o": full.spend_usd,
                "feature=chat|customer=c2|model=gpt-4o": other.spend_usd}
    children.update({f"feature=f{i}|customer=c{i}|model=gpt-4o": 0.01 * (1 + i % 3) * (1 + 0.1 * rng.random())
                     for i in range(6)})
    if 160 <= m < 163:
        children[LEAK] = 2.0  # never seen, far above its siblings
    team = Bucket(key=TEAM, start=start, seconds=60, spend_usd=sum(children.values()),
                  requests=full.requests + other.requests + 60, input_tokens=full.input_tokens + other.input_tokens,
                  output_tokens=full.output_tokens + other.output_tokens, children=children)
    return {FULL: full, OTHER: other, TEAM: team}


def messages() -> list[Message]:
    """Every key's batches in order: one bucket a batch, but minutes 40-42 in one batch per key; minute 90's
    batches sent twice (redelivered); a late correction of minute 100 with minute 101's batch."""
    rng = random.Random(13)
    per_minute = [_buckets(m, rng) for m in range(MINUTES)]
    out: list[Message] = []
    seq = {FULL: 0, OTHER: 0, TEAM: 0}
    m = 0
    while m < MINUTES:
        span = range(40, 43) if m == 40 else range(m, m + 1)
        for key in (FULL, OTHER, TEAM):
            seq[key] += 1
            buckets = [per_minute[i][key] for i in span]
            if m == 101:
                late = per_minute[100][key].model_copy(update={"spend_usd": 1.0, "late": True})
                buckets = [late, *buckets]
            msg = Message(key, seq[key], span[-1], dump_batch(key, seq[key], buckets))
            out.append(msg)
            if m == 90:
                out.append(msg)
        m = span[-1] + 1
    return out


def run(detect: Callable[[MutableMapping[str, bytes], Callable[[Alert], Awaitable[None]]], Any],
        table: MutableMapping[str, bytes], msgs: Iterable[Message]) -> list[tuple[int, str]]:
    """Feed ``msgs`` to ``detect(table, send)``'s ``handle``; the alerts sent, as (message index, alert JSON)."""
    sent: list[tuple[int, str]] = []
    i = 0

    async def send(alert: Alert) -> None:
        sent.append((i, alert.model_dump_json()))

    handler = detect(table, send)

    async def feed() -> None:
        nonlocal i
        for i, msg in enumerate(msgs):  # noqa: B007 - send() reads it
            await handler.handle(msg.value)
    asyncio.run(feed())
    return sent


def v1_batches(state_at: float, seq: int) -> list[Message]:
    """Two buckets for a series restored from a version-1 state (last bucket at ``state_at``, batch ``seq``):
    a usual spend, then five times it."""
    start = datetime.fromtimestamp(state_at, tz=timezone.utc)
    out = []
    for i, spend in ((1, 1.0), (2, 5.0)):
        b = Bucket(key=V1_KEY, start=start + timedelta(minutes=i), seconds=60, spend_usd=spend, requests=2)
        out.append(Message(V1_KEY, seq + i, i, dump_batch(V1_KEY, seq + i, [b])))
    return out


V1_KEY = "team=v1|feature=f|customer=c|model=m|environment=production"

"""detect keeps every kind of series a roll-up has in table monitors, each under its own type, in the key's one
value (KeyMonitors): a metric's SeriesState, ``children`` (root-cause baselines) and ``siblings`` (the cold-start
prior). Regression (the layout before, one value per series): ``#siblings`` was read as a SeriesState, so every
team roll-up's state was quarantined and its batches dead-lettered from the second bucket on."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from schemas.bucket import Bucket, dump_batch
from streams.agents.detect import Detect
from streams.scoring import BucketScorer
from streams.settings import Settings
from streams.state.codec import decode
from streams.state.values import ChildrenState, KeyMonitors, SeriesState, SiblingsState

TEAM = "team=ads|feature=*|customer=*|model=*|environment=production"
T0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)


def test_a_rollup_is_scored_bucket_after_bucket_with_each_state_under_its_type_and_forgotten_whole() -> None:
    table: dict[str, bytes] = {}
    sent = []

    async def send(alert) -> None:
        sent.append(alert)

    detect = Detect(table, BucketScorer(Settings(_env_file=None, detector="ew_zscore")), send)
    children = {f"feature=f{i}|customer=internal|model=gpt-4o": 0.1 * (1 + i % 3) for i in range(6)}
    for m in range(40):
        b = Bucket(key=TEAM, start=T0 + timedelta(minutes=m), seconds=60, spend_usd=sum(children.values()),
                   requests=60, children=children)
        asyncio.run(detect.handle(dump_batch(TEAM, m, [b])))  # raised StateQuarantined from the 2nd bucket on
    assert list(table) == [TEAM]
    held = decode(table[TEAM])
    assert type(held) is KeyMonitors
    assert type(held.get("spend")) is SeriesState and held.get("spend").seq == 39
    assert type(held.get("children")) is ChildrenState and type(held.get("siblings")) is SiblingsState
    assert sent == []  # a steady roll-up raises nothing

    asyncio.run(detect.handle(dump_batch(TEAM, 40, [], forget=True)))
    assert not [k for k in table if k.startswith(TEAM)]

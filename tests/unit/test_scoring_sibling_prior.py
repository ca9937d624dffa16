"""Cold start in BucketScorer: a never-seen customer spending far above its team's established customers
alerts on its own key in the first bucket it appears in (no warm-up), once; the state survives the table
codec and a redelivered batch adds nothing; coarser roll-ups do not flag it again; a normal newcomer is quiet."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from schemas.alert import Alert
from schemas.bucket import Bucket
from streams.scoring import BucketScorer
from streams.settings import Settings
from streams.state.codec import decode, encode

T0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
TEAM = "team=ads|feature=*|customer=*|model=*|environment=production"
ORG = "team=*|feature=*|customer=*|model=*|environment=production"
LEAK = "team=ads|feature=copygen|customer=leaked|model=gpt-4o|environment=production"
#: 8 established customers at $0.10, 0.20, 0.30, 0.40 a minute (twice each): geometric mean
#: (0.1 * 0.2 * 0.3 * 0.4) ** (1/4) = 0.2213 $/min, the siblings' typical spend
SIBLINGS = {f"feature=copygen|customer=c{i}|model=gpt-4o": 0.10 * (1 + i % 4) for i in range(8)}


def child_of_org(child: str) -> str:
    return "team=ads|" + child


class Tables:
    """The monitors table as the detect agent holds it: codec bytes per key."""

    def __init__(self) -> None:
        self.rows: dict[str, bytes] = {}

    def load(self, key: str):  # noqa: ANN201
        raw = self.rows.get(key)
        return decode(raw) if raw is not None else None

    def save(self, key: str, value: object) -> None:
        self.rows[key] = encode(value)


def buckets(minute: int, children: dict[str, float]) -> list[Bucket]:
    start = T0 + timedelta(minutes=minute)
    spend = sum(children.values())
    return [Bucket(key=TEAM, start=start, seconds=60, spend_usd=spend, requests=100, children=children),
            Bucket(key=ORG, start=start, seconds=60, spend_usd=spend, requests=100,
                   children={child_of_org(c): v for c, v in children.items()})]


def score(scorer: BucketScorer, tables: Tables, minute: int, children: dict[str, float]) -> list[Alert]:
    return [a for b in buckets(minute, children) for a in scorer.score(b, minute, tables.load, tables.save)]


def test_a_new_key_far_above_its_siblings_alerts_without_warm_up() -> None:
    scorer, tables = BucketScorer(Settings(_env_file=None, detector="ew_zscore")), Tables()
    before = [a for m in range(120) for a in score(scorer, tables, m, SIBLINGS)]
    assert [a for a in before if a.detector == "sibling_prior"] == []

    leak = {**SIBLINGS, "feature=copygen|customer=leaked|model=gpt-4o": 6.0}  # never seen, $6 a minute
    alerts = score(scorer, tables, 120, leak)
    [cold] = [a for a in alerts if a.detector == "sibling_prior"]  # the team's prior only, not the org's too
    assert (cold.series_key, cold.metric, cold.status, cold.observed) == (LEAK, "spend", "firing", 6.0)
    assert cold.started_at == T0 + timedelta(minutes=120)
    typical = math.prod(0.10 * k for k in (1, 2, 3, 4)) ** 0.25
    assert round(typical, 4) == 0.2213
    assert abs(cold.baseline - typical) < 0.005 and cold.observed >= 3 * cold.baseline
    assert cold.score >= 0.9999 and cold.severity == "critical"

    # the batch redelivered: nothing learnt twice, nothing raised twice
    assert [a for a in score(scorer, tables, 120, leak) if a.detector == "sibling_prior"] == []
    # still leaking: no repeat; then quiet (absent) for 5 buckets: resolved once
    later = [a for m in range(121, 130) for a in score(scorer, tables, m, leak if m < 124 else SIBLINGS)
             if a.detector == "sibling_prior"]
    assert [(a.series_key, a.status, a.started_at) for a in later] == [(LEAK, "resolved", cold.started_at)]
    # a newcomer spending like its siblings raises nothing
    normal = {**SIBLINGS, "feature=copygen|customer=new|model=gpt-4o": 0.3}
    assert [a for a in score(scorer, tables, 130, normal) if a.detector == "sibling_prior"] == []
    assert TEAM + "#siblings" in tables.rows and ORG + "#siblings" not in tables.rows

"""Replay usage offline through the same pure code the agents run (parse, bucket, score).

The stream path and this path must agree on the same ordered input; tests check it, and
it is how a detector change can be tried on recorded usage before it ships.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from schemas.alert import Alert
from schemas.bucket import Bucket
from schemas.ingest import parse_message
from streams.scoring import BucketScorer
from streams.settings import Settings
from streams.rollups import keyed_records
from streams.state.windows import KeyWindows, window_record


def replay(events: Iterable[dict[str, Any]], settings: Settings, source: str = "llm"
           ) -> tuple[list[Bucket], list[Alert]]:
    """Bucket ``events`` (in order) per allocation key and score every bucket, key by key."""
    windows: dict[str, KeyWindows] = {}
    for event in events:
        records, _ = parse_message(source, orjson.dumps(event))  # type: ignore[arg-type]
        for key, rec, child in keyed_records(records, settings.rollups):
            ob = windows.setdefault(key, KeyWindows(key, settings.bucket_seconds))
            ob.add(window_record(rec, child))
    buckets = sorted((b for ob in windows.values() for b in ob.close_all()), key=lambda b: (b.key, b.start))
    scorer, monitors = BucketScorer(settings), dict[str, Any]()
    alerts = [a for b in buckets for a in scorer.score(b, 0, monitors.get, monitors.__setitem__)]
    return buckets, alerts

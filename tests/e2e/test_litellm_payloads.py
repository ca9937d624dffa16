"""Real LiteLLM payloads through the real broker and worker: each key's spend, requests, failures and cache
hits equal what this test computes from LiteLLM's own fields and the key's team; nothing that carries a cost
is dead-lettered (issue 9).

The payloads are the fixtures written by tests/fixtures/payloads/litellm_real/generate.py from LiteLLM
1.110.2 (SDK, Router, proxy key metadata), re-stamped to the last hour so the worker's windows close.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from schemas.cost import AllocationKey
from sinks.kafka_producer import UsageProducer
from sinks.store import AlertStore
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.worker_process import WorkerProcess, wait_for_buckets
from streams.rollups import is_rollup
from streams.settings import ALL_TOPICS

pytestmark = pytest.mark.e2e
HERE = Path(__file__).resolve().parents[1] / "fixtures" / "payloads" / "litellm_real"
HAIKU_IN, HAIKU_OUT = 0.80, 4.00  # $/M tokens, prices.yaml claude-3-5-haiku: LiteLLM 1.110.2 cannot price it


def _tag(tags: list[Any], key: str) -> str | None:
    return next((t.split(":", 1)[1] for t in tags if isinstance(t, str) and t.startswith(key + ":")), None)


def expected_key_and_cost(p: dict[str, Any]) -> tuple[str, float]:
    """The allocation key and cost from LiteLLM's fields: the key's team, never a request tag's."""
    meta = p.get("metadata") or {}
    slm = meta.get("spend_logs_metadata")
    slm = json.loads(slm) if isinstance(slm, str) else (slm or {})
    model = p["model"].split("/", 1)[-1]
    if p["status"] == "failure" or p.get("cache_hit") or p["response_cost"] > 0:
        cost = p["response_cost"]
    else:
        cost = (p["prompt_tokens"] * HAIKU_IN + p["completion_tokens"] * HAIKU_OUT) / 1e6
    end_user = p.get("end_user")
    key = AllocationKey(team=meta.get("user_api_key_team_alias") or "unallocated",
                        feature=_tag(p.get("request_tags") or [], "feature") or slm.get("feature") or "unknown",
                        customer=slm.get("customer") or (str(end_user) if end_user not in (None, "") else "unknown"),
                        model=model)
    return str(key), cost


def test_litellm_payloads_through_the_broker_are_counted_as_litellm_meant(tmp_path: Path) -> None:
    base = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=30)
    payloads = []
    for i, path in enumerate(sorted(HERE.glob("*.json"))):
        p = json.loads(path.read_text())
        start = (base + timedelta(seconds=5 * i)).timestamp()
        p["endTime"] = start + (p["endTime"] - p["startTime"])
        p["startTime"] = start
        payloads.append(p)
    want: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    last_minute: dict[str, datetime] = {}
    for p in payloads:
        key, cost = expected_key_and_cost(p)
        w = want[key]
        w["spend"] += cost
        w["requests"] += 1
        w["failed"] += p["status"] == "failure"
        w["cache_hits"] += bool(p.get("cache_hit"))
        minute = datetime.fromtimestamp(p["startTime"], timezone.utc).replace(second=0, microsecond=0)
        last_minute[key] = max(minute, last_minute.get(key, minute))
    assert "team=search|feature=chat|customer=unknown|model=gpt-4o|environment=production" in want
    assert not any(k.startswith("team=ads|feature=chat") for k in want)  # the contradicting tag lost

    database_url = f"sqlite:///{tmp_path / 'litellm.db'}"
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        with WorkerProcess(broker.url, database_url, tmp_path / "worker.log") as worker:
            with UsageProducer(broker.bootstrap, batch_size=5, stream_key="litellm-gateway") as producer:
                for p in payloads:
                    producer.send("llm", p)
            buckets = wait_for_buckets(worker, broker.bootstrap, last_minute, timeout=120)
            store = AlertStore(database_url)
            try:
                deadline = time.monotonic() + 5  # a dead letter would be stored within this after its bucket
                while time.monotonic() < deadline and not store.dead_letters():
                    worker.check_alive()
                    time.sleep(0.2)
                dead = store.dead_letters()
            finally:
                store.close()

    assert dead == [], [d.reason for d in dead]
    got: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for b in buckets:
        if is_rollup(b.key):
            continue
        g = got[b.key]
        g["spend"] += b.spend_usd
        g["requests"] += b.requests
        g["failed"] += b.failed_requests
        g["cache_hits"] += b.cache_hit_requests
    assert set(got) == set(want)
    for key, w in want.items():
        g = got[key]
        assert g["spend"] == pytest.approx(w["spend"], rel=1e-9, abs=1e-12), key
        assert (g["requests"], g["failed"], g["cache_hits"]) == (w["requests"], w["failed"], w["cache_hits"]), key

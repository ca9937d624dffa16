"""Every source through the real broker: count in = records out + dead letters, nothing lost.

Real Tansu broker, real worker subprocess, real SQLite. The expected split between records
and rejections comes from the same Normalizer run offline on the same messages.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from schemas.ingest import Normalizer
from schemas.sources.focus import read_focus_csv
from sinks.store import AlertStore
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.rollups import is_rollup
from streams.settings import ALL_TOPICS, BUCKETS_TOPIC, COSTS_TOPIC, USAGE_TOPICS
from streams.harness.worker_process import WorkerProcess, wait_for_buckets

pytestmark = pytest.mark.e2e
PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"


def _load(name: str) -> dict:
    return orjson.loads((PAYLOADS / name).read_bytes())


def mixed_messages() -> list[tuple[str, bytes]]:
    """(source, message value): good events of every format, envelopes, and bad input of every kind."""
    llm = [_load(n) for n in ("native.json", "openai_chat.json", "anthropic.json", "litellm.json", "otel_span.json")]
    gpu = [_load("dcgm.json"), _load("dcgm_flat.json")]
    billing = [_load("focus.json"), *read_focus_csv(PAYLOADS / "focus.csv")]
    return [
        *[("llm", orjson.dumps(e)) for e in llm],                    # one event per message
        ("llm", orjson.dumps({"events": llm + [{"model": 7}]})),     # envelope with one bad event
        ("llm", b"{not json"),                                         # not JSON
        ("llm", orjson.dumps({**llm[0], "cost_usd": -3})),          # negative cost
        ("llm", orjson.dumps({**llm[0], "timestamp": "2999-01-01T00:00:00Z"})),  # far future
        ("llm", orjson.dumps(_load("dcgm.json"))),                     # a GPU sample on the LLM topic
        ("llm", b"\xff\xfe\x00garbage"),
        ("gpu", orjson.dumps(gpu)),                                    # JSON array envelope
        ("gpu", orjson.dumps([{**gpu[0], "interval_s": "soon"}])),   # wrong type
        ("billing", orjson.dumps({"events": billing})),
        ("billing", orjson.dumps({**billing[0], "EffectiveCost": "lots"})),
        ("billing", b"42"),                                            # JSON, but not an event
        ("billing", orjson.dumps({**billing[0], "BillingCurrency": "EUR"})),  # not USD (a credit is accepted)
    ]


def test_mixed_sources_count_in_equals_records_plus_dead_letters(tmp_path) -> None:
    messages = mixed_messages()
    normalizer = Normalizer()
    expected_records, expected_rejects = [], 0
    for source, value in messages:
        recs, rejects = normalizer.parse(source, value)
        expected_records += recs
        expected_rejects += len(rejects)
    sources = {r.source for r in expected_records}
    assert sources == {"llm", "gpu", "billing"} and expected_rejects >= 10  # the scenario covers everything

    last_minute: dict[str, datetime] = {}
    for r in expected_records:
        minute = r.ts.replace(second=0, microsecond=0)
        last_minute[r.allocation_key] = max(minute, last_minute.get(r.allocation_key, minute))

    database_url = f"sqlite:///{tmp_path / 'ingest.db'}"
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        with WorkerProcess(broker.url, database_url, tmp_path / "worker.log") as worker:
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
            # garbage on internal topics: each agent must quarantine it and carry on
            producer.send(COSTS_TOPIC, b"[{\"no ts\": 1}]", key=b"team=x")
            producer.send(BUCKETS_TOPIC, b"not buckets", key=b"team=x")
            for source, value in messages:
                producer.send(USAGE_TOPICS[source], value, key=source.encode())
            producer.flush()
            producer.close()
            buckets = wait_for_buckets(worker, broker.bootstrap, last_minute, timeout=90)
            store = AlertStore(database_url)
            try:
                deadline = time.monotonic() + 30
                while len(store.dead_letters(limit=1000)) < expected_rejects + 3 and time.monotonic() < deadline:
                    worker.check_alive()
                    time.sleep(0.2)
                dead = store.dead_letters(limit=1000)
            finally:
                store.close()

    full = [b for b in buckets if not is_rollup(b.key)]
    assert sum(b.records for b in full) == len(expected_records)
    # net spend: buckets keep credits (negative FOCUS rows) apart from the spend detection scores
    assert sum(b.spend_usd + b.credit_usd for b in full) == pytest.approx(sum(r.cost_usd for r in expected_records))
    assert sum(b.credit_usd for b in full) == pytest.approx(sum(r.cost_usd for r in expected_records if r.cost_usd < 0))
    internal = [d for d in dead if d.reason.startswith("internal: ")]
    # the agent reading buckets quarantines the garbage there; the one reading costs, its own
    assert sorted((d.topic, d.reason.split()[1]) for d in internal) == [("buckets", "detect"), ("costs", "aggregate")]
    dead = [d for d in dead if d not in internal]
    assert len(dead) == expected_rejects
    assert all(d.reason for d in dead)
    by_topic = {t: sum(d.topic == t for d in dead) for t in USAGE_TOPICS.values()}
    assert all(n > 0 for n in by_topic.values()), by_topic
    raw = {d.original_bytes() for d in dead}
    assert b"{not json" in raw and b"42" in raw

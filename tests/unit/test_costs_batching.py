"""``costs`` messages carry many keys of one partition (issue 13): fewer internal messages, same effects.

Hand-worked: which keys three events make, which partition Kafka's own partitioner gives each, and what
the aggregate holds after a message is delivered twice or one of its keys has unusable state.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from types import SimpleNamespace

import orjson
from aiokafka.partitioner import DefaultPartitioner

from schemas.bucket import load_batch
from schemas.cardinality import CardinalityLimiter
from streams.agents import normalize as normalize_module
from streams.agents.aggregate import Aggregate
from streams.agents.normalize import KEYS, Normalize, load_budgets, load_normalizer
from streams.settings import Settings
from streams.state.clocks import SourceProgress
from streams.state.tables import StateQuarantined, TypedTable
from streams.state.windows import KeyWindows

SETTINGS = Settings(_env_file=None, allowed_lateness_seconds=0, bucket_seconds=60)
T0 = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)


def event(team: str, feature: str, usd: float, second: int) -> dict:
    return {"timestamp": T0.replace(second=second).isoformat(), "model": "gpt-4o", "cost_usd": usd,
            "tags": {"team": team, "feature": feature}}


def full(team: str, feature: str) -> str:
    return f"team={team}|feature={feature}|customer=unknown|model=gpt-4o|environment=production"


def normalized(envelope: list[dict], partitions: int = 4) -> list[tuple[bytes, dict, int | None]]:
    sent: list[tuple[str, bytes, bytes, int | None]] = []

    async def send(topic, key: bytes, value: bytes, partition: int | None) -> None:
        sent.append((topic.get_topic_name(), key, value, partition))

    handler = Normalize(load_normalizer(SETTINGS), load_budgets(SETTINGS), SETTINGS, SourceProgress(120.0), send,
                        CardinalityLimiter(), lambda: partitions, clock=lambda: T0.timestamp() + 60)
    msg = SimpleNamespace(topic="usage.llm", partition=1, offset=7, key=b"gw", timestamp=T0.timestamp() + 30)
    asyncio.run(handler.handle(SimpleNamespace(message=msg, value=orjson.dumps(envelope))))
    return [(k, orjson.loads(v), p) for t, k, v, p in sent if t == "costs"]


def test_one_costs_message_per_partition_each_key_on_its_kafka_partition() -> None:
    costs = normalized([event("ads", "copy", 1.0, 1), event("ads", "chat", 2.0, 2), event("web", "chat", 4.0, 3)])
    expected_keys = {full("ads", "copy"), full("ads", "chat"), full("web", "chat"),
                     "team=ads|feature=*|customer=*|model=*|environment=production",
                     "team=web|feature=*|customer=*|model=*|environment=production",
                     "team=*|feature=*|customer=*|model=*|environment=production"}
    partitioner = DefaultPartitioner()
    seen: list[str] = []
    for key, doc, partition in costs:
        assert key == KEYS.encode() and doc["o"] == ["usage.llm/1", 7]
        for k in doc["keys"]:
            assert partition == partitioner(k.encode(), [0, 1, 2, 3], [0, 1, 2, 3])
        seen += doc["keys"]
    assert sorted(seen) == sorted(expected_keys)  # each key once
    assert len(costs) == len({p for _, _, p in costs}) <= 4
    by_key = {k: recs for _, doc, _ in costs for k, recs in doc["keys"].items()}
    # one partial sum per key and minute (the three events are in one minute)
    org = by_key["team=*|feature=*|customer=*|model=*|environment=production"]
    assert [(r["cost_usd"], r["n"], r["requests"], sorted(r["kids"].values())) for r in org] == [(7.0, 3, 3, [1, 2, 4])]
    ads = by_key["team=ads|feature=*|customer=*|model=*|environment=production"]
    assert [(r["cost_usd"], r["n"], sorted(r["kids"].values())) for r in ads] == [(3.0, 2, [1, 2])]
    assert [(r["cost_usd"], r["n"]) for r in by_key[full("web", "chat")]] == [(4.0, 1)]


def test_a_large_envelope_is_split_with_whole_keys(monkeypatch) -> None:
    monkeypatch.setattr(normalize_module, "MAX_RECORDS_PER_MESSAGE", 2)
    events = [event("ads", f"f{i}", 1.0, i) for i in range(6)]
    costs = normalized(events, partitions=1)
    keys = [k for _, doc, _ in costs for k in doc["keys"]]
    assert len(keys) == len(set(keys)) == 6 + 2  # six full keys, the team and org roll-ups: each in one message
    # the roll-ups hold six records each: alone in their message; the rest at most two records per message
    assert all(sum(map(len, doc["keys"].values())) <= 2 or len(doc["keys"]) == 1 for _, doc, _ in costs)


def keys_message(offset: int, keys: dict[str, float]) -> bytes:
    ts = T0.timestamp()
    return orjson.dumps({"o": ["usage.llm/0", offset], "clk": ["usage.llm/0:gw", ts + 70],
                         "keys": {k: [{"ts": ts + 5, "cost_usd": usd, "requests": 1}] for k, usd in keys.items()}})


def test_a_redelivered_keys_message_applies_once_and_a_bad_key_is_rejected_alone() -> None:
    table: dict[str, bytes] = {"b": b"not state"}
    sent: list[bytes] = []
    rejected: list[tuple[str, dict, str]] = []

    async def send(key: str, value: bytes) -> None:
        sent.append(value)

    async def reject(key: str, value: bytes, err: Exception) -> None:
        rejected.append((key, orjson.loads(value), type(err).__name__))

    agg = Aggregate(TypedTable(table, "open_buckets", KeyWindows), send, SETTINGS)
    msg = keys_message(3, {"a": 1.0, "b": 2.0, "c": 4.0})
    for _ in range(2):  # delivered twice
        asyncio.run(agg.handle(KEYS, msg, 0, T0.timestamp() + 80, reject))
    spend = {b.key: b.spend_usd for v in sent for b in load_batch(v).buckets}
    assert spend == {"a": 1.0, "c": 4.0}  # minute 0 closed by the clock (70 s), once each
    assert [(k, doc["o"], [r["cost_usd"] for r in doc["records"]], e) for k, doc, e in rejected] == \
        [("b", ["usage.llm/0", 3], [2.0], "StateQuarantined")] * 2  # replayable one-key message, each delivery
    assert table["b"] == b"not state"  # untouched


def test_without_a_reject_callback_a_bad_key_raises() -> None:
    agg = Aggregate(TypedTable({"b": b"x"}, "open_buckets", KeyWindows), lambda k, v: asyncio.sleep(0), SETTINGS)
    try:
        asyncio.run(agg.handle(KEYS, keys_message(1, {"b": 1.0}), 0, 0.0))
    except StateQuarantined:
        return
    raise AssertionError("expected StateQuarantined")


def test_a_punctuation_taken_while_a_message_is_being_sent_does_not_speak_for_it() -> None:
    """The punctuation timer can run while normalize awaits a message's sends. It used to see the clock already
    moved to the message's newest event, and its punctuation, written to every costs partition, could reach a
    key before the costs message still to be sent there: the key closed the minute and the records came late
    (the late buckets of test_faults under load). A punctuation taken mid-message must not carry its clock."""
    progress = SourceProgress(idle_after=120.0)
    progress.assigned("usage.llm/1", wall=T0.timestamp())  # as the timer does for an owned partition
    readings: list[dict] = []

    async def send(topic, key: bytes, value: bytes, partition: int | None) -> None:
        if topic.get_topic_name() == "costs":  # the timer runs here, between two sends of the message
            punct = progress.punctuation({"usage.llm/1": 8}, wall=T0.timestamp() + 61)
            readings.append(punct.parts["usage.llm/1"].clocks)

    handler = Normalize(load_normalizer(SETTINGS), load_budgets(SETTINGS), SETTINGS, progress, send,
                        CardinalityLimiter(), lambda: 4, clock=lambda: T0.timestamp() + 60)
    msg = SimpleNamespace(topic="usage.llm", partition=1, offset=7, key=b"gw", timestamp=T0.timestamp() + 30)
    envelope = [event("ads", "copy", 1.0, 1), event("web", "chat", 4.0, 3)]
    asyncio.run(handler.handle(SimpleNamespace(message=msg, value=orjson.dumps(envelope))))
    assert readings and all("usage.llm/1:gw" not in clocks for clocks in readings)
    after = progress.punctuation({"usage.llm/1": 8}, wall=T0.timestamp() + 62).parts["usage.llm/1"].clocks
    assert after == {"usage.llm/1:gw": [T0.replace(second=3).timestamp(), False]}  # its newest event, once sent

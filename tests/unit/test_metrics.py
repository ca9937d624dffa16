"""streams.metrics and streams.lag without a broker: bounded dead-letter reasons from the real Normalizer's
rejections, counts from its stats, alert latency, and lag arithmetic from offsets worked by hand."""

from __future__ import annotations

import asyncio
from collections import namedtuple

import orjson
from prometheus_client.parser import text_string_to_metric_families

from schemas.ingest import Normalizer
from streams.lag import LagReader
from streams.metrics import DEAD_LETTER_REASONS, Metrics, reason_class

NATIVE = {"timestamp": "2026-01-05T10:00:00Z", "model": "gpt-4o-mini", "cost_usd": 0.5, "tags": {"team": "a"}}


def reasons_of(source: str, value: bytes, normalizer: Normalizer | None = None) -> list[str]:
    return [reason_class(r.reason) for r in (normalizer or Normalizer()).parse(source, value)[1]]


def test_every_rejection_of_the_normalizer_gets_a_bounded_reason() -> None:
    assert reasons_of("llm", b"{oops") == ["invalid_json"]
    assert reasons_of("llm", b"42") == ["not_an_event"]
    assert reasons_of("llm", orjson.dumps([NATIVE, 7, {**NATIVE, "cost_usd": -1}])) == ["invalid_event"] * 2
    assert reasons_of("llm", orjson.dumps({**NATIVE, "format": "nonsense"})) == ["unknown_format"]
    assert reasons_of("gpu", orjson.dumps({**NATIVE, "format": "native"})) == ["unknown_format"]  # on usage.gpu
    assert reasons_of("llm", orjson.dumps({**NATIVE, "timestamp": "2999-01-01T00:00:00Z"})) == ["future_timestamp"]
    assert reasons_of("llm", b"[" + b"1," * 10 + b"1]", Normalizer(max_rejects_per_message=3)) == (
        ["invalid_event"] * 3 + ["summary"])
    assert reasons_of("llm", b"x" * 100, Normalizer(max_message_bytes=10)) == ["too_large"]


def test_the_guards_reasons_are_told_apart() -> None:
    assert reason_class("no source is read from topic 'x'") == "unknown_topic"
    assert reason_class("internal: detect could not process this message: KeyError('k')") == "internal"
    assert reason_class("internal error (ZeroDivisionError): division by zero") == "internal"
    assert reason_class("internal: aggregate: state of 'k' in table open_buckets cannot be used: bad; "
                        "kept for replay") == "quarantined"
    assert reason_class("state quarantined: state of 'k' in table monitors cannot be used: bad") == "state_quarantined"
    assert reason_class("something new") == "other"
    assert {"other", "summary"} <= set(DEAD_LETTER_REASONS)


def test_events_in_are_read_from_the_normalizers_stats_by_source_and_format() -> None:
    m, n = Metrics(), Normalizer()
    m.watch_normalizer(n)
    openai = {"object": "chat.completion", "created": 1767607200, "model": "gpt-4o",
              "usage": {"prompt_tokens": 10, "completion_tokens": 1}, "metadata": {"team": "a"}}
    n.parse("llm", orjson.dumps([NATIVE, NATIVE, openai, {"model": 1}]))
    n.parse("llm", b"{bad")
    assert m.value("burnguard_events_in_total", source="llm", format="native") == 2
    assert m.value("burnguard_events_in_total", source="llm", format="openai") == 1
    assert m.value("burnguard_events_rejected_total") == 2
    names = {f.name for f in text_string_to_metric_families(m.render().decode())}
    assert {"burnguard_events_in", "burnguard_dead_letters", "burnguard_consumer_lag"} <= names


def test_alert_latency_runs_from_the_minute_becoming_closable_and_early_alerts_count_as_zero() -> None:
    m = Metrics()
    m.alert_stored("spend", "firing", closable_at=1000.0, now=lambda: 1001.5)
    m.alert_stored("spend", "firing", closable_at=1000.0, now=lambda: 990.0)  # fired before its minute closed
    m.alert_stored("spend", "resolved", closable_at=1000.0, now=lambda: 5000.0)  # resolutions: counted, not timed
    assert m.value("burnguard_alerts_stored_total", metric="spend", status="firing") == 2
    assert m.value("burnguard_alerts_stored_total", metric="spend", status="resolved") == 1
    assert m.value("burnguard_alert_latency_seconds_count") == 2
    assert m.value("burnguard_alert_latency_seconds_sum") == 1.5
    assert m.value("burnguard_alert_latency_seconds_bucket", le="0.0") == 1


def test_a_quarantined_key_is_counted_once_and_each_held_message_every_time() -> None:
    m = Metrics()
    for new in (True, False, False):
        m.quarantined("open_buckets", new)
    assert m.value("burnguard_state_quarantined_keys_total", table="open_buckets") == 1
    assert m.value("burnguard_state_quarantined_messages_total", table="open_buckets") == 3


TP = namedtuple("TP", "topic partition")
OM = namedtuple("OM", "offset metadata")


class FakeConsumer:
    def __init__(self) -> None:
        self.tps = {TP("usage.llm", 0), TP("usage.llm", 1), TP("costs", 2), TP("burnguard-open_buckets-changelog", 2)}

    def assignment(self) -> set:
        return self.tps

    async def highwaters(self, *tps: TP) -> dict:
        return {tp: {("usage.llm", 0): 120, ("usage.llm", 1): 40, ("costs", 2): 9}[tuple(tp)] for tp in tps}

    async def earliest_offsets(self, *tps: TP) -> dict:
        return {tp: 5 for tp in tps}


class FakeAdmin:
    def __init__(self) -> None:
        self.asked: list = []

    async def list_consumer_group_offsets(self, group: str, partitions: list) -> dict:
        self.asked.append((group, sorted((tp.topic, tp.partition) for tp in partitions)))
        known = {("usage.llm", 0): 100, ("costs", 2): 9}  # usage.llm/1 never committed
        return {tp: OM(known.get((tp.topic, tp.partition), -1), "") for tp in partitions}


def test_lag_is_the_end_offset_minus_the_groups_committed_offset_and_changelogs_are_left_out() -> None:
    reader = LagReader("burnguard", "127.0.0.1:1", {})
    admin = reader.admin = FakeAdmin()  # type: ignore[assignment]
    lags = asyncio.run(reader.read(FakeConsumer(), {"burnguard-open_buckets-changelog"}))
    # 120 - 100; never committed: from the earliest offset, 40 - 5; caught up: 0
    assert lags == {("usage.llm", 0): 20, ("usage.llm", 1): 35, ("costs", 2): 0}
    assert admin.asked == [("burnguard", [("costs", 2), ("usage.llm", 0), ("usage.llm", 1)])]


def test_docs_operations_describes_every_metric_and_its_alert_rules_use_real_ones() -> None:
    import re
    from pathlib import Path

    import yaml

    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    m = Metrics()
    families = {f.name for f in m.registry.collect()}
    described = set(re.findall(r"^\| `([a-z_]+)` \|", doc, flags=re.M))
    wire = {n.removeprefix("burnguard_") + ("_total" if f.type == "counter" else "")
            for f in m.registry.collect() for n in [f.name]}
    assert wire <= described, f"metrics missing from docs/operations.md: {sorted(wire - described)}"
    rules = yaml.safe_load(doc.split("```yaml\n", 1)[1].split("```", 1)[0])
    used = {n for r in rules["groups"][0]["rules"] for n in re.findall(r"burnguard_[a-z_]+", r["expr"])}
    exposed = {f"burnguard_{w}" for w in wire}
    assert used and used <= exposed and len(families) == len(wire)


def test_live_series_counts_the_keys_with_detector_state_not_their_series() -> None:
    from streams.agents.detect import Detect
    from streams.scoring import BucketScorer
    from streams.settings import Settings
    from streams.state.codec import decode, encode
    from streams.state.values import KeyMonitors, SeriesState, legacy_key
    from tests.support import detect_scenario as sc

    table: dict[str, bytes] = {}
    msgs = sc.messages()[:30]  # ten minutes of two full keys and their team roll-up
    sc.run(lambda t, send: Detect(t, BucketScorer(Settings(_env_file=None)), send), table, msgs)
    keys = {m.key for m in msgs}
    series = sum(len(decode(v).kinds()) for v in table.values())
    assert len(keys) == 3 and series > 3 * len(keys)  # each key holds several series in its one value
    # a key last written in the layout before: its one old value (one series) is one value of monitors
    old = decode(table[sc.FULL]).get("spend")
    table[legacy_key(sc.V1_KEY, "spend")] = encode(SeriesState(old.seq, old.at, old.monitor))
    assert all(type(decode(table[k])) is KeyMonitors for k in keys)

    m = Metrics()
    m.table_sizes({k: b"" for k in keys}, table, {"monitors": table})
    assert m.value("burnguard_live_series") == len(keys) + 1 == m.value("burnguard_table_keys", table="monitors")
    assert m.value("burnguard_live_keys") == len(keys)
    help_text = next(f for f in m.registry.collect() if f.name == "burnguard_live_series").documentation
    assert "x metric" not in help_text and help_text.startswith("Allocation keys")

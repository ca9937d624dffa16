"""The producer-side CLI against the real embedded broker: publish (JSON lines, FOCUS CSV) and
dead-letter replay."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from schemas.deadletter import DeadLetter
from sinks.store import AlertStore
from streams.cli import main
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.settings import ALL_TOPICS
from streams.harness.topic_reader import TopicReader

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"


@pytest.fixture()
def broker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    with EmbeddedBroker() as b:
        create_topics(b.bootstrap, ALL_TOPICS, partitions=4)
        monkeypatch.setenv("BURNGUARD_BROKER", b.url)
        monkeypatch.setenv("BURNGUARD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
        yield b


def events_on(bootstrap: str, topic: str) -> list[dict]:
    reader = TopicReader(bootstrap, topic)
    try:
        out: list[dict] = []
        for _ in range(10):  # a few polls: the first may return before the fetch completes
            for value in reader.poll(timeout_ms=300):
                doc = orjson.loads(value)
                out += doc if isinstance(doc, list) else [doc]
        return out
    finally:
        reader.close()


def test_publish_sends_valid_lines_and_reports_each_bad_one(broker, tmp_path, capsys) -> None:
    ts = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    good = [{"timestamp": ts, "model": "gpt-4o", "input_tokens": 10 * i, "tags": {"team": "t"}} for i in range(1, 4)]
    lines = [orjson.dumps(e).decode() for e in good] + ['{"model": "gpt-4o", "timestamp": "yesterday"}', ""]
    path = tmp_path / "usage.jsonl"
    path.write_text("\n".join(lines))
    assert main(["publish", str(path), "--batch-size", "2"]) == 1  # one line rejected
    out, err = capsys.readouterr()
    assert "sent 3 events in 2 messages to usage.llm; 1 line(s) rejected" in out
    assert "line 4" in err and "timestamp" in err
    assert events_on(broker.bootstrap, "usage.llm") == good


def test_publish_focus_csv_sends_valid_rows_and_names_the_bad_line(broker, tmp_path, capsys) -> None:
    rows = (PAYLOADS / "focus.csv").read_text().strip().splitlines()[1:]
    assert any(row.startswith("-") for row in rows)  # a credit: accepted and netted (issue 9)
    bad = tmp_path / "focus_bad.csv"
    bad.write_text((PAYLOADS / "focus.csv").read_text().rstrip("\n") + "\n" + rows[0].replace(",USD,", ",EUR,") + "\n")
    bad_line = len(rows) + 2
    assert main(["publish", "--source", "billing", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert f"line {bad_line}: " in err and "USD" in err
    sent = events_on(broker.bootstrap, "usage.billing")
    assert len(sent) == len(rows) > 0
    assert f"sent {len(rows)} events" in out and "1 line(s) rejected" in out
    assert main(["publish", "--source", "llm", str(PAYLOADS / "focus.csv")]) == 2


def test_deadletter_replay_republishes_original_bytes_once(broker, tmp_path, capsys) -> None:
    store = AlertStore(f"sqlite:///{tmp_path / 'cli.db'}")
    originals = [b'{"model": "m", "timestamp": "not a time"}', b"\x00\x01 binary"]
    try:
        for i, raw in enumerate(originals):
            store.save_dead_letter(DeadLetter.from_bytes(raw, reason="bad", topic="usage.llm", partition=0, offset=i))
        store.save_dead_letter(DeadLetter.from_bytes(b"{}", reason="other", topic="usage.gpu"))
        assert main(["deadletter", "replay", "--topic", "usage.llm"]) == 0
        assert "replayed 2 dead letter(s)" in capsys.readouterr().out
        reader = TopicReader(broker.bootstrap, "usage.llm")
        got = [v for _ in range(10) for v in reader.poll(timeout_ms=300)]
        reader.close()
        assert got == originals  # original bytes, original order
        assert main(["deadletter", "replay", "--topic", "usage.llm"]) == 0  # nothing pending: no resend
        assert "replayed 0 dead letter(s)" in capsys.readouterr().out
        pending = store.dead_letter_rows(pending_only=True)
        assert [dl.topic for _, dl in pending] == ["usage.gpu"]
        assert main(["deadletter", "list"]) == 0
        listing = capsys.readouterr().out
        assert "usage.gpu" in listing and "binary" in listing
    finally:
        store.close()


def test_producer_sends_a_lone_event_within_its_linger_bound(broker) -> None:
    import time

    from sinks.kafka_producer import UsageProducer

    producer = UsageProducer(broker.bootstrap, batch_size=500, max_linger_s=0.5, stream_key="lone")
    try:
        producer.send("llm", {"model": "m", "timestamp": "2026-11-20T00:00:00Z"})
        time.sleep(1.5)  # no flush, no more events: the linger bound alone must send it
        producer.producer.flush(timeout=10)
        assert (producer.sent_events, producer.sent_messages) == (1, 1)
        assert events_on(broker.bootstrap, "usage.llm") == [{"model": "m", "timestamp": "2026-11-20T00:00:00Z"}]
    finally:
        producer.close()

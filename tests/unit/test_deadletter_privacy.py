"""Dead letters keep usage, never prompt or response text; the store purges them after the retention (issue 9)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from schemas.deadletter import DeadLetter, strip_content
from schemas.ingest import Normalizer
from sinks.store import AlertStore

PAYLOAD = Path(__file__).resolve().parents[1] / "fixtures" / "payloads" / "litellm_real" / "sdk_priced.json"
SECRET = "refund policy"  # in the fixture's prompt ("What is our refund policy? ...")
ANSWER = "Within 30 days."  # LiteLLM's logged response


def bad_litellm() -> dict:
    p = json.loads(PAYLOAD.read_text())
    assert SECRET in json.dumps(p["messages"]) and ANSWER in json.dumps(p["response"])
    p["startTime"] = "not a time"
    return p


def test_rejected_single_event_keeps_usage_but_not_prompt_or_response() -> None:
    _, (rej,) = Normalizer().parse("llm", orjson.dumps(bad_litellm()))
    assert SECRET not in rej.raw.decode() and ANSWER not in rej.raw.decode()
    kept = orjson.loads(rej.raw)
    assert (kept["model"], kept["prompt_tokens"], kept["response_cost"]) == ("gpt-4o", 10, bad_litellm()["response_cost"])
    assert "messages" not in kept and "response" not in kept


def test_rejected_events_in_an_envelope_and_past_the_cap_keep_no_prompt() -> None:
    _, rejects = Normalizer(max_rejects_per_message=1).parse("llm", orjson.dumps([bad_litellm()] * 3))
    assert len(rejects) == 2
    for rej in rejects:
        assert SECRET not in rej.raw.decode() and ANSWER not in rej.raw.decode()


def test_otel_prompt_attributes_are_stripped() -> None:
    span = {"format": "otel", "attributes": {"gen_ai.request.model": "m", "gen_ai.prompt": SECRET,
                                              "gen_ai.input.messages": [{"content": SECRET}]}}
    _, (rej,) = Normalizer().parse("llm", orjson.dumps(span))
    assert SECRET not in rej.raw.decode() and orjson.loads(rej.raw)["attributes"] == {"gen_ai.request.model": "m"}
    with_events = {**span, "events": [{"name": "gen_ai.user.message", "attributes": {"content": SECRET}}]}
    assert SECRET not in json.dumps(strip_content(with_events))  # span events carry message bodies


def test_an_event_without_content_keeps_its_original_bytes() -> None:
    raw = b'{"model": "m",   "timestamp": "nope"}'
    _, (rej,) = Normalizer().parse("llm", raw)
    assert rej.raw == raw


def test_purge_dead_letters_older_than_the_retention(database_url: str) -> None:
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    store = AlertStore(database_url)
    try:
        for age_days, offset in ((45, 1), (31, 2), (29, 3), (0, 4)):
            dl = DeadLetter.from_bytes(b"{}", reason="r", topic="usage.llm", partition=0, offset=offset)
            dl.received_at = now - timedelta(days=age_days)
            store.save_dead_letter(dl)
        assert store.purge_dead_letters(30, now=now) == 2
        assert sorted(dl.offset for dl in store.dead_letters()) == [3, 4]
        assert store.purge_dead_letters(30, now=now) == 0
    finally:
        store.close()


def test_deadletter_purge_command(tmp_path, monkeypatch, capsys) -> None:
    from streams.cli import main

    url = f"sqlite:///{tmp_path / 'dl.db'}"
    monkeypatch.setenv("BURNGUARD_DATABASE_URL", url)
    monkeypatch.setenv("BURNGUARD_DEAD_LETTER_RETENTION_DAYS", "7")
    store = AlertStore(url)
    for age, offset in ((8, 1), (1, 2)):
        dl = DeadLetter.from_bytes(b"{}", reason="r", topic="usage.llm", partition=0, offset=offset)
        dl.received_at = datetime.now(timezone.utc) - timedelta(days=age)
        store.save_dead_letter(dl)
    store.close()
    assert main(["deadletter", "purge"]) == 0
    assert "purged 1 dead letter(s) older than 7 day(s)" in capsys.readouterr().out

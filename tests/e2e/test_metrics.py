"""The worker's operations endpoints, end to end: a real broker, a real worker process, its web port.

Known messages are published (good events in envelopes and alone, in two formats, and bad ones of
three kinds); ``/metrics`` must count exactly what was sent, by source and format, and a dead letter per
bad event by kind, and show every consumed usage partition caught up (lag 0). ``/health`` answers and
``/ready`` says ready once partitions are assigned and recovery is done.
"""

from __future__ import annotations

import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.worker_process import WorkerProcess
from streams.settings import ALL_TOPICS, USAGE_TOPICS
from tests.support.waits import until
from tests.support.worker_web import get, scrape

pytestmark = pytest.mark.e2e

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def native(i: int) -> dict[str, Any]:
    return {"format": "native", "timestamp": (NOW - timedelta(minutes=5, seconds=i % 60)).isoformat(),
            "model": "gpt-4o-mini", "cost_usd": 0.001 * (i % 7 + 1), "request_id": f"n-{i}",
            "tags": {"team": f"t{i % 3}", "feature": "chat", "environment": "production"}}


def openai(i: int) -> dict[str, Any]:
    return {"object": "chat.completion", "created": int((NOW - timedelta(minutes=4)).timestamp()),
            "model": "gpt-4o", "id": f"chatcmpl-{i}", "usage": {"prompt_tokens": 100 + i, "completion_tokens": 10},
            "metadata": {"team": "search", "feature": "answers"}}


def messages() -> list[bytes]:
    """3 envelopes of 40 native events; 6 OpenAI responses alone; an envelope of 5 native events of which
    2 are invalid; 2 messages that are not JSON; 1 native event from the far future."""
    out = [orjson.dumps([native(e * 40 + i) for i in range(40)]) for e in range(3)]
    out += [orjson.dumps(openai(i)) for i in range(6)]
    out.append(orjson.dumps({"events": [native(200), {"model": 3}, native(201), {**native(202), "cost_usd": -1},
                                        native(203)]}))
    out += [b"{not json", b"\xff\xfe garbage"]
    out.append(orjson.dumps({**native(300), "timestamp": "2999-01-01T00:00:00+00:00"}))
    return out


EXPECTED_EVENTS = {("llm", "native"): 3 * 40 + 3, ("llm", "openai"): 6}
EXPECTED_DEAD_LETTERS = {("usage.llm", "invalid_event"): 2, ("usage.llm", "invalid_json"): 2,
                         ("usage.llm", "future_timestamp"): 1}


def test_metrics_count_what_was_published_and_the_worker_reports_ready(tmp_path) -> None:
    sent = messages()
    with EmbeddedBroker() as broker:
        create_topics(broker.bootstrap, ALL_TOPICS, partitions=4)
        with WorkerProcess(broker.url, f"sqlite:///{tmp_path / 'm.db'}", tmp_path / "worker.log") as worker:
            port = int(worker.env["BURNGUARD_WEB_PORT"])
            until("/health", lambda: get(port, "/health")[0] == 200, 120, worker.check_alive)
            status, body = until("/ready", lambda: (r := get(port, "/ready"))[0] == 200 and r, 120, worker.check_alive,
                                 detail=lambda: get(port, "/ready"))
            state = orjson.loads(body)
            assert state["ready"] and state["recovery_done"] and state["assigned_partitions"] > 0

            producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
            for i, value in enumerate(sent):
                producer.send(USAGE_TOPICS["llm"], value, key=f"gw-{i % 4}".encode())
            producer.flush()
            producer.close()

            def caught_up() -> dict | None:
                m = scrape(port)
                lag = m.get("burnguard_consumer_lag", {})
                usage_lag = {k: v for k, v in lag.items() if dict(k)["topic"] in USAGE_TOPICS.values()}
                done = (m.get("burnguard_usage_messages_total", {}).get((("source", "llm"),)) == len(sent)
                        and sum(m.get("burnguard_dead_letters_total", {}).values()) >= 5
                        and usage_lag and not any(usage_lag.values()))
                return m if done else None

            def progress() -> dict:
                watched = ("burnguard_usage_messages_total", "burnguard_dead_letters_total", "burnguard_consumer_lag")
                return {k: v for k, v in scrape(port).items() if k in watched}

            m = until("every message read, dead-lettered and committed", caught_up, 120, worker.check_alive,
                      detail=progress)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")

    events = {(dict(k)["source"], dict(k)["format"]): v for k, v in m["burnguard_events_in_total"].items()}
    assert events == EXPECTED_EVENTS
    dead = {(dict(k)["topic"], dict(k)["reason"]): v for k, v in m["burnguard_dead_letters_total"].items()}
    assert dead == EXPECTED_DEAD_LETTERS
    assert m["burnguard_events_rejected_total"][()] == sum(EXPECTED_DEAD_LETTERS.values())
    assert m["burnguard_ingest_delay_seconds_count"][()] == len(sent)
    # one lag series per usage partition the worker consumes (one worker: all 3 topics x 4 partitions)
    usage_lag = {k for k in m["burnguard_consumer_lag"] if dict(k)["topic"] in USAGE_TOPICS.values()}
    assert len(usage_lag) == 3 * 4
    assert m["burnguard_ready"][()] == 1
    assert m["burnguard_live_keys"][()] >= 0 and "burnguard_table_keys" in m

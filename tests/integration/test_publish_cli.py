"""``burnguard publish`` as a producer meets it: every bad line named, one clear sentence for a broker that is
down (no traceback, exit != 0), ``--check`` sends nothing. Real embedded broker, real CLI process."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.settings import ALL_TOPICS
from streams.harness.topic_reader import TopicReader

ROOT = Path(__file__).resolve().parents[2]


def usage_file(tmp_path: Path) -> tuple[Path, list[dict]]:
    ts = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    good = [{"timestamp": ts, "model": "gpt-4o", "input_tokens": 10 * i, "tags": {"team": "t"}} for i in (1, 2)]
    lines = [orjson.dumps(good[0]).decode(),
             '{"model": "gpt-4o", "timestamp": "yesterday"}',  # line 2: bad time
             orjson.dumps(good[1]).decode(),
             '{"model": 1',  # line 4: not JSON
             "",
             orjson.dumps([good[0], {"model": "m"}]).decode()]  # line 6: envelope, event 1 bad: the line is not sent
    path = tmp_path / "usage.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, good


def burnguard(*args: str, env: dict[str, str | None]) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process; an env value of None unsets that variable."""
    full = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=full)


def test_stopped_broker_every_bad_line_named_then_one_sentence(tmp_path: Path) -> None:
    with EmbeddedBroker() as b:
        url, address = b.url, b.bootstrap
    # the broker is stopped now: nothing listens at its address
    path, _ = usage_file(tmp_path)
    r = burnguard("publish", str(path), "--connect-timeout", "3", env={"BURNGUARD_BROKER": url})
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr and "KafkaTimeoutError" not in r.stderr
    err = r.stderr.splitlines()
    assert [line.split(": ", 2)[1] for line in err if line.startswith(f"{path}: ")] == [
        "line 2", "line 4", "line 6, event 1"]
    assert "timestamp" in err[0] and "invalid JSON" in err[1]
    sentence = [line for line in err if line.startswith("error: ")]
    assert len(sentence) == 1
    assert address in sentence[0] and "BURNGUARD_BROKER" in sentence[0]
    assert "3 line(s) rejected" in r.stderr


def test_check_validates_every_line_and_sends_nothing(tmp_path: Path) -> None:
    path, _ = usage_file(tmp_path)
    with EmbeddedBroker() as b:
        create_topics(b.bootstrap, ALL_TOPICS, partitions=1)
        r = burnguard("publish", str(path), "--check", env={"BURNGUARD_BROKER": b.url})
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert "checked 5 line(s): 2 valid events, 3 line(s) rejected; nothing sent" in r.stdout
        assert r.stderr.count(f"{path}: line") == 3
        reader = TopicReader(b.bootstrap, "usage.llm")
        try:
            assert [v for _ in range(5) for v in reader.poll(timeout_ms=300)] == []
        finally:
            reader.close()


def test_check_needs_no_broker_and_passes_a_clean_file(tmp_path: Path) -> None:
    path, good = usage_file(tmp_path)
    path.write_text("\n".join(orjson.dumps(e).decode() for e in good) + "\n")
    r = burnguard("publish", str(path), "--check", env={"BURNGUARD_BROKER": None})
    assert r.returncode == 0, r.stderr
    assert "checked 2 line(s): 2 valid events, 0 line(s) rejected; nothing sent" in r.stdout


@pytest.mark.parametrize("value", ["127.0.0.1:9092", None])  # not a kafka:// URL; unset
def test_no_broker_or_a_bad_broker_setting_is_one_line(tmp_path: Path, value: str | None) -> None:
    path, _ = usage_file(tmp_path)
    r = burnguard("publish", str(path), env={"BURNGUARD_BROKER": value})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "BURNGUARD_BROKER" in r.stderr.splitlines()[-1]

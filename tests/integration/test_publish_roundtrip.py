"""``burnguard publish`` end to end: what reaches the topic is every valid event of the file, once, in file order,
and nothing else; envelopes stay within --batch-size events and 1,000,000 bytes. Real embedded broker, real CLI.

The expected events are known by construction (the file is made of lines known to be good or bad), not computed by
the code under test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson

from bench.workload import Workload
from streams.embedded_broker import EmbeddedBroker, create_topics
from streams.harness.topic_reader import TopicReader
from streams.settings import ALL_TOPICS

ROOT = Path(__file__).resolve().parents[2]


def test_every_valid_event_arrives_once_in_order(tmp_path: Path) -> None:
    end = time.time()
    lite = Workload(shape="litellm", events=1500, batch=1, keys=200, partitions=1, span_s=60.0, end=end).messages()[0]
    native = Workload(shape="native", events=1500, batch=1, keys=200, partitions=1, span_s=60.0, end=end).messages()[0]
    big = [orjson.dumps({**orjson.loads(lite[i]), "messages": [{"content": "x" * 40_000}]}) for i in range(120)]
    good_env = b"[" + native[0] + b"," + lite[0] + b"]"
    bad = [b'{"model": "gpt-4o", "startTime": 1, "response_cost": -1}', b'{"timestamp": "x", "model": "m"}',
           b"{not json", b"[" + native[1] + b', {"model": 3}]']
    lines: list[bytes] = []
    expected: list[object] = []
    for i in range(1500):
        lines += [lite[i], native[i]]
        expected += [orjson.loads(lite[i]), orjson.loads(native[i])]
        if i % 300 == 7:
            lines += [bad[(i // 300) % len(bad)], good_env]
            expected += orjson.loads(good_env)
        if i % 12 == 0 and i // 12 < len(big):
            lines.append(big[i // 12])
            expected.append(orjson.loads(big[i // 12]))
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with EmbeddedBroker() as b:
        create_topics(b.bootstrap, ALL_TOPICS, partitions=2)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BURNGUARD_")}
        r = subprocess.run([sys.executable, "-m", "streams.cli", "publish", "--source", "llm", str(path)], cwd=ROOT,
                           env={**env, "BURNGUARD_BROKER": b.url}, capture_output=True, text=True, timeout=120)
        assert r.returncode == 1, r.stderr  # some lines rejected, the rest sent
        assert r.stderr.count(f"{path}: line ") == 5
        reader = TopicReader(b.bootstrap, "usage.llm")
        try:
            messages: list[bytes] = []
            deadline = time.monotonic() + 30
            while sum(len(orjson.loads(m)) for m in messages) < len(expected) and time.monotonic() < deadline:
                messages += reader.poll(timeout_ms=500)
        finally:
            reader.close()
    got = [e for m in messages for e in orjson.loads(m)]
    assert got == expected
    assert f"sent {len(expected)} events in {len(messages)} messages to usage.llm; 5 line(s) rejected" in r.stdout
    assert all(len(m) <= 1_000_000 and len(orjson.loads(m)) <= 500 for m in messages)
    assert any(len(orjson.loads(m)) < 500 for m in messages[:-1])  # the 40 KB payloads made smaller envelopes

"""``burnguard publish`` validation: the fast lane for native lines says exactly what the Normalizer says."""

from __future__ import annotations

import io
import time

import orjson

from bench.workload import Workload
from streams.commands.publish import json_lines, validate

T = "2026-01-05T10:00:00Z"
END = time.time()
SOON = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))


def lines() -> bytes:
    native = Workload(shape="native", events=50, batch=1, keys=10, partitions=1, span_s=60.0, end=END).messages()[0]
    lite = Workload(shape="litellm", events=3, batch=1, keys=10, partitions=1, span_s=60.0, end=END).messages()[0]
    odd = [
        b'{"timestamp": "%s", "model": "gpt-4o", "input_tokens": -1}' % T.encode(),
        b'{"timestamp": "%s", "model": "gpt-4o", "input_tokens": "3"}' % T.encode(),
        b'{"timestamp": "%s", "model": "gpt-4o"}' % SOON.encode(),
        b'{"timestamp": "%s", "model": "gpt-4o", "tags": {"team": " a "}}' % T.encode(),
        b'{"timestamp": "%s", "model": "gpt-4o", "tags": {"team": "%s"}}' % (T.encode(), b"x" * 129),
        b'{"timestamp": "%s", "model": "gpt-4o", "a": 1.5e3, "b": "\\u00e9"}' % T.encode(),
        b'{"timestamp": "%s", "model": "gpt-4o"}, {"model": "x"}' % T.encode(),
        b'{"events": [{"timestamp": "%s", "model": "gpt-4o"}, 7]}' % T.encode(),
        b'{"format": "native", "events": [{"timestamp": "%s", "model": "gpt-4o"}]}' % T.encode(),
        b'[{"timestamp": "%s", "model": "gpt-4o"}]' % T.encode(),
        b"{not json", b"42", b"",
    ]
    return b"\n".join([*native[:20], *odd, *lite, *native[20:]]) + b"\n"


LINES = lines()


def run(fast: bool) -> tuple[list[object], int, int, str]:
    err = io.StringIO()
    out = validate("f.jsonl", json_lines(io.BytesIO(LINES)), "llm", err=err, fast=fast)
    return [orjson.loads(e) for e in out.events], out.lines, out.bad_lines, err.getvalue()


def test_fast_lane_gives_the_same_events_and_reports() -> None:
    fast, ref = run(True), run(False)
    assert fast == ref
    assert ref[2] == 7 and len(ref[0]) == 50 + 3 + 5  # bad lines; valid events (native, litellm, odd ones)

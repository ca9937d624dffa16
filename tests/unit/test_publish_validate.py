"""``burnguard publish`` validation: the fast lane for native lines says exactly what the Normalizer says."""

from __future__ import annotations

import io
import time

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.workload import Workload
from streams.commands.publish import json_lines, validate
from tests.unit.test_normalize_fast import FAST, REFERENCE, native_events

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


def native(**kw: object) -> bytes:
    return orjson.dumps({"timestamp": T, "model": "gpt-4o", "input_tokens": 10, "tags": {"team": "a"}, **kw})


# Hand-worked: native lines the Normalizer takes (None) or rejects (what its reason must say).
NATIVE = [
    (native(), None), (native(model="acme-private-llm"), None),  # priced by the catalog / unpriced: both taken
    (native(cost_usd=0.5, provider="openai", request_id="r" * 200), None), (native(model="m" * 200), None),
    (native(tags={"team": "a", "extra": {"nested": [1]}}), None), (native(tags={"team": " a "}), None),
    (native(timestamp="2026-01-05"), None),  # a date alone is midnight UTC (the fast lane steps aside)
    (native(model="m" * 201), "native: model: String should have at most 200 characters"),
    (native(provider="p" * 65), "native: provider: String should have at most 64 characters"),
    (native(request_id="r" * 201), "native: request_id: String should have at most 200 characters"),
    (native(tags={"team": "t" * 129}), "native: tags.team: String should have at most 128 characters"),
    (native(output_tokens=-1), "native: output_tokens: Input should be greater than or equal to 0"),
    (native(cost_usd=-1), "native: cost_usd: "), (native(tags={"team": 3}), "native: tags.team: Input should be a valid"),
    (native(timestamp="yesterday"), "native: timestamp: "),
    (native(timestamp=SOON), "in the future"), (native(model=""), "native: model: String should have at least 1"),
]


def test_native_lines_hand_worked() -> None:
    lines = b"\n".join(line for line, _ in NATIVE) + b"\n"
    got = []
    for fast in (True, False):
        err = io.StringIO()
        out = validate("n.jsonl", json_lines(io.BytesIO(lines)), "llm", err=err, fast=fast)
        got.append(([orjson.loads(e) for e in out.events], out.bad_lines, err.getvalue()))
    assert got[0] == got[1]
    events, bad_lines, report = got[1]
    assert events == [orjson.loads(line) for line, reason in NATIVE if reason is None]
    bad = [(i + 1, reason) for i, (_, reason) in enumerate(NATIVE) if reason is not None]
    assert bad_lines == len(bad) and len(report.splitlines()) == len(bad)
    for (n, reason), text in zip(bad, report.splitlines()):
        assert text.startswith(f"n.jsonl: line {n}: ") and reason in text, (reason, text)


def agree(docs: list[object]) -> None:
    """``docs`` as one line each: the fast lanes send and report exactly what the Normalizer alone does."""
    data = b"\n".join(orjson.dumps(d) for d in docs) + b"\n"
    got = []
    for fast in (True, False):
        err = io.StringIO()
        out = validate("g.jsonl", json_lines(io.BytesIO(data)), "llm", err=err, fast=fast)
        got.append(([orjson.loads(e) for e in out.events], out.lines, out.bad_lines, err.getvalue()))
    assert got[0] == got[1]


def test_the_worker_native_cases_as_lines() -> None:
    agree([e for case in FAST + REFERENCE for e in case])
    agree([*FAST, *REFERENCE])  # and as envelope lines (the Normalizer's)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(native_events, min_size=1, max_size=8))
def test_generated_native_lines_agree(docs: list[dict[str, object]]) -> None:
    agree(docs)


def test_a_batch_size_below_one_is_a_usage_error_not_a_traceback(tmp_path) -> None:
    import subprocess
    import sys

    events = tmp_path / "events.jsonl"
    events.write_text("")
    for bad in ("0", "-3", "many"):
        run = subprocess.run([sys.executable, "-m", "streams.cli", "publish", "--check", "--batch-size", bad,
                              str(events)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 2, (bad, run.stderr)
        assert "at least 1" in run.stderr and "Traceback" not in run.stderr, run.stderr

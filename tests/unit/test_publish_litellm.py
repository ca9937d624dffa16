"""``burnguard publish`` on LiteLLM payload lines: its fast lane (``schemas.fast_litellm.check_litellm``, then the
line sent as written) gives the Normalizer's verdict on every line, and every reason the Normalizer gives.

Expected verdicts are hand-worked (the reason each bad line must get) or the Normalizer's own
(``validate(fast=False)``: every line through ``Normalizer.parse``); never the fast lane's. The cases of
``tests/unit/test_litellm_fast.py`` (the worker's LiteLLM fast path) are reused as lines.
"""

from __future__ import annotations

import io
import random
import time
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.workload import Workload
from schemas.fast_litellm import CAN_REJECT, LiteLlmChecker, check_litellm
from schemas.ingest import MAX_MESSAGE_BYTES, Normalizer
from schemas.sources.litellm import LiteLlmPayload
from streams.commands.publish import envelopes, json_lines, validate
from tests.unit.test_litellm_fast import FAST, JSON_NEAR, NOT_JSON, REFERENCE, dumps, ev, mutated, with_raw

NORMALIZER = Normalizer()
CHECKER = LiteLlmChecker(NORMALIZER.catalog, NORMALIZER.rules)
T = time.time() - 3600.0


def fast_lane(line: bytes) -> bool:
    return check_litellm(line, CHECKER, now=time.time(), max_future_skew_s=900.0, one=True)


def verdict(line: bytes) -> str | None:
    """The Normalizer's verdict on one line: ``None`` (one record, no rejection) or its first reason."""
    records, rejects = NORMALIZER.parse("llm", line)
    if rejects:
        return rejects[0].reason
    assert len(records) >= 1
    return None


def run(lines: list[bytes], fast: bool) -> tuple[list[Any], int, int, str]:
    err = io.StringIO()
    out = validate("f.jsonl", json_lines(io.BytesIO(b"\n".join(lines) + b"\n")), "llm", err=err, fast=fast)
    return [orjson.loads(e) for e in out.events], out.lines, out.bad_lines, err.getvalue()


def agree(lines: list[bytes]) -> tuple[list[Any], int, int, str]:
    """Both lanes on one file: the same events sent, the same counts, the same report, line by line."""
    fast, ref = run(lines, True), run(lines, False)
    assert fast == ref
    return ref


BASE = {"id": "chatcmpl-1", "model": "openai/gpt-4o", "custom_llm_provider": "openai", "startTime": T,
        "endTime": T + 1.25, "response_cost": 0.0042, "prompt_tokens": 1000, "completion_tokens": 170,
        "total_tokens": 1170, "status": "success", "end_user": "c9", "request_tags": ["feature:chat"],
        "metadata": {"user_api_key_team_alias": "search", "usage_object": {"prompt_tokens_details":
                                                                           {"cached_tokens": 100}}}}


def line(**kw: Any) -> bytes:
    """BASE with fields replaced (``...`` removes one), as one JSON line."""
    doc = {**BASE, **{k: v for k, v in kw.items() if v is not ...}}
    for k, v in kw.items():
        if v is ...:
            doc.pop(k, None)
    return orjson.dumps(doc)


# Hand-worked: lines the Normalizer takes, each as one event (and the fast lane takes the first ones too).
GOOD_FAST = [
    line(), line(format="litellm"), orjson.dumps({"model": "gpt-4o", "startTime": T}),
    line(response_cost=0.0), line(model="acme-private-llm", custom_llm_provider=...),  # priced by the catalog / unpriced
    line(status="failure"), line(cache_hit=True), line(cache_hit="true"), line(team_id=7),
    line(custom_llm_provider="p" * 64), line(model="m" * 200), line(id="i" * 200), line(prompt_tokens=10**12),
    line(end_user={"a": [1]}), line(request_tags='["team:a"]'), line(model_group=["x"]), line(status={"s": 1}),
    line(metadata={"usage_object": {"cache_read_input_tokens": -1}, "spend_logs_metadata": "not json"}),
    line(metadata={"user_api_key_team_alias": {"deep": [1]}, "user_api_key_alias": 1.5e300}),
    line(endTime=T - 5), line(total_tokens=None), line(hidden_params={"x": "\u00e9\u2603", "n": 1.5e300}),
    line(messages=[{"content": "say \"events\" and resourceSpans"}]),  # the words, in a string only
    orjson.dumps(BASE)[:-1] + b', "note": "caf\\u00e9 \\ud83d\\ude00"}',  # escapes in a string
]
# Also taken by the Normalizer, but the fast lane steps aside (a lax type, another time unit, a lone object that
# has an "events" key): the Normalizer decides.
GOOD_REFERENCE = [
    line(prompt_tokens="3"), line(startTime=T * 1000), line(startTime="2026-01-05T10:00:00Z"),
    line(metadata='{"user_api_key_team_alias": "ads"}'), line(events=5), line(events={"a": 1}),
    orjson.dumps(BASE)[:-1] + b', "\\u0065vents": 5}',
]
# Hand-worked: lines the Normalizer rejects, and what its reason must say.
BAD = [
    (line(model=...), "litellm: model: Field required"),
    (line(startTime=...), "litellm: startTime: Field required"),
    (line(model=""), "model: String should have at least 1 character"),
    (line(model="m" * 201), "model: String should have at most 200 characters"),
    (line(model=3), "model: Input should be a valid string"),
    (line(custom_llm_provider="p" * 65), "custom_llm_provider: String should have at most 64 characters"),
    (line(prompt_tokens=-1), "prompt_tokens: Input should be greater than or equal to 0"),
    (line(completion_tokens=10**12 + 1), "completion_tokens: Input should be less than or equal to"),
    (line(total_tokens=-1), "total_tokens: Input should be greater than or equal to 0"),
    (line(prompt_tokens=2.5), "prompt_tokens: Input should be a valid integer"),
    (line(response_cost=-0.01), "response_cost: Value error, must be a finite, non-negative number"),
    (line(response_cost="abc"), "response_cost: Input should be a valid number"),
    (line(response_time=-1), "response_time: Value error, must be a finite, non-negative number"),
    (line(startTime=-5), "timestamp must not be negative"),
    (line(startTime="yesterday"), "startTime: Input should be a valid datetime"),
    (line(endTime=-5), "endTime: Value error, timestamp must not be negative"),
    (line(startTime=time.time() + 7200), "in the future"),
    (line(id="i" * 201), "id: String should have at most 200 characters"),
    (line(format="openai"), "openai: "),
    (line(format="bogus"), "unknown format 'bogus'"),
    (orjson.dumps(BASE)[:-1] + b', "x": 1e400}', "invalid JSON"),
    (orjson.dumps(BASE)[:-1] + b', "x": "\xff"}', "invalid JSON"),
    (orjson.dumps(BASE) + b" x", "invalid JSON"),
    (orjson.dumps(BASE) + b", " + orjson.dumps(BASE), "invalid JSON"),
]


def test_hand_worked_lines_get_the_normalizers_verdict_and_reason() -> None:
    for good in GOOD_FAST + GOOD_REFERENCE:
        assert verdict(good) is None, good
    for bad, reason in BAD:
        got = verdict(bad)
        assert got is not None and reason in got, (bad[:200], got)
        assert not fast_lane(bad), bad[:200]
    assert all(fast_lane(good) for good in GOOD_FAST)
    assert not any(fast_lane(good) for good in GOOD_REFERENCE)
    lines = [*GOOD_FAST, *(b for b, _ in BAD), *GOOD_REFERENCE]
    events, n, bad_lines, report = agree(lines)
    assert (n, bad_lines, len(events)) == (len(lines), len(BAD), len(GOOD_FAST) + len(GOOD_REFERENCE))
    reported = report.splitlines()
    assert len(reported) == len(BAD)
    for i, ((_, reason), text) in enumerate(zip(BAD, reported)):
        assert text.startswith(f"f.jsonl: line {len(GOOD_FAST) + i + 1}: ") and reason in text, text


def test_envelope_lines_are_the_normalizers_to_judge() -> None:
    good, bad = orjson.dumps(BASE), line(prompt_tokens=-1)
    lines = [b"[" + good + b"," + bad + b"]", b'{"events": [' + good + b", 7]}", b'{"events": [' + good + b"]}",
             good[:-1] + b', "\\u0065vents": [' + good + b", " + bad + b"]}",  # an envelope, its key escaped
             good[:-1] + b', "resourceSpans": null}', b'{"format": "litellm", "events": [' + good + b"]}"]
    assert not any(fast_lane(x) for x in lines)
    events, n, bad_lines, report = agree(lines)
    assert (n, bad_lines, len(events)) == (6, 3, 3)
    assert [r.split(": ")[1] for r in report.splitlines()] == ["line 1, event 1", "line 2, event 1", "line 4, event 1"]


def test_the_worker_fast_path_cases_as_lines() -> None:
    fast = [dumps(c) for c in FAST]
    reference = [dumps(c) for c in REFERENCE]
    for x in fast:
        assert verdict(x) is None, x[:200]
    assert all(fast_lane(x) for x in fast)  # what the worker's fast path takes, publish's lane takes
    for x in reference:
        if fast_lane(x):
            assert verdict(x) is None, x[:200]
    agree(fast + reference)
    # and as envelopes (check_litellm without one=True): taken only where the Normalizer rejects nothing
    now = time.time()
    assert check_litellm(dumps(FAST), CHECKER, now=now) and check_litellm(dumps({"events": FAST}), CHECKER, now=now)
    for c in REFERENCE:
        env = dumps([*FAST[:3], c])
        if check_litellm(env, CHECKER, now=now):
            assert not NORMALIZER.parse("llm", env)[1], env[-300:]


def test_json_only_orjson_rejects_and_near_misses() -> None:
    lines = [with_raw(f, where)[1:-1] for f in NOT_JSON + JSON_NEAR for where in ("top", "metadata")]
    for x in lines:
        if fast_lane(x):
            assert verdict(x) is None, x[:200]
    assert not any(fast_lane(with_raw(f)[1:-1]) for f in NOT_JSON)
    _, _, bad_lines, _ = agree(lines)
    assert bad_lines == 2 * len(NOT_JSON)


#: JSON values of every kind, some large: none makes the reference reject a field outside CAN_REJECT.
ODD = [None, True, False, 0, -1, 2**63, 1.5, -1e300, "", " x ", "x" * 5000, "team:a", '["team:a"]', '{"team": 1}',
       "null", [], [1, None, "feature=f", {"a": []}], {}, {"team": {"x": 1}, "key.team_alias": 3, "": ""}]


def test_fields_outside_can_reject_never_reject() -> None:
    """The claim the fast lane rests on (``CAN_REJECT``), checked against the reference: any JSON in any other
    field of ``LiteLlmPayload`` or of its metadata still gives a record; and the fast lane's verdicts agree."""
    assert CAN_REJECT <= set(LiteLlmPayload.model_fields)
    others = sorted(set(LiteLlmPayload.model_fields) - CAN_REJECT)
    assert "metadata" in others and "request_tags" in others and "end_user" in others
    meta_fields = sorted(LiteLlmPayload.model_fields["metadata"].annotation.__args__[0].model_fields)  # type: ignore
    lines = []
    for value in ODD:
        lines += [orjson.dumps({"model": "gpt-4o", "startTime": T, name: value}) for name in others]
        lines += [orjson.dumps({"model": "gpt-4o", "startTime": T, "metadata": {name: value}}) for name in meta_fields]
        lines.append(orjson.dumps({"model": "gpt-4o", "startTime": T, "metadata": {"spend_logs_metadata": {
            "team": value, "customer": value}}, "request_tags": [value]}))
    for x in lines:
        assert verdict(x) is None, x[:200]
    agree(lines)


def test_the_bench_workload_takes_the_fast_lane() -> None:
    lines = Workload(shape="litellm", events=300, batch=1, keys=50, partitions=1, span_s=60.0).messages()[0]
    assert all(fast_lane(x) for x in lines)
    events, n, bad_lines, _ = agree(lines)
    assert (n, bad_lines, len(events)) == (300, 0, 300)


def test_lines_over_the_message_size_limit_are_rejected_as_the_worker_would() -> None:
    big_native = orjson.dumps({"timestamp": "2026-01-05T10:00:00Z", "model": "gpt-4o",
                               "tags": {"team": "a", "note": "x" * MAX_MESSAGE_BYTES}})
    big_litellm = line(hidden_params={"x": "y" * MAX_MESSAGE_BYTES})
    _, n, bad_lines, report = agree([big_native, big_litellm, line()])
    assert (n, bad_lines) == (3, 2)
    assert report.count(f"exceeds {MAX_MESSAGE_BYTES}") == 2


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated, min_size=1, max_size=6))
def test_generated_lines_agree(docs: list[dict[str, Any]]) -> None:
    lines = [dumps(d) for d in docs]
    for x in lines:
        if fast_lane(x):
            assert verdict(x) is None, x[:300]
    agree(lines)


def test_envelopes_keep_every_event_once_in_order_within_the_limits() -> None:
    rng = random.Random(5)
    events = [orjson.dumps({"i": i, "pad": "x" * rng.choice([0, 10, 300, 5000])}) for i in range(400)]
    for batch, limit in ((500, 1_000_000), (7, 1_000_000), (500, 6_000), (3, 400)):
        got = list(envelopes(events, batch, limit))
        assert [e for body, _ in got for e in orjson.loads(body)] == [orjson.loads(e) for e in events]
        for body, n in got:
            assert 1 <= n <= batch and len(orjson.loads(body)) == n
            assert len(body) <= limit or n == 1


"""Differential: the LiteLLM fast path (``schemas.fast_litellm``) gives exactly the reference path's work.

Each case runs one sequence of messages through ``reference_work`` (``LiteLlmPayload`` and one ``CostRecord`` per
event) and through ``MessageWork`` (its own Normalizer and limiter), and compares everything normalize sends
(``tests.support.fast_paths.compare``): partial sums per key, spend per budget, requests per model, the newest
event time, the dead letters (reason, index, bytes), and afterwards the Normalizer's counters and the limiter's
overflow counts. Floats are compared exactly. Inputs are the real LiteLLM 1.110.2 payloads of
``tests/fixtures/payloads/litellm_real`` (and the two hand-written ones), alone, in envelopes mixing them, and
altered: lax types, odd shapes, huge values.
"""

from __future__ import annotations

import copy
import json
import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.workload import Workload
from schemas.allocation import AllocationRules
from schemas.cardinality import CardinalityLimiter
from schemas.ingest import Normalizer
from streams.agents.normalize_work import MessageWork, reference_work
from tests.support.fast_paths import BOOK, LEVELS, compare, view

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
REAL = {p.stem: orjson.loads(p.read_bytes()) for p in sorted((PAYLOADS / "litellm_real").glob("*.json"))}
HAND = {p.stem: orjson.loads(p.read_bytes()) for p in (PAYLOADS / "litellm.json",
                                                        PAYLOADS / "litellm_unpriced_cost.json")}
ALL = {**REAL, **HAND}
FAST_NAMES = sorted(ALL)  # every fixture, the failed calls and the cache hit with them


def dumps(doc: Any) -> bytes:
    """JSON bytes (the standard library's: orjson cannot write integers beyond 64 bits)."""
    return json.dumps(doc, ensure_ascii=False).encode()


def ev(name: str = "proxy_team_key", meta: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """A fixture with top-level fields replaced (``...`` removes one) and metadata fields merged (same rule)."""
    doc = copy.deepcopy(ALL[name])
    for k, v in kw.items():
        if v is ...:
            doc.pop(k, None)
        else:
            doc[k] = v
    for k, v in (meta or {}).items():
        if v is ...:
            doc["metadata"].pop(k, None)
        else:
            doc["metadata"][k] = v
    return doc


def test_every_fast_fixture_alone_in_a_list_and_in_an_object_envelope() -> None:
    docs = [ALL[n] for n in FAST_NAMES]
    assert all(compare([dumps(d) for d in docs]))
    assert all(compare([dumps([d]) for d in docs]))
    assert all(compare([dumps({"events": [d]}) for d in docs]))
    assert all(compare([dumps({"format": "litellm", "events": [d]}) for d in docs]))


def test_envelopes_mixing_the_fixtures() -> None:
    docs = [ALL[n] for n in FAST_NAMES]
    mixed = [dumps(docs), dumps(docs[::-1] * 3), dumps({"events": docs * 2, "other": 1})]
    assert all(compare(mixed * 2))  # twice: the second time every combination is cached


def test_hand_worked_key_team_over_request_tags() -> None:
    """Independent of the reference: the key's team wins, a caller's key.* tag is dropped, cost is LiteLLM's."""
    spoof = ev("proxy_tag_contradicts_key_team", meta={"spend_logs_metadata": {"key.team_alias": "ads"}},
               request_tags=["team:ads", "key.team_alias:ads", "feature:chat"])
    w = MessageWork(Normalizer(), BOOK, CardinalityLimiter(), 60, LEVELS).run("llm", dumps([spoof] * 2))
    assert w.fast and w.records == 2
    key = "team=search|feature=chat|customer=unknown|model=gpt-4o|environment=production"
    (p,) = w.by_key[key]
    assert (p["n"], p["cost_usd"], p["input_tokens"], p["output_tokens"]) == (2, 0.00022500000000000002 * 2, 20, 40)
    assert not any(k.startswith("team=ads") for k in w.by_key)


def test_hand_worked_failed_calls_and_cache_hits() -> None:
    """Independent of the reference: in one key and minute a success ($0.25, 10 + 20 tokens), a failed call ($0
    logged with 10 prompt tokens: not priced from the catalog) and a cache hit (the original call's 10 + 20 tokens
    logged: none counted, $0) make 3 requests, 1 failed, 1 cache hit, $0.25, 20 + 20 tokens; in the roll-ups too.
    Another team's key with a success only has neither count, and its team's roll-up neither."""
    t = 1796206153.25
    ok = ev(response_cost=0.25, prompt_tokens=10, completion_tokens=20, startTime=t)
    failed = ev(status="failure", response_cost=0.0, prompt_tokens=10, completion_tokens=0, startTime=t + 1)
    hit = ev(cache_hit=True, response_cost=0.0, prompt_tokens=10, completion_tokens=20, startTime=t + 2)
    other = ev(meta={"user_api_key_team_alias": "ads"}, response_cost=0.5, prompt_tokens=1, startTime=t + 3)
    msg = dumps([failed, ok, hit, other])
    fast = MessageWork(Normalizer(), BOOK, CardinalityLimiter(), 60, LEVELS).run("llm", msg)
    ref = reference_work(Normalizer(), BOOK, CardinalityLimiter(), 60, LEVELS, "llm", msg)
    assert fast.fast and not ref.fast
    search = "team=search|feature=chat|customer=unknown|model=gpt-4o|environment=production"
    ads = "team=ads|feature=chat|customer=unknown|model=gpt-4o|environment=production"
    counts = {"n": 3, "requests": 3, "cost_usd": 0.25, "input_tokens": 20, "output_tokens": 20,
              "failed_requests": 1, "cache_hit_requests": 1}
    for w in (fast, ref):
        (p,) = w.by_key[search]
        assert p == {"ts": t + 1, **counts}
        (roll,) = w.by_key["team=search|feature=*|customer=*|model=*|environment=production"]
        assert roll == {"ts": t + 1, **counts, "kids": {"feature=chat|customer=unknown|model=gpt-4o": 0.25}}
        (top,) = w.by_key["team=*|feature=*|customer=*|model=*|environment=production"]
        assert (top["n"], top["requests"], top["failed_requests"], top["cache_hit_requests"]) == (4, 4, 1, 1)
        for key in (ads, "team=ads|feature=*|customer=*|model=*|environment=production"):
            (q,) = w.by_key[key]
            assert "failed_requests" not in q and "cache_hit_requests" not in q and q["n"] == 1
        assert w.spend["org"] == [[1796206140, 0.75]]
        assert sum(c for per in w.requests.values() for _, c in per) == 4
    assert view(fast) == view(ref)


def with_flags(messages: list[bytes], seed: int = 3) -> list[bytes]:
    """The messages with about one event in ten a failed call, one in ten a cache hit, one in twenty both."""
    rng = random.Random(seed)
    out = []
    for m in messages:
        docs = orjson.loads(m)
        for d in docs:
            r = rng.random()
            if r < 0.1:
                d.update(status="failure", response_cost=0.0 if r < 0.05 else d["response_cost"])
            elif r < 0.2:
                d["cache_hit"] = True
            elif r < 0.25:
                d.update(status="error", cache_hit=True)
        out.append(dumps(docs))
    return out


def test_the_bench_workload_with_failed_calls_and_cache_hits() -> None:
    w = Workload(shape="litellm", events=2000, batch=100, keys=300, partitions=1, span_s=300.0)
    assert all(compare(with_flags(w.messages()[0])))


@pytest.mark.parametrize("seconds", [60, 300, 7])
def test_bucket_widths_with_failed_calls_and_cache_hits(seconds: int) -> None:
    w = Workload(shape="litellm", events=600, batch=50, keys=40, partitions=1, span_s=900.0)
    assert all(compare(with_flags(w.messages()[0], seed=seconds), seconds=seconds))


def test_envelopes_mixing_flagged_and_plain_events() -> None:
    plain = [ALL[n] for n in FAST_NAMES]
    mixed = [dumps(plain + FLAGGED), dumps(FLAGGED[::-1] + plain[::2]), dumps({"events": FLAGGED * 2}),
             dumps([FLAGGED[0]] + plain), dumps(plain + [FLAGGED[-1]])]
    assert all(compare(mixed * 2, limits={"team": 2}))  # twice: cached combinations; a team over its limit


def test_every_key_field_reaches_the_rules() -> None:
    """Rules that read each key tag the shipped ones ignore: the combination must hold all of them."""
    rules = AllocationRules.model_validate({"tag_keys": {
        "team": ["key.org_id", "key.team_id"], "feature": ["key.user_id"], "customer": ["key.alias", "end_user"],
        "environment": ["model_group"]}})
    docs = [ev(meta={"user_api_key_org_id": f"o{i % 2}", "user_api_key_user_id": f"u{i % 3}",
                     "user_api_key_alias": f"a{i % 5}"}, model_group=f"g{i % 7}", end_user=f"e{i}") for i in range(12)]
    docs += [ev(meta={"user_api_key_org_id": ..., "user_api_key_team_id": ..., "team_id": "m"}, team_id="top"),
             ev(meta={"user_api_key_org_id": ..., "user_api_key_team_id": ..., "team_id": ...}, team_id="top"),
             ev(meta={"user_api_key_alias": ...}, end_user=..., metadata={"user_api_key_end_user_id": "eu"})]
    assert all(compare([dumps(docs), *(dumps(d) for d in docs)], normalizer=Normalizer(rules=rules)))


def test_the_bench_workload_takes_the_fast_path_and_agrees() -> None:
    w = Workload(shape="litellm", events=2000, batch=100, keys=300, partitions=1, span_s=300.0)
    assert all(compare(w.messages()[0]))


@pytest.mark.parametrize("seconds", [60, 300, 7])
def test_bucket_widths(seconds: int) -> None:
    w = Workload(shape="litellm", events=600, batch=50, keys=40, partitions=1, span_s=900.0)
    assert all(compare(w.messages()[0], seconds=seconds))


def test_cardinality_overflow_is_counted_per_event() -> None:
    msgs = [dumps([ev(meta={"user_api_key_team_alias": f"t{i % 3}", "spend_logs_metadata": {"customer": f"c{j}"}})
                          for j in range(6)]) for i in range(4)]
    assert all(compare(msgs * 2, limits={"team": 2, "customer": 3}))


P = "proxy_team_key"
# Valid for the reference, and taken by the fast path.
FAST = [
    ev(response_cost=...), ev(response_cost=None, spend=0.5), ev(response_cost=..., spend=...),  # catalog price
    ev(response_cost=0.0, prompt_tokens=0, completion_tokens=0),  # a free call, no tokens: $0, priced
    ev(response_cost=-0.0, prompt_tokens=0, completion_tokens=0),
    ev(response_cost=0.5, response_cost_failure_debug_info={"error_str": "x"}),  # LiteLLM says it failed to price
    ev(response_cost_failure_debug_info=0), ev(response_cost_failure_debug_info=""),
    ev(response_cost=0.0, model="acme-private-llm", custom_llm_provider=...),  # unpriced by both
    ev(response_cost=0.0, model="azure/prod-eastus-4o", custom_llm_provider="azure"),  # priced via model group
    ev(response_cost=10**30), ev(response_cost=12), ev(prompt_tokens=10**12, completion_tokens=0),
    ev(meta={"usage_object": {"cache_read_input_tokens": 4, "cache_creation_input_tokens": 3}}),
    ev(meta={"usage_object": {"cache_read_input_tokens": 40}}),  # more than the prompt: uncached floored at 0
    ev(meta={"usage_object": {"prompt_tokens_details": {"cached_tokens": 6}}}),
    ev(meta={"usage_object": {"cache_read_input_tokens": 0, "prompt_tokens_details": {"cached_tokens": 6}}}),
    ev(meta={"usage_object": {"cache_read_input_tokens": 4, "prompt_tokens_details": {"cached_tokens": 6}}}),
    ev(meta={"usage_object": {"prompt_tokens_details": {"cached_tokens": None}, "cache_creation_input_tokens": 2}}),
    ev(meta={"usage_object": {"cache_read_input_tokens": -1, "cache_creation_input_tokens": 10**13}}),
    ev(meta={"usage_object": {"cache_read_input_tokens": 10**30}}), ev(meta={"usage_object": None}),
    ev(meta={"usage_object": {}}), ev(meta={"usage_object": ...}), ev(metadata=None), ev(metadata=...),
    ev(metadata={}),
    ev(status="Success "), ev(status=3), ev(status=None), ev(status=...), ev(status={"x": 1}),
    ev(cache_hit=False), ev(cache_hit="false"), ev(cache_hit=0), ev(cache_hit="maybe"),
    ev(end_user=4242), ev(end_user="globex"), ev(end_user=""), ev(end_user=["x"]),
    ev(meta={"user_api_key_end_user_id": 12, "user_api_key_team_alias": None, "team_alias": "core"}),
    ev(meta={"user_api_key_team_alias": "", "user_api_key_team_id": 7, "team_id": {"a": 1}}),
    ev(meta={"user_api_key_team_alias": ..., "user_api_key_team_id": ...}, team_id="t-top"),
    ev(meta={"spend_logs_metadata": '{"customer": "acme", "key.team_alias": "x", "team": "ads"}'}),
    ev(meta={"spend_logs_metadata": "not json"}), ev(meta={"spend_logs_metadata": [1]}),
    ev(meta={"user_api_key_team_alias": ..., "spend_logs_metadata": {"team": "ads", "tier": "sandbox"}}),
    ev(request_tags='["feature:json", "team:x"]'), ev(request_tags="feature:one"), ev(request_tags=[3, None, "a=b"]),
    ev(request_tags=None), ev(request_tags=["key.alias:spoof", "key.team_id=spoof", "customer: acme "]),
    ev(model_group=7), ev(model_group=None), ev(custom_llm_provider=None), ev(custom_llm_provider=3),
    ev(custom_llm_provider="p" * 64), ev(model="m" * 200), ev(model="gpt-4o\u00e9\u2603"),
    ev(format="litellm"), ev(format=None), ev(id="i" * 200), ev(id=None), ev(id=...), ev(request_id="r" * 200),
    ev(id="\u00e9" * 200), ev(startTime=1796206153), ev(endTime=None), ev(endTime=...), ev(endTime=1796206100.0),
    ev(response_time=None), ev(total_tokens=None), ev(total_tokens=10**12),
    ev(extra={"deep": [[[{"x": 10**40}]]]}, hidden_params="junk", messages=None, startTimeX="x"),
    ev(meta={"requester_metadata": {"key.team_alias": "ads"}, "user_api_key_spend": 10**40}),
]
# Failed calls and response-cache hits (counted in failed_requests / cache_hit_requests, at LiteLLM's cost, a cache
# hit with no tokens): taken by the fast path too.
FLAGGED = [
    ev("sdk_failed"), ev("proxy_failed"), ev("sdk_cache_hit"),
    ev(status="failure"), ev(status=" ERROR"), ev(status="Failed "), ev(status="failure", response_cost=0.5),
    ev(status="failure", response_cost=..., spend=0.25), ev(status="failure", response_cost=None),  # none: $0
    ev(status="error", response_cost=0.0, prompt_tokens=100, completion_tokens=7),  # $0, not the catalog's
    ev(status="failure", response_cost_failure_debug_info={"error_str": "x"}, response_cost=...),
    ev(status="failure", meta={"usage_object": {"cache_read_input_tokens": 4, "cache_creation_input_tokens": 3}}),
    ev(status="failure", model="acme-private-llm", custom_llm_provider=..., response_cost=...),  # no price anywhere
    ev(cache_hit=True), ev(cache_hit="true"), ev(cache_hit=1), ev(cache_hit=True, response_cost=0.0),
    ev(cache_hit=True, response_cost=..., spend=...), ev(cache_hit=True, response_cost=0.125),
    ev(cache_hit=True, meta={"usage_object": {"cache_read_input_tokens": 4, "cache_creation_input_tokens": 3}}),
    ev(cache_hit=True, response_cost_failure_debug_info={"error_str": "x"}, model="acme-private-llm"),
    ev(status="failure", cache_hit=True), ev(status="failure", cache_hit=True, response_cost=0.5),
    ev(status="failure", meta={"user_api_key_team_alias": "ads"}), ev(cache_hit=True, request_tags=["feature:x"]),
]
FAST += FLAGGED
# The reference decides (some valid, some not): the fast path must step aside and give its exact answer.
REFERENCE = [
    ev(prompt_tokens="10"), ev(prompt_tokens=10.0), ev(prompt_tokens=-1), ev(prompt_tokens=10**12 + 1),
    ev(prompt_tokens=True), ev(prompt_tokens=None), ev(completion_tokens=2**64), ev(total_tokens=-1),
    ev(response_cost="0.1"), ev(response_cost=-1), ev(response_cost=True), ev(spend="x"), ev(response_time=-1),
    ev(startTime="2026-12-02T10:09:13Z"), ev(startTime="1796206153"), ev(startTime=1796206153000),
    ev(startTime=-1), ev(startTime=None), ev(startTime=...), ev(startTime=1e11), ev(startTime=4102444800),
    ev(endTime=-5), ev(endTime="2026-12-02T10:09:14Z"),
    ev(id="i" * 201), ev(id=12), ev(request_id=["r"]),
    ev(model=""), ev(model="m" * 201), ev(model=3), ev(model=...), ev(model=None), ev(custom_llm_provider="p" * 65),
    ev(metadata='{"user_api_key_team_alias": "ads"}'), ev(metadata=3),
    ev(meta={"usage_object": '{"cache_read_input_tokens": 3}'}), ev(meta={"usage_object": [1]}),
    ev(meta={"usage_object": {"cache_read_input_tokens": 1.5}}),
    ev(meta={"usage_object": {"cache_read_input_tokens": True}}),
    ev(meta={"usage_object": {"prompt_tokens_details": [1]}}),
    ev(format="openai"), ev(format="native"), ev(format=3),
    ev(status="failure", prompt_tokens="10"), ev(cache_hit=True, response_cost=-1), ev(status="failure", model=""),
]


def test_fast_cases_agree_and_take_the_fast_path() -> None:
    assert all(compare([dumps([c]) for c in FAST]))
    assert all(compare([dumps(c) for c in FAST]))  # one event per message
    assert all(compare([dumps(FAST), dumps({"events": FAST[::-1]})]))


def test_reference_cases_agree_and_fall_back() -> None:
    assert not any(compare([dumps([c]) for c in REFERENCE]))
    assert not any(compare([dumps(c) for c in REFERENCE]))
    # one such event sends its whole envelope to the reference, the good events with it
    assert not any(compare([dumps([*FAST[:5], c, *FAST[5:9]]) for c in REFERENCE]))


def test_whole_messages_and_envelopes_agree() -> None:
    good, raw = ev(), dumps(ev())
    soon = ev(startTime=time.time() + 14 * 60 + 59.5)  # within a second of the future-skew limit
    later = ev(startTime=time.time() + 16 * 60)
    native = {"timestamp": "2026-01-05T10:00:00Z", "model": "gpt-4o", "cost_usd": 0.5}
    fallback: list[Any] = [
        dumps({"format": "native", "events": [good]}), dumps({"format": "openai", "events": [good]}),
        dumps({"resourceSpans": [], "events": [good]}), dumps({**good, "resourceSpans": None}),
        dumps({**good, "events": [good, 7]}), dumps({**good, "events": [good, ev(prompt_tokens="1")]}),
        dumps([good, native]), dumps([native, good]), dumps([soon]), dumps([later]),
        b"[]", b"[[]]", b"[7]", b"{}", b'{"events": []}', b"{not json", b"", None, b"42", raw + b"x",
        dumps([good] * 320),  # 4.4 MB: over the 4 MiB limit
        dumps([good] * 150 + [ev(prompt_tokens=-1)] * 120),
    ]
    assert not any(compare(fallback))
    fast: list[Any] = [
        dumps({**good, "events": "nope"}), dumps({**good, "events": {"a": 1}}),
        dumps({"events": [good], "format": None}), b" \n[ " + raw + b" ,\t" + raw + b" ] ",
        bytearray(dumps([good])), dumps([good]).decode(),
        raw[:-1] + b', "model": "gpt-4o-mini", "prompt_tokens": 99, "metadata": {"user_api_key_team_alias": "a",'
                   b' "user_api_key_team_alias": "b"}}',  # duplicate keys: the last one counts, as orjson reads it
        dumps([good] * 300),  # 4.1 MB (the limit is 4 MiB)
    ]
    compare(fast)  # (bytearray and str values are not taken by the fast path; the others are)
    assert [compare([m])[0] for m in fast] == [True, True, True, True, False, False, True, True]


def test_combinations_too_large_to_cache_agree() -> None:
    docs = [ev(meta={"spend_logs_metadata": {"customer": "acme", "note": "x" * (3000 + i)}}) for i in range(3)]
    assert all(compare([dumps(docs * 2), dumps(docs[0])]))


def with_raw(field: bytes, where: str = "top") -> bytes:
    """An event with one more field written as raw JSON bytes (at the top level or in metadata)."""
    raw = dumps(ev())
    if where == "top":
        return b"[" + raw[:-1] + b', "junk": ' + field + b"}]"
    return b"[" + raw.replace(b'"metadata": {', b'"metadata": {"spend_logs_metadata": ' + field + b", ", 1) + b"]"


# JSON orjson (the reference's parser) rejects though msgspec skips it without complaint: the whole message is
# "invalid JSON" for the reference, so the fast path must not take it. And near misses it must take.
NOT_JSON = [b"1e400", b"-1E+400", b"1.8e308", b"[0, 2.5e0310]", b"1" + b"0" * 400, b'"\xff"', b'"\xed\xa0\x80"',
            b'"a\xc3"', b'{"x": [1e999]}']
JSON_NEAR = [b"1e-400", b"1.5e99", b"1" + b"0" * 300, b'"x9e999 "', b'"1e400"', '"\u00e9\u2603 \U0001F600"'.encode(),
             b'"\\ud83d\\ude00"', b"1.7976931348623157e308", b"[1e99, -1E-99, 0.5e+01]"]


@pytest.mark.parametrize("where", ["top", "metadata"])
def test_what_only_orjson_rejects_falls_back(where: str) -> None:
    assert not any(compare([with_raw(f, where) for f in NOT_JSON]))
    assert all(compare([with_raw(f, where) for f in JSON_NEAR]))
    bad_key_fields = [dumps([ev()])[:-2] + b', "model": "\xff"}]', dumps([ev()]).replace(b'"u-17"', b'"u\xff"'),
                      dumps([ev()]).replace(b'"u-17"', b'1e400')]
    assert not any(compare(bad_key_fields))


def test_ignored_fields_of_any_size_and_type() -> None:
    huge = {"hidden_params": {"x": "y" * 100_000}, "messages": [[{"a": [1.5e300, -2**63, None, True]}]] * 50,
            "cost_breakdown": 10**50, "model_map_information": "\u2603" * 1000}
    assert all(compare([dumps([ev(**huge), ev(n, **huge)]) for n in FAST_NAMES]))


field_values = st.one_of(st.none(), st.booleans(), st.integers(-2, 10**6), st.sampled_from([1.5, 0.0, 1e30]),
                         st.sampled_from(["", "ads", "team:x", "key.team_alias:x", '{"team": "t"}', " success",
                                          "failure", "true", "0"]),
                         st.lists(st.sampled_from(["team:x", "feature=y", "key.alias:z", 3]), max_size=3),
                         st.dictionaries(st.sampled_from(["team", "customer", "key.team_alias"]),
                                         st.sampled_from(["a", "b", 1]), max_size=2))
top_fields = st.sampled_from(["response_cost", "spend", "prompt_tokens", "completion_tokens", "status", "cache_hit",
                              "end_user", "request_tags", "team_id", "model_group", "custom_llm_provider", "id",
                              "response_cost_failure_debug_info", "total_tokens", "format"])
meta_fields = st.sampled_from(["user_api_key_team_alias", "team_alias", "user_api_key_team_id", "user_api_key_alias",
                               "user_api_key_user_id", "user_api_key_end_user_id", "spend_logs_metadata",
                               "usage_object"])
mutated = st.builds(lambda name, top, meta: ev(name, meta=meta, **top), st.sampled_from(sorted(ALL)),
                    st.dictionaries(top_fields, field_values, max_size=3),
                    st.dictionaries(meta_fields, field_values, max_size=2))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(mutated, min_size=1, max_size=4), min_size=1, max_size=3))
def test_generated_envelopes_agree(envelopes: list[list[dict[str, Any]]]) -> None:
    compare([dumps(e) for e in envelopes] + [dumps(e[0]) for e in envelopes],
            limits={"team": 3, "customer": 2})

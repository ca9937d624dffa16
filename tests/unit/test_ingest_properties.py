"""Property tests: no input makes the parser raise, and no event is lost in an envelope."""

from __future__ import annotations

import math

from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.cost import CostRecord
from schemas.ingest import Normalizer

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"

NORMALIZER = Normalizer()
SOURCES = ("llm", "gpu", "billing")

# every field name the parsers look at, so generated objects hit real code paths
FIELD_NAMES = [
    "format", "timestamp", "model", "provider", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "cost_usd", "latency_ms", "request_id", "tags", "team", "feature", "customer",
    "environment", "tier", "id", "created", "created_at", "usage", "prompt_tokens", "completion_tokens",
    "total_tokens", "prompt_tokens_details", "cached_tokens", "input_tokens_details",
    "cache_creation_input_tokens", "cache_read_input_tokens", "metadata", "user", "user_id",
    "response_cost", "startTime", "endTime", "response_time", "model_group", "custom_llm_provider",
    "request_tags", "end_user", "user_api_key_alias", "user_api_key_team_id", "user_api_key_team_alias",
    "spend_logs_metadata", "usage_object", "attributes", "resource", "startTimeUnixNano", "endTimeUnixNano",
    "start_time", "end_time", "key", "value", "intValue", "stringValue", "doubleValue", "arrayValue",
    "kvlistValue", "values", "gen_ai.provider.name", "gen_ai.system", "gen_ai.request.model",
    "gen_ai.response.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_creation.input_tokens", "resourceSpans",
    "scopeSpans", "spans", "events", "interval_s", "labels", "metrics", "pricing", "modelName", "UUID",
    "namespace", "pod", "Hostname", "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_POWER_USAGE", "BilledCost", "EffectiveCost", "ListCost",
    "ChargePeriodStart", "ChargePeriodEnd", "ProviderName", "ServiceProviderName", "ServiceName",
    "ResourceId", "SkuId", "ConsumedQuantity", "ConsumedUnit", "Tags", "BillingCurrency", "x_CostCenter",
]
FORMATS = ["native", "openai", "anthropic", "litellm", "otel", "dcgm", "focus", "bogus", 7]

wild_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.sampled_from(["2026-01-05T10:00:00Z", "1767607200", "1767607200000000000", "NaN", "-1", "1e400",
                     "gpt-4o", "NVIDIA H100 80GB HBM3", "spot", "9999-12-31T23:59:59Z", "", "team:a",
                     '{"team": "x"}', "0001-01-01T00:00:00"]),
    st.sampled_from([0, 1, 10**12, 10**12 + 1, 1767607200, 1767607200.5, 1.7e18, 2**63 - 1, -1]),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8))
json_values = st.recursive(
    wild_scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(keys, children, max_size=6)),
    max_leaves=25,
)
events = st.dictionaries(keys, json_values, max_size=10) | st.builds(
    lambda fmt, d: {**d, "format": fmt}, st.sampled_from(FORMATS),
    st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=12))

FIXTURES = [orjson.loads(p.read_bytes()) for p in sorted(PAYLOADS.glob("*.json"))]


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {**doc, head: _replace(doc[head], rest, value)}
    copy = list(doc)
    copy[head] = _replace(doc[head], rest, value)
    return copy


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> Any:
    """A real payload with one to three values (at real field paths) replaced by wild ones."""
    doc = draw(st.sampled_from(FIXTURES))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        doc = _replace(doc, path, draw(json_values))
    return doc


anything = st.one_of(json_values, events, mutated_fixtures())


def _check(records: list[CostRecord], rejects: list[Any]) -> None:
    for r in records:
        assert isinstance(r, CostRecord)
        assert math.isfinite(r.cost_usd)
        # only a billing row may be negative: a credit or refund, netted as on the invoice (schemas/sources/focus.py)
        assert r.cost_usd >= 0 or r.source == "billing", r
        assert r.ts.tzinfo is not None
    for j in rejects:
        assert j.reason and not j.reason.startswith("internal error"), j.reason


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(SOURCES), raw=st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(source: str, raw: bytes) -> None:
    records, rejects = NORMALIZER.parse(source, raw)
    _check(records, rejects)
    assert len(records) + len(rejects) >= 1 or raw.strip() in (b"[]",)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(SOURCES), doc=anything)
def test_arbitrary_json_never_raises(source: str, doc: Any) -> None:
    records, rejects = NORMALIZER.parse(source, orjson.dumps(doc))
    _check(records, rejects)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(SOURCES), items=st.lists(anything, max_size=8), wrap=st.booleans())
def test_envelope_count_in_equals_records_plus_rejections(source: str, items: list[Any], wrap: bool) -> None:
    doc: Any = {"events": items} if wrap else items
    records, rejects = NORMALIZER.parse(source, orjson.dumps(doc))
    _check(records, rejects)
    assert len(records) + len(rejects) == len(items)
    assert sorted(j.index for j in rejects if j.index is not None) == [j.index for j in rejects]
    assert all(j.index is not None and 0 <= j.index < len(items) for j in rejects)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=mutated_fixtures())
def test_mutated_real_payloads_never_raise(doc: Any) -> None:
    for source in SOURCES:
        records, rejects = NORMALIZER.parse(source, orjson.dumps(doc))
        _check(records, rejects)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(anything, max_size=6))
def test_python_objects_passed_directly_never_raise(items: list[Any]) -> None:
    """``parse_items`` gets decoded rows (e.g. from CSV) without a JSON round trip."""
    for source in SOURCES:
        records, rejects = NORMALIZER.parse_items(source, items)
        _check(records, rejects)
        assert len(records) + len(rejects) == len(items)

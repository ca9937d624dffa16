"""Each fixture payload becomes the expected cost record; dollars are computed by hand
from schemas/prices.yaml (USD per million tokens, USD per GPU-hour)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from schemas.cost import CostRecord
from schemas.ingest import Normalizer
from schemas.sources import detect_format
from schemas.sources.focus import read_focus_csv

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
T0 = datetime(2026, 1, 5, 10, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer()


def load(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def one(normalizer: Normalizer, source: str, name: str) -> CostRecord:
    records, rejects = normalizer.parse(source, load(name))
    assert rejects == []
    assert len(records) == 1
    return records[0]


def test_native(normalizer: Normalizer) -> None:
    r = one(normalizer, "llm", "native.json")
    # gpt-4o-mini: 12000 x 0.15 + 800 x 0.60 + 4000 x 0.075 (cache read) = 2580 per 1e6
    assert r.cost_usd == pytest.approx(0.00258)
    assert r.priced and r.format == "native" and r.ts == T0
    assert (r.team, r.feature, r.customer, r.environment, r.tier) == ("search", "chat", "acme", "staging", "pilot")
    assert (r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens) == (12000, 800, 4000, 0)
    assert r.latency_ms == 842.5 and r.request_id == "req-7f3a" and r.requests == 1


def test_openai_cached_tokens_are_inside_prompt_tokens(normalizer: Normalizer) -> None:
    r = one(normalizer, "llm", "openai_chat.json")
    # 2000 prompt of which 1500 cached: 500 x 2.50 + 1500 x 1.25 + 300 x 10.00 = 6125 per 1e6
    assert (r.input_tokens, r.cache_read_tokens, r.output_tokens) == (500, 1500, 300)
    assert r.cost_usd == pytest.approx(0.006125)
    assert r.format == "openai" and r.provider == "openai" and r.model == "gpt-4o-2024-08-06"
    assert r.ts == T0
    assert (r.team, r.feature, r.customer) == ("search", "answers", "cust-42")
    assert r.request_id == "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"


def test_openai_responses_api_after_o3_price_cut(normalizer: Normalizer) -> None:
    r = one(normalizer, "llm", "openai_responses.json")
    # 2025-07-01 is after the 2025-06-10 cut: 2000 x 2.00 + 8000 x 0.50 + 2000 x 8.00 = 24000 per 1e6
    assert (r.input_tokens, r.cache_read_tokens, r.output_tokens) == (2000, 8000, 2000)
    assert r.cost_usd == pytest.approx(0.024)
    assert r.ts == datetime(2025, 7, 1, 12, tzinfo=timezone.utc)
    assert (r.team, r.tier) == ("research", "production")


def test_anthropic_cache_tokens_are_separate_from_input(normalizer: Normalizer) -> None:
    r = one(normalizer, "llm", "anthropic.json")
    # 2095 x 3.00 + 503 x 15.00 + 15000 x 0.30 (read) + 1200 x 3.75 (write) = 22830 per 1e6
    assert (r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens) == (2095, 503, 15000, 1200)
    assert r.cost_usd == pytest.approx(0.02283)
    assert (r.format, r.provider, r.customer, r.team, r.feature) == (
        "anthropic", "anthropic", "cust-9", "support", "ticket-triage")
    assert r.latency_ms == 3120


def test_litellm_uses_response_cost(normalizer: Normalizer) -> None:
    r = one(normalizer, "llm", "litellm.json")
    assert r.cost_usd == 0.00339 and r.priced
    assert (r.input_tokens, r.cache_read_tokens, r.output_tokens) == (1200 - 1024, 1024, 189)
    assert r.latency_ms == pytest.approx(1500.0)
    assert r.ts == datetime(2026, 1, 5, 10, 0, 0, 512000, tzinfo=timezone.utc)
    # team alias of the virtual key; no feature (alias "assistant-prod-key" follows no declared
    # pattern, so none is guessed); customer from spend_logs_metadata
    assert (r.team, r.feature, r.customer, r.environment, r.tier) == (
        "search", "unknown", "acme", "staging", "pilot")
    assert r.provider == "openai" and r.format == "litellm"


def test_litellm_without_cost_is_priced_from_catalog(normalizer: Normalizer) -> None:
    r = one(normalizer, "llm", "litellm_unpriced_cost.json")
    # 5000 prompt = 1000 uncached + 3000 read + 1000 written (claude-3-5-haiku):
    # 1000 x 0.80 + 400 x 4.00 + 3000 x 0.08 + 1000 x 1.00 = 3640 per 1e6
    assert (r.input_tokens, r.cache_read_tokens, r.cache_write_tokens) == (1000, 3000, 1000)
    assert r.cost_usd == pytest.approx(0.00364)
    assert (r.provider, r.team, r.feature, r.latency_ms) == ("anthropic", "team-ml", "search", 4000.0)


def test_otel_span_with_otlp_attribute_list(normalizer: Normalizer) -> None:
    r = one(normalizer, "llm", "otel_span.json")
    # input 12000 includes 8000 read + 2000 written -> 2000 uncached (claude-3-5-sonnet):
    # 2000 x 3.00 + 700 x 15.00 + 8000 x 0.30 + 2000 x 3.75 = 26400 per 1e6
    assert (r.input_tokens, r.cache_read_tokens, r.cache_write_tokens, r.output_tokens) == (2000, 8000, 2000, 700)
    assert r.cost_usd == pytest.approx(0.0264)
    assert r.provider == "anthropic"  # from the deprecated gen_ai.system
    assert r.model == "claude-3-5-sonnet-20241022"  # response model wins over request model
    assert r.latency_ms == pytest.approx(2500.0) and r.ts == T0
    assert (r.team, r.feature, r.environment, r.tier) == ("support", "ticket-summary", "production", "production")
    assert r.request_id == "msg_01XFDUDYJgAACzvnptvVoYEL"


def test_otel_flat_attributes(normalizer: Normalizer) -> None:
    r = one(normalizer, "llm", "otel_flat.json")
    # gpt-4.1-mini: 3000 x 0.40 + 250 x 1.60 = 1600 per 1e6
    assert r.cost_usd == pytest.approx(0.0016)
    assert (r.team, r.feature, r.provider) == ("growth", "email-drafts", "openai")


def test_otlp_export_is_split_into_genai_spans(normalizer: Normalizer) -> None:
    before = normalizer.stats["otel_spans_skipped"]
    records, rejects = normalizer.parse("llm", load("otlp_export.json"))
    assert rejects == []
    assert [r.model for r in records] == ["gpt-4o-mini", "text-embedding-3-small"]
    # 1000 x 0.15 + 100 x 0.60 = 210 per 1e6; 50000 x 0.02 = 1000 per 1e6
    assert [r.cost_usd for r in records] == pytest.approx([0.00021, 0.001])
    assert {r.team for r in records} == {"search"}
    assert normalizer.stats["otel_spans_skipped"] == before + 1  # the HTTP span


def test_dcgm_idle_spot_gpu(normalizer: Normalizer) -> None:
    r = one(normalizer, "gpu", "dcgm.json")
    # H100 spot 2.45 $/h x 30 s
    assert r.cost_usd == pytest.approx(2.45 * 30 / 3600)
    assert r.gpu_seconds == 30 and r.idle_gpu_seconds == 30 and r.idle_cost_usd == pytest.approx(r.cost_usd)
    assert (r.model, r.gpu_sku, r.pricing_model, r.provider) == ("H100-80GB", "H100-80GB", "spot", "nvidia")
    assert (r.gpu_util, r.gpu_mem_used_mb, r.gpu_power_w) == (0.001, 30450, 72.3)
    assert (r.host, r.namespace, r.pod) == ("gpu-node-7", "jupyter-alice", "nb-alice-0")
    assert r.gpu_uuid == "GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52"
    assert (r.team, r.tier, r.source, r.requests) == ("research", "sandbox", "gpu", 0)


def test_dcgm_flat_busy_gpu_uses_util_percent(normalizer: Normalizer) -> None:
    r = one(normalizer, "gpu", "dcgm_flat.json")
    # A100 80GB on demand (catalog default) 5.12 $/h x 15 s; GPU_UTIL 97 % -> activity 0.97
    assert r.cost_usd == pytest.approx(5.12 * 15 / 3600)
    assert r.gpu_util == pytest.approx(0.97) and r.idle_gpu_seconds == 0 and r.idle_cost_usd == 0
    assert (r.pricing_model, r.team, r.host, r.ts) == ("on_demand", "vision", "train-node-2", T0)


def test_focus_json_row_uses_effective_cost(normalizer: Normalizer) -> None:
    r = one(normalizer, "billing", "focus.json")
    assert r.cost_usd == 412.37  # not BilledCost (0, paid up front) nor ListCost
    assert r.ts == T0 and r.period_end == datetime(2026, 1, 5, 11, tzinfo=timezone.utc)
    assert (r.team, r.feature, r.tier, r.provider) == ("vision", "resnet-training", "production", "AWS")
    assert (r.service, r.source) == ("Amazon Elastic Compute Cloud", "billing")


def test_focus_csv_rows(normalizer: Normalizer) -> None:
    rows = read_focus_csv(PAYLOADS / "focus.csv")
    assert len(rows) == 3 and rows[0]["x_CostCenter"] == "cc-100"
    records, rejects = normalizer.parse_items("billing", rows)
    # second row: empty EffectiveCost -> BilledCost; third: a credit, accepted and netted (issue 9)
    assert [r.cost_usd for r in records] == [12.0, 3.5, -25.0]
    assert [r.team for r in records] == ["support", "unallocated", "unallocated"]
    assert records[0].provider == "Microsoft" and records[0].feature == "ticket-triage"
    assert rejects == []
    assert sum(r.cost_usd for r in records) == pytest.approx(12.0 + 3.5 - 25.0)  # netted, as on the invoice


def test_focus_credit_is_accepted_and_an_llm_negative_cost_is_not(normalizer: Normalizer) -> None:
    credit = {"BilledCost": "-40", "EffectiveCost": "-40", "ChargeCategory": "Credit",
              "ChargePeriodStart": "2026-01-05T00:00:00Z", "ServiceName": "Azure OpenAI", "Tags": {"team": "search"}}
    (r,), rejects = normalizer.parse("billing", orjson.dumps(credit))
    assert rejects == [] and (r.cost_usd, r.team, r.priced) == (-40.0, "search", True)
    _, rejects = normalizer.parse("llm", orjson.dumps({"timestamp": "2026-01-05T00:00:00Z", "model": "gpt-4o",
                                                        "cost_usd": -1}))
    assert len(rejects) == 1 and "non-negative" in rejects[0].reason
    _, rejects = normalizer.parse("billing", orjson.dumps({**credit, "EffectiveCost": "-inf"}))
    assert len(rejects) == 1 and "finite" in rejects[0].reason


def test_focus_x_columns_are_kept_and_usable_by_rules() -> None:
    from schemas.allocation import AllocationRules
    rules = AllocationRules.model_validate({"rules": [
        {"match": {"key": "x_CostCenter", "equals": "cc-4411"}, "set": {"customer": "internal-ml"}}]})
    records, _ = Normalizer(rules=rules).parse("billing", load("focus.json"))
    assert records[0].customer == "internal-ml"


@pytest.mark.parametrize("name, fmt", [
    ("native.json", "native"), ("openai_chat.json", "openai"), ("openai_responses.json", "openai"),
    ("anthropic.json", "anthropic"), ("litellm.json", "litellm"), ("litellm_unpriced_cost.json", "litellm"),
    ("otel_span.json", "otel"), ("otel_flat.json", "otel")])
def test_recognition_without_format_field(name: str, fmt: str) -> None:
    doc = orjson.loads(load(name))
    doc.pop("format", None)
    assert detect_format("llm", doc) == fmt


def test_records_built_without_validation_equal_validated_records(normalizer: Normalizer) -> None:
    for name, source in [("anthropic.json", "llm"), ("dcgm.json", "gpu"), ("focus.json", "billing"),
                         ("litellm.json", "llm"), ("otel_span.json", "llm")]:
        r = one(normalizer, source, name)
        again = CostRecord.model_validate(r.model_dump())
        assert again == r
        assert CostRecord.model_validate_json(r.model_dump_json()) == r
